// Cron jobs and async tasks, wired: their stores, the client that sends their requests in through
// the router, the cron scheduler, the task workers and intake, and the verbs the API and console
// call. The composition root (server.ts) creates this once and hands it what it needs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Clock } from './core/clock.ts';
import { describeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { createCronControl, type CronControl } from './cron/control.ts';
import { cronMetricsText } from './cron/metrics.ts';
import { createCronScheduler } from './cron/scheduler.ts';
import type { RouterRequest as InboundRequest } from './router/request.ts';
import { createLoopback } from './router/loopback.ts';
import { isPlatformHost } from './router/platform-hosts.ts';
import { createCronStore } from './store/cron.ts';
import type { Db } from './store/db.ts';
import type { ServiceSecrets } from './store/service-secrets.ts';
import { createTaskStore } from './store/tasks.ts';
import { createTaskControl, type TaskControl } from './tasks/control.ts';
import { createGroupCommit } from './tasks/group-commit.ts';
import { createTaskIntake } from './tasks/intake.ts';
import { taskMetricsText } from './tasks/metrics.ts';
import { createTaskWorkers } from './tasks/workers.ts';

export interface PlatformQueuesDeps {
  db: Db;
  secrets: ServiceSecrets;
  clock: Clock;
  log: Logger;
  domain: string;
  dataDir: string;
  /** how long a request to the service may take through the router, start and queue included */
  timeoutFor(service: string): number;
  serviceExists(name: string): boolean;
  assertService(name: string): void;
  onSecretRotated(service: string): void;
  onEvent(service: string, event: string, fields: Record<string, unknown>): void;
}

export interface PlatformQueues {
  cron: CronControl;
  tasks: TaskControl;
  /** the router's platform routes: true when it answered the request */
  platformRoute(req: InboundRequest, requestId: string): boolean;
  metricsText(): string;
  /** once the router listens (runs and deliveries go in through it, at this address): catch up
   *  on cron, deliver tasks left queued */
  start(routerAddress: { address: string; port: number }): void;
  /** no new runs or deliveries */
  stop(): void;
  /** waits for runs and deliveries under way to be recorded (call before the store closes) */
  close(): Promise<void>;
}

/**
 * The service's env with CELLHOST_CRON_SECRET added (made on first use), and a version that
 * changes with it, so rotating the secret replaces instances like an env change does.
 */
export function withCronSecret(
  secrets: ServiceSecrets,
  now: string,
  log: Logger,
  service: string,
  env: { vars: Record<string, string>; version: string },
): { vars: Record<string, string>; version: string } {
  let secret: string;
  try {
    secret = secrets.ensure(service, 'cron', now);
  } catch (err) {
    // a full disk at the first start of a service: it starts without one, cron runs fail loudly
    log.error('cron.secret_failed', { service, error: describeError(err) });
    return env;
  }
  const tag = crypto.createHash('sha256').update(secret).digest('hex').slice(0, 8);
  return { vars: { ...env.vars, CELLHOST_CRON_SECRET: secret }, version: `${env.version}:${tag}` };
}

export function createPlatformQueues(deps: PlatformQueuesDeps): PlatformQueues {
  const iso = () => new Date(deps.clock.now()).toISOString();
  // the router's address, known once it listens (start); nothing is sent before
  let router = { address: '127.0.0.1', port: 0 };
  const loopback = createLoopback({ address: () => ({ host: router.address, port: router.port }), domain: deps.domain });
  const cronStore = createCronStore(deps.db);
  const taskStore = createTaskStore(deps.db);
  const scheduler = createCronScheduler({
    store: cronStore,
    clock: deps.clock,
    send: loopback.send,
    secretFor: (service) => deps.secrets.ensure(service, 'cron', iso()),
    timeoutFor: deps.timeoutFor,
    onEvent: deps.onEvent,
    log: deps.log,
  });
  const workers = createTaskWorkers({ store: taskStore, clock: deps.clock, send: loopback.send, timeoutFor: deps.timeoutFor, onEvent: deps.onEvent, log: deps.log });
  const intake = createTaskIntake({
    serviceExists: deps.serviceExists,
    tokenFor: (service) => deps.secrets.get(service, 'tasks'),
    enqueue: createGroupCommit(taskStore),
    freeBytes: () => {
      const s = fs.statfsSync(deps.dataDir);
      return s.bavail * s.bsize;
    },
    onAccepted: (service) => workers.kick(service),
    clock: deps.clock,
    log: deps.log,
  });
  const cron = createCronControl({ store: cronStore, scheduler, clock: deps.clock, secrets: deps.secrets, assertService: deps.assertService, onSecretRotated: deps.onSecretRotated });
  const tasks = createTaskControl({ store: taskStore, workers, secrets: deps.secrets, clock: deps.clock, assertService: deps.assertService });

  return {
    cron,
    tasks,
    platformRoute: (req, requestId) => isPlatformHost(req.host, deps.domain) && intake.handle(req, requestId),
    metricsText: () => cronMetricsText(scheduler.totals()) + taskMetricsText(taskStore.pendingByService(), workers.totals(), deps.clock.now()),
    start(routerAddress) {
      router = routerAddress;
      scheduler.start();
      workers.start();
    },
    stop() {
      scheduler.stop();
      workers.stop();
    },
    async close() {
      await Promise.all([scheduler.idle(), workers.idle()]);
      await loopback.close();
    },
  };
}
