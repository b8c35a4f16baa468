// A service's status in one word, and its latest start failure: what the services list and the
// service page lead with, so a crashing app is visible without opening the logs.
import type { Deployment } from '../runtime/store/deployments.ts';
import type { LogEntry, LogStore } from '../runtime/store/logs.ts';
import type { Service } from '../runtime/store/services.ts';

export type ServiceStatus = 'live' | 'building' | 'no deployment' | 'failed last deploy' | 'start failing';

/** events that say how the latest instance start went */
const START_EVENTS = new Set(['cold_start', 'start_failed', 'crash']);

export function describeServiceStatus(service: Service, latest: Deployment | undefined, lastStart: LogEntry | undefined): ServiceStatus {
  if (latest && (latest.status === 'queued' || latest.status === 'building')) return 'building';
  if (latest && (latest.status === 'failed' || latest.status === 'interrupted')) return 'failed last deploy';
  if (!service.liveDeploymentId) return 'no deployment';
  if (lastStart?.event === 'start_failed' && lastStart.deploymentId === service.liveDeploymentId) return 'start failing';
  return 'live';
}

/** the newest instance start, failure or crash event of the service */
export function findLastStart(logs: LogStore, service: string): LogEntry | undefined {
  const events = logs.query({ service, stream: 'event', limit: 200 });
  for (let i = events.length - 1; i >= 0; i--) if (START_EVENTS.has(events[i]!.event ?? '')) return events[i];
  return undefined;
}

/** the last lines an instance wrote (stdout and stderr, oldest first) */
export function lastOutputOf(logs: LogStore, service: string, instanceId: string, lines = 30): LogEntry[] {
  const recent = logs.query({ service, limit: 2000 });
  return recent.filter((e) => e.instanceId === instanceId && e.stream !== 'event').slice(-lines);
}
