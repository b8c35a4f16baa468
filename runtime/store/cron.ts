// Cron jobs and their run history. A job's next_due_at is the scheduled time not yet taken: taking
// it (advancing it and recording the run) is one transaction, so a time is run at most once even
// when the platform dies right after.
import type { Db } from './db.ts';

export type CronOverlap = 'skip' | 'allow';
export type CronTrigger = 'schedule' | 'catch_up' | 'manual';
/** running → ok | failed | interrupted (the platform stopped during it); skipped and missed are never run */
export type CronRunStatus = 'running' | 'ok' | 'failed' | 'skipped' | 'missed' | 'interrupted';

export interface CronJobSpec {
  schedule: string;
  timeZone: string;
  method: string;
  path: string;
  body: string | null;
  contentType: string | null;
  overlap: CronOverlap;
  enabled: boolean;
}

export interface CronJob extends CronJobSpec {
  service: string;
  name: string;
  /** epoch ms of the next scheduled time not yet taken; null while disabled */
  nextDueAt: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface CronRun {
  id: number;
  service: string;
  job: string;
  trigger: CronTrigger;
  /** the schedule's time this run is for (null for a manual run) */
  scheduledAt: number | null;
  startedAt: number;
  durationMs: number | null;
  status: CronRunStatus;
  statusCode: number | null;
  /** an error code or the reason in words */
  error: string | null;
  /** the first 1 KB of the response body */
  bodyHead: string | null;
}

export type NewCronRun = Omit<CronRun, 'id' | 'service' | 'job'>;

interface JobRow {
  service: string;
  name: string;
  schedule: string;
  time_zone: string;
  method: string;
  path: string;
  body: string | null;
  content_type: string | null;
  overlap: string;
  enabled: number;
  next_due_at: number | null;
  created_at: string;
  updated_at: string;
}

interface RunRow {
  id: number;
  service: string;
  job: string;
  trigger: string;
  scheduled_at: number | null;
  started_at: number;
  duration_ms: number | null;
  status: string;
  status_code: number | null;
  error: string | null;
  body_head: string | null;
}

const job = (r: JobRow): CronJob => ({
  service: r.service,
  name: r.name,
  schedule: r.schedule,
  timeZone: r.time_zone,
  method: r.method,
  path: r.path,
  body: r.body,
  contentType: r.content_type,
  overlap: r.overlap as CronOverlap,
  enabled: r.enabled === 1,
  nextDueAt: r.next_due_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const run = (r: RunRow): CronRun => ({
  id: r.id,
  service: r.service,
  job: r.job,
  trigger: r.trigger as CronTrigger,
  scheduledAt: r.scheduled_at,
  startedAt: r.started_at,
  durationMs: r.duration_ms,
  status: r.status as CronRunStatus,
  statusCode: r.status_code,
  error: r.error,
  bodyHead: r.body_head,
});

/** runs kept per job; older ones are pruned as new ones are recorded */
export const RUNS_KEPT = 200;

export interface CronStore {
  list(service: string): CronJob[];
  /** every enabled job, for the scheduler */
  listEnabled(): CronJob[];
  get(service: string, name: string): CronJob | undefined;
  insert(service: string, name: string, spec: CronJobSpec, nextDueAt: number | null, now: string): CronJob;
  update(service: string, name: string, spec: CronJobSpec, nextDueAt: number | null, now: string): CronJob;
  remove(service: string, name: string): boolean;
  /**
   * Takes the scheduled time `due` of a job: its next_due_at becomes `next` and `runs` are
   * recorded, in one transaction. Returns the ids of the runs recorded, or null when the job's
   * next_due_at was no longer `due` (deleted or changed meanwhile).
   */
  take(service: string, name: string, due: number, next: number | null, runs: NewCronRun[]): number[] | null;
  /** a run not tied to the schedule (manual) */
  record(service: string, name: string, r: NewCronRun): number;
  finish(id: number, r: Pick<CronRun, 'durationMs' | 'status' | 'statusCode' | 'error' | 'bodyHead'>): void;
  runs(service: string, name: string, limit: number): CronRun[];
  getRun(id: number): CronRun | undefined;
  lastFailure(service: string, name: string): CronRun | undefined;
  lastRun(service: string, name: string): CronRun | undefined;
  /** the latest failed run of every job that has one (for `cellhost doctor` and the console) */
  lastFailures(): CronRun[];
  /** runs left "running" by a platform that stopped: marked interrupted; returns how many */
  interruptRunning(): number;
}

export function createCronStore(db: Db): CronStore {
  const q = {
    list: db.prepare<[string], JobRow>('SELECT * FROM cron_jobs WHERE service = ? ORDER BY name'),
    enabled: db.prepare<[], JobRow>('SELECT * FROM cron_jobs WHERE enabled = 1'),
    get: db.prepare<[string, string], JobRow>('SELECT * FROM cron_jobs WHERE service = ? AND name = ?'),
    insert: db.prepare(
      'INSERT INTO cron_jobs (service, name, schedule, time_zone, method, path, body, content_type, overlap, enabled, next_due_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    update: db.prepare(
      'UPDATE cron_jobs SET schedule = ?, time_zone = ?, method = ?, path = ?, body = ?, content_type = ?, overlap = ?, enabled = ?, next_due_at = ?, updated_at = ? WHERE service = ? AND name = ?',
    ),
    remove: db.prepare('DELETE FROM cron_jobs WHERE service = ? AND name = ?'),
    advance: db.prepare('UPDATE cron_jobs SET next_due_at = ? WHERE service = ? AND name = ? AND next_due_at = ?'),
    insertRun: db.prepare(
      'INSERT INTO cron_runs (service, job, trigger, scheduled_at, started_at, duration_ms, status, status_code, error, body_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    finish: db.prepare('UPDATE cron_runs SET duration_ms = ?, status = ?, status_code = ?, error = ?, body_head = ? WHERE id = ?'),
    runs: db.prepare<[string, string, number], RunRow>('SELECT * FROM cron_runs WHERE service = ? AND job = ? ORDER BY id DESC LIMIT ?'),
    getRun: db.prepare<[number], RunRow>('SELECT * FROM cron_runs WHERE id = ?'),
    lastFailure: db.prepare<[string, string], RunRow>(
      "SELECT * FROM cron_runs WHERE service = ? AND job = ? AND status IN ('failed', 'missed', 'interrupted') ORDER BY id DESC LIMIT 1",
    ),
    lastRun: db.prepare<[string, string], RunRow>("SELECT * FROM cron_runs WHERE service = ? AND job = ? AND status NOT IN ('skipped', 'missed') ORDER BY id DESC LIMIT 1"),
    lastFailures: db.prepare<[], RunRow>(
      "SELECT r.* FROM cron_runs r JOIN (SELECT MAX(id) AS id FROM cron_runs WHERE status IN ('failed', 'missed', 'interrupted') GROUP BY service, job) l ON r.id = l.id ORDER BY r.id DESC",
    ),
    prune: db.prepare('DELETE FROM cron_runs WHERE service = ? AND job = ? AND id <= (SELECT id FROM cron_runs WHERE service = ? AND job = ? ORDER BY id DESC LIMIT 1 OFFSET ?)'),
    interrupt: db.prepare("UPDATE cron_runs SET status = 'interrupted', error = 'the platform stopped during the run' WHERE status = 'running'"),
  };

  const insertRun = (service: string, name: string, r: NewCronRun): number => {
    const id = Number(q.insertRun.run(service, name, r.trigger, r.scheduledAt, r.startedAt, r.durationMs, r.status, r.statusCode, r.error, r.bodyHead).lastInsertRowid);
    q.prune.run(service, name, service, name, RUNS_KEPT);
    return id;
  };

  const spec = (s: CronJobSpec) => [s.schedule, s.timeZone, s.method, s.path, s.body, s.contentType, s.overlap, s.enabled ? 1 : 0] as const;

  return {
    list: (service) => q.list.all(service).map(job),
    listEnabled: () => q.enabled.all().map(job),
    get(service, name) {
      const r = q.get.get(service, name);
      return r ? job(r) : undefined;
    },
    insert(service, name, s, nextDueAt, now) {
      q.insert.run(service, name, ...spec(s), nextDueAt, now, now);
      return job(q.get.get(service, name)!);
    },
    update(service, name, s, nextDueAt, now) {
      q.update.run(...spec(s), nextDueAt, now, service, name);
      return job(q.get.get(service, name)!);
    },
    remove: (service, name) => q.remove.run(service, name).changes > 0,
    take: db.transaction((service: string, name: string, due: number, next: number | null, runs: NewCronRun[]) => {
      if (q.advance.run(next, service, name, due).changes !== 1) return null;
      return runs.map((r) => insertRun(service, name, r));
    }),
    record: (service, name, r) => insertRun(service, name, r),
    finish(id, r) {
      q.finish.run(r.durationMs, r.status, r.statusCode, r.error, r.bodyHead, id);
    },
    runs: (service, name, limit) => q.runs.all(service, name, limit).map(run),
    getRun(id) {
      const r = q.getRun.get(id);
      return r ? run(r) : undefined;
    },
    lastFailure(service, name) {
      const r = q.lastFailure.get(service, name);
      return r ? run(r) : undefined;
    },
    lastRun(service, name) {
      const r = q.lastRun.get(service, name);
      return r ? run(r) : undefined;
    },
    lastFailures: () => q.lastFailures.all().map(run),
    interruptRunning: () => q.interrupt.run().changes,
  };
}
