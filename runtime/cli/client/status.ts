// `cellhost status NAME`: what is live and running now, and how its last start and its last
// failure went: the service view, its latest deployments and its events, from the API.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { formatAgo, formatSeconds, formatTime } from '../format.ts';
import { printJson, UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const STATUS_HELP = `cellhost status NAME [--json]
  The live deployment, the instances and their state, the last cold start and the last error
  (a failed start, crash, out-of-memory kill or failed build) of a service.`;

interface Instance {
  id: string;
  deploymentId: string;
  state: string;
  pid: number;
  inflight: number;
  frozen: boolean;
  prewarm?: { kept: boolean } | null;
  startedAt: string;
  readyAt: string | null;
}
interface Service {
  name: string;
  runtime: string;
  url: string;
  memoryMb: number;
  minInstances: number;
  maxInstances: number;
  concurrency: number;
  idleTimeoutS: number;
  requestTimeoutS: number;
  liveDeploymentId: string | null;
  instances: Instance[];
  cpu: { percentOfCore: number; cores: number };
}
interface Deployment {
  id: string;
  status: string;
  source: string;
  createdAt: string;
  finishedAt?: string;
  error?: { code: string; message: string };
}
interface Entry {
  id: number;
  time: string;
  event?: string;
  instanceId: string | null;
  deploymentId: string | null;
  message: string;
  fields?: Record<string, unknown>;
}

/** events that are a failure of the service (not of the platform) */
const ERROR_EVENTS = new Set(['start_failed', 'crash', 'oom', 'deploy_failed', 'deploy_interrupted', 'backoff']);

export async function statusCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('status needs one service name');
  const client = createClient(loadClientSettings(io.env));
  const base = `/api/v1/services/${encodeURIComponent(name)}`;
  const service = await client.request<Service>('GET', base);
  const [{ deployments }, { entries }] = await Promise.all([
    client.request<{ deployments: Deployment[] }>('GET', `${base}/deployments?limit=5`),
    client.request<{ entries: Entry[] }>('GET', `${base}/logs?stream=event&limit=1000`),
  ]);
  const findLast = (match: (e: Entry) => boolean) => [...entries].reverse().find(match) ?? null;
  const lastColdStart = findLast((e) => e.event === 'cold_start');
  const lastError = findLast((e) => ERROR_EVENTS.has(e.event ?? ''));
  const live = deployments.find((d) => d.id === service.liveDeploymentId) ?? null;
  const latest = deployments[0] ?? null;

  if (values.json) {
    printJson(io, { service, liveDeployment: live, latestDeployment: latest, instances: service.instances, lastColdStart, lastError });
    return 0;
  }
  const now = Date.now();
  const rows: [string, string][] = [
    ['service', `${service.name} (${service.runtime}, ${service.memoryMb} MB: ${service.cpu.percentOfCore} % of a core)`],
    ['url', service.url],
    ['live', live ? `${live.id} (${live.source}, live since ${formatTime(live.finishedAt ?? live.createdAt)} UTC, ${formatAgo(live.finishedAt ?? live.createdAt, now)})` : service.liveDeploymentId ?? 'nothing deployed yet'],
  ];
  if (latest && latest.id !== service.liveDeploymentId) {
    rows.push(['latest', `${latest.id} ${latest.status}${latest.error ? `: ${latest.error.message} (${latest.error.code})` : ''}`]);
  }
  rows.push(['scaling', `${service.minInstances}-${service.maxInstances} instances, ${service.concurrency} requests each, idle stop ${formatSeconds(service.idleTimeoutS)}, timeout ${formatSeconds(service.requestTimeoutS)}`]);
  rows.push(['cold start', lastColdStart ? `${formatTime(lastColdStart.time)} UTC (${formatAgo(lastColdStart.time, now)}): ${lastColdStart.fields?.durationMs ?? '?'} ms, instance ${lastColdStart.instanceId ?? '-'}` : 'none recorded']);
  rows.push(['last error', lastError ? `${formatTime(lastError.time)} UTC (${formatAgo(lastError.time, now)}): ${lastError.event}: ${lastError.message}` : 'none recorded']);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) io.out(`${k.padEnd(width)}  ${v}\n`);
  io.out(`\nInstances: ${service.instances.length}\n`);
  if (service.instances.length) {
    io.out(
      formatTable([
        ['ID', 'STATE', 'DEPLOYMENT', 'PID', 'IN FLIGHT', 'STARTED'],
        ...service.instances.map((i) => [i.id, i.prewarm?.kept ? `${i.state} (prewarmed, frozen)` : i.frozen ? `${i.state} (frozen)` : i.state, i.deploymentId, String(i.pid), String(i.inflight), formatAgo(i.startedAt, now)]),
      ]),
    );
  } else {
    io.out('  none running: the next request starts one\n');
  }
  return 0;
}
