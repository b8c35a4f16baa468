// The task queue: every accepted task is a row before its 202 leaves, written with a full fsync
// (synchronous = FULL for that transaction only), so neither a crash nor a power cut loses one.
// queued → running (claimed by a worker, attempts + 1) → done | queued again (retry later) | dead.
import type { Db } from './db.ts';

export type TaskStatus = 'queued' | 'running' | 'done' | 'dead';
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running', 'done', 'dead'];

export interface NewTask {
  id: string;
  service: string;
  method: string;
  /** path and query the app gets */
  path: string;
  /** [name, value, ...] as the client sent them, less hop-by-hop and platform fields */
  headers: string[];
  body: Buffer | null;
  createdAt: number;
}

export interface Task extends NewTask {
  bodyBytes: number;
  status: TaskStatus;
  attempts: number;
  /** when it may be delivered (next attempt) */
  dueAt: number;
  lastStatus: number | null;
  lastError: string | null;
  /** the last attempt's start */
  startedAt: number | null;
  finishedAt: number | null;
  /** insertion order, for lists and cursors */
  seq: number;
}

export interface QueueSettings {
  /** deliveries at once for the service */
  workers: number;
  maxAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_QUEUE: QueueSettings = { workers: 10, maxAttempts: 5, minBackoffMs: 1000, maxBackoffMs: 300_000 };

export interface QueueCounts {
  queued: number;
  running: number;
  done: number;
  dead: number;
  /** creation time of the oldest task not done nor dead */
  oldestPendingAt: number | null;
}

interface Row {
  rowid: number;
  id: string;
  service: string;
  method: string;
  path: string;
  headers: string;
  body: Buffer | null;
  body_bytes: number;
  status: string;
  attempts: number;
  due_at: number;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const task = (r: Row): Task => ({
  seq: r.rowid,
  id: r.id,
  service: r.service,
  method: r.method,
  path: r.path,
  headers: JSON.parse(r.headers) as string[],
  body: r.body,
  bodyBytes: r.body_bytes,
  status: r.status as TaskStatus,
  attempts: r.attempts,
  dueAt: r.due_at,
  lastStatus: r.last_status,
  lastError: r.last_error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export interface TaskStore {
  /** stores the tasks in one transaction, fsynced before it returns */
  insertDurably(tasks: NewTask[]): void;
  /** the next due task of the service, now running (attempts + 1), with its body; or undefined */
  claim(service: string, now: number): Task | undefined;
  complete(id: string, now: number, status: number): void;
  retryLater(id: string, dueAt: number, status: number | null, error: string): void;
  deadLetter(id: string, now: number, status: number | null, error: string): void;
  /** a delivery cut by a stopping platform: queued again, due now, that attempt not counted */
  putBack(id: string, now: number): void;
  /** running tasks a stopped platform left: queued again, due now (same id); returns how many */
  recoverRunning(now: number): number;
  /** a dead task queued again for a new round of attempts; false if it is not dead */
  retry(id: string, now: number): boolean;
  /** without its body (null) */
  get(id: string): Task | undefined;
  /** newest first, without bodies; `before` is a seq from an earlier page */
  list(service: string, status: TaskStatus | null, limit: number, before?: number): Task[];
  counts(service: string): QueueCounts;
  /** services with queued tasks due by `now` */
  servicesDue(now: number): string[];
  /** the earliest due time of a queued task after `now`, or null */
  nextDueAfter(now: number): number | null;
  /** done tasks finished before `before` are removed; returns how many */
  pruneDone(before: number): number;
  settings(service: string): QueueSettings;
  setSettings(service: string, s: QueueSettings): void;
  /** counts and oldest pending task per service that has any */
  pendingByService(): Map<string, QueueCounts>;
}

// everything but the body (up to 5 MB a task): lists and lookups never need it
const META = 'rowid, id, service, method, path, headers, NULL AS body, body_bytes, status, attempts, due_at, last_status, last_error, created_at, started_at, finished_at';

export function createTaskStore(db: Db): TaskStore {
  const q = {
    insert: db.prepare('INSERT INTO tasks (id, service, method, path, headers, body, body_bytes, status, attempts, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)'),
    claim: db.prepare<[number, string, number], Row>(
      "UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = ? WHERE rowid = (SELECT rowid FROM tasks WHERE status = 'queued' AND service = ? AND due_at <= ? ORDER BY due_at, rowid LIMIT 1) RETURNING rowid, *",
    ),
    complete: db.prepare("UPDATE tasks SET status = 'done', body = NULL, headers = '[]', finished_at = ?, last_status = ?, last_error = NULL WHERE id = ? AND status = 'running'"),
    retryLater: db.prepare("UPDATE tasks SET status = 'queued', due_at = ?, last_status = ?, last_error = ? WHERE id = ? AND status = 'running'"),
    dead: db.prepare("UPDATE tasks SET status = 'dead', finished_at = ?, last_status = ?, last_error = ? WHERE id = ? AND status = 'running'"),
    putBack: db.prepare("UPDATE tasks SET status = 'queued', due_at = ?, attempts = MAX(0, attempts - 1) WHERE id = ? AND status = 'running'"),
    recover: db.prepare("UPDATE tasks SET status = 'queued', due_at = ? WHERE status = 'running'"),
    retry: db.prepare("UPDATE tasks SET status = 'queued', attempts = 0, due_at = ?, finished_at = NULL WHERE id = ? AND status = 'dead'"),
    get: db.prepare<[string], Row>(`SELECT ${META} FROM tasks WHERE id = ?`),
    listAll: db.prepare<[string, number, number], Row>(`SELECT ${META} FROM tasks WHERE service = ? AND rowid < ? ORDER BY rowid DESC LIMIT ?`),
    listStatus: db.prepare<[string, string, number, number], Row>(`SELECT ${META} FROM tasks WHERE service = ? AND status = ? AND rowid < ? ORDER BY rowid DESC LIMIT ?`),
    counts: db.prepare<[string], { status: string; n: number; oldest: number | null }>('SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM tasks WHERE service = ? GROUP BY status'),
    due: db.prepare<[number], { service: string }>("SELECT DISTINCT service FROM tasks WHERE status = 'queued' AND due_at <= ?"),
    nextDue: db.prepare<[number], { at: number | null }>("SELECT MIN(due_at) AS at FROM tasks WHERE status = 'queued' AND due_at > ?"),
    prune: db.prepare("DELETE FROM tasks WHERE status = 'done' AND finished_at < ?"),
    settings: db.prepare<[string], { workers: number; max_attempts: number; min_backoff_ms: number; max_backoff_ms: number }>('SELECT * FROM task_queues WHERE service = ?'),
    setSettings: db.prepare(
      'INSERT INTO task_queues (service, workers, max_attempts, min_backoff_ms, max_backoff_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT(service) DO UPDATE SET workers = excluded.workers, max_attempts = excluded.max_attempts, min_backoff_ms = excluded.min_backoff_ms, max_backoff_ms = excluded.max_backoff_ms',
    ),
    pending: db.prepare<[], { service: string; status: string; n: number; oldest: number }>(
      "SELECT service, status, COUNT(*) AS n, MIN(created_at) AS oldest FROM tasks WHERE status IN ('queued', 'running', 'dead') GROUP BY service, status",
    ),
  };
  const insertAll = db.transaction((tasks: NewTask[]) => {
    for (const t of tasks) q.insert.run(t.id, t.service, t.method, t.path, JSON.stringify(t.headers), t.body, t.body?.length ?? 0, 'queued', t.createdAt, t.createdAt);
  });
  const emptyCounts = (): QueueCounts => ({ queued: 0, running: 0, done: 0, dead: 0, oldestPendingAt: null });

  return {
    insertDurably(tasks) {
      // the other writes (logs, usage) keep NORMAL: a crash loses none of them either, a power cut
      // at most their last moment; an accepted task must survive both
      db.pragma('synchronous = FULL');
      try {
        insertAll(tasks);
      } finally {
        db.pragma('synchronous = NORMAL');
      }
    },
    claim(service, now) {
      const r = q.claim.get(now, service, now);
      return r ? task(r) : undefined;
    },
    complete(id, now, status) {
      q.complete.run(now, status, id);
    },
    retryLater(id, dueAt, status, error) {
      q.retryLater.run(dueAt, status, error, id);
    },
    deadLetter(id, now, status, error) {
      q.dead.run(now, status, error, id);
    },
    putBack(id, now) {
      q.putBack.run(now, id);
    },
    recoverRunning: (now) => q.recover.run(now).changes,
    retry: (id, now) => q.retry.run(now, id).changes > 0,
    get(id) {
      const r = q.get.get(id);
      return r ? task(r) : undefined;
    },
    list(service, status, limit, before = Number.MAX_SAFE_INTEGER) {
      const rows = status ? q.listStatus.all(service, status, before, limit) : q.listAll.all(service, before, limit);
      return rows.map(task);
    },
    counts(service) {
      const c = emptyCounts();
      for (const r of q.counts.all(service)) {
        c[r.status as TaskStatus] = r.n;
        if ((r.status === 'queued' || r.status === 'running') && r.oldest !== null) c.oldestPendingAt = Math.min(c.oldestPendingAt ?? Infinity, r.oldest);
      }
      return c;
    },
    servicesDue: (now) => q.due.all(now).map((r) => r.service),
    nextDueAfter: (now) => q.nextDue.get(now)?.at ?? null,
    pruneDone: (before) => q.prune.run(before).changes,
    settings(service) {
      const r = q.settings.get(service);
      return r ? { workers: r.workers, maxAttempts: r.max_attempts, minBackoffMs: r.min_backoff_ms, maxBackoffMs: r.max_backoff_ms } : { ...DEFAULT_QUEUE };
    },
    setSettings(service, s) {
      q.setSettings.run(service, s.workers, s.maxAttempts, s.minBackoffMs, s.maxBackoffMs);
    },
    pendingByService() {
      const out = new Map<string, QueueCounts>();
      for (const r of q.pending.all()) {
        let c = out.get(r.service);
        if (!c) out.set(r.service, (c = emptyCounts()));
        c[r.status as TaskStatus] = r.n;
        if (r.status !== 'dead') c.oldestPendingAt = Math.min(c.oldestPendingAt ?? Infinity, r.oldest);
      }
      return out;
    },
  };
}
