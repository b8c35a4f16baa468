// Task verbs for the API, the CLI and the console: look a task up, list a queue, send a dead task
// again, a queue's settings, the service's task token.
import { z } from '../core/zod.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import type { ServiceSecrets } from '../store/service-secrets.ts';
import type { QueueCounts, QueueSettings, Task, TaskStatus, TaskStore } from '../store/tasks.ts';
import type { TaskWorkers } from './workers.ts';

export const queueSettingsPatchSchema = z.strictObject({
  workers: z.number().int().min(1).max(100).optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  minBackoffMs: z.number().int().min(100).max(3_600_000).optional(),
  maxBackoffMs: z.number().int().min(100).max(86_400_000).optional(),
});
export type QueueSettingsPatch = z.infer<typeof queueSettingsPatchSchema>;

export interface TaskView {
  id: string;
  service: string;
  method: string;
  path: string;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  bodyBytes: number;
  createdAt: string;
  /** when it is delivered next (queued tasks only) */
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  finishedAt: string | null;
}

export interface QueueView extends QueueSettings {
  service: string;
  counts: Omit<QueueCounts, 'oldestPendingAt'>;
  /** the oldest task not yet done nor dead: its creation time and age */
  oldestPendingAt: string | null;
  oldestPendingAgeS: number | null;
  /** deliveries under way now */
  inFlight: number;
}

export interface TaskControlDeps {
  store: TaskStore;
  workers: TaskWorkers;
  secrets: ServiceSecrets;
  clock: Clock;
  /** throws ERR_SERVICE_NOT_FOUND */
  assertService(name: string): void;
}

export interface TaskControl {
  get(id: string): TaskView;
  list(service: string, status: TaskStatus | null, limit: number, cursor?: string): { tasks: TaskView[]; nextCursor: string | null };
  retry(id: string): TaskView;
  queue(service: string): QueueView;
  setQueue(service: string, patch: QueueSettingsPatch): QueueView;
  /** the service's task token, made on first ask */
  token(service: string): string;
  rotateToken(service: string): string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function createTaskControl(deps: TaskControlDeps): TaskControl {
  const { store } = deps;
  const view = (t: Task, maxAttempts = store.settings(t.service).maxAttempts): TaskView => ({
    id: t.id,
    service: t.service,
    method: t.method,
    path: t.path,
    status: t.status,
    attempts: t.attempts,
    maxAttempts,
    lastStatusCode: t.lastStatus,
    lastError: t.lastError,
    bodyBytes: t.bodyBytes,
    createdAt: iso(t.createdAt)!,
    nextAttemptAt: t.status === 'queued' ? iso(t.dueAt) : null,
    lastAttemptAt: iso(t.startedAt),
    finishedAt: iso(t.finishedAt),
  });
  const mustGet = (id: string): Task => {
    const t = store.get(id);
    if (!t) throw new CellhostError('ERR_TASK_NOT_FOUND', `no task with id "${id}"`);
    return t;
  };
  const queue = (service: string): QueueView => {
    const { oldestPendingAt, ...counts } = store.counts(service);
    const now = deps.clock.now();
    return {
      service,
      ...store.settings(service),
      counts,
      oldestPendingAt: iso(oldestPendingAt),
      oldestPendingAgeS: oldestPendingAt === null ? null : Math.max(0, Math.round((now - oldestPendingAt) / 1000)),
      inFlight: deps.workers.inFlight(service),
    };
  };

  return {
    get: (id) => view(mustGet(id)),
    list(service, status, limit, cursor) {
      deps.assertService(service);
      const before = cursor === undefined ? undefined : Number(cursor);
      if (before !== undefined && !(Number.isSafeInteger(before) && before > 0)) throw new CellhostError('ERR_VALIDATION', 'cursor: not a cursor this list gave', { details: { field: 'cursor' } });
      const rows = store.list(service, status, limit + 1, before);
      const page = rows.slice(0, limit);
      const { maxAttempts } = store.settings(service);
      return { tasks: page.map((t) => view(t, maxAttempts)), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
    },
    retry(id) {
      const t = mustGet(id);
      if (!store.retry(id, deps.clock.now())) {
        throw new CellhostError('ERR_TASK_NOT_DEAD', `task ${id} is ${t.status}: only a dead-lettered task is sent again`);
      }
      // the task as the retry left it: a worker may take it the moment it is kicked
      const queued = view(mustGet(id));
      deps.workers.kick(t.service);
      return queued;
    },
    queue(service) {
      deps.assertService(service);
      return queue(service);
    },
    setQueue(service, patch) {
      deps.assertService(service);
      const next = { ...store.settings(service), ...patch };
      if (next.maxBackoffMs < next.minBackoffMs) {
        throw new CellhostError('ERR_VALIDATION', 'maxBackoffMs: must not be below minBackoffMs', { details: { field: 'maxBackoffMs' } });
      }
      store.setSettings(service, next);
      // more workers may take due tasks now
      deps.workers.kick(service);
      return queue(service);
    },
    token(service) {
      deps.assertService(service);
      return deps.secrets.ensure(service, 'tasks', new Date(deps.clock.now()).toISOString());
    },
    rotateToken(service) {
      deps.assertService(service);
      return deps.secrets.rotate(service, 'tasks', new Date(deps.clock.now()).toISOString());
    },
  };
}
