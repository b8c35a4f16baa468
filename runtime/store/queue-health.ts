// What `cellhost doctor` says about cron jobs and task queues, read from the data dir's database
// without the server: opened read-only (no migration, no write, safe beside a running platform).
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { sqliteNativeBinding } from '../core/native.ts';

export interface CronFailure {
  service: string;
  job: string;
  status: string;
  statusCode: number | null;
  error: string | null;
  scheduledAt: number | null;
  startedAt: number;
  /** a later run of the job went fine */
  recovered: boolean;
}

export interface DeadTasks {
  service: string;
  count: number;
  lastError: string | null;
}

export interface QueueHealth {
  cronFailures: CronFailure[];
  deadTasks: DeadTasks[];
}

/** null when there is no database there, or one from before cron and tasks existed */
export function readQueueHealth(dbFile: string): QueueHealth | null {
  if (!fs.existsSync(dbFile)) return null;
  const db = new Database(dbFile, { readonly: true, fileMustExist: true, nativeBinding: sqliteNativeBinding() as unknown as string | undefined });
  try {
    const tables = new Set(db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => r.name));
    if (!tables.has('cron_runs') || !tables.has('tasks')) return null;
    const cronFailures = db
      .prepare<[], { service: string; job: string; status: string; status_code: number | null; error: string | null; scheduled_at: number | null; started_at: number; recovered: number }>(
        `SELECT r.service, r.job, r.status, r.status_code, r.error, r.scheduled_at, r.started_at,
           EXISTS (SELECT 1 FROM cron_runs o WHERE o.service = r.service AND o.job = r.job AND o.id > r.id AND o.status = 'ok') AS recovered
         FROM cron_runs r JOIN (SELECT MAX(id) AS id FROM cron_runs WHERE status IN ('failed', 'missed', 'interrupted') GROUP BY service, job) l ON r.id = l.id
         ORDER BY r.id DESC`,
      )
      .all()
      .map((r) => ({ service: r.service, job: r.job, status: r.status, statusCode: r.status_code, error: r.error, scheduledAt: r.scheduled_at, startedAt: r.started_at, recovered: r.recovered === 1 }));
    const deadTasks = db
      .prepare<[], { service: string; count: number; last_error: string | null }>(
        "SELECT service, COUNT(*) AS count, (SELECT last_error FROM tasks t2 WHERE t2.service = t.service AND t2.status = 'dead' ORDER BY finished_at DESC LIMIT 1) AS last_error FROM tasks t WHERE status = 'dead' GROUP BY service ORDER BY service",
      )
      .all()
      .map((r) => ({ service: r.service, count: r.count, lastError: r.last_error }));
    return { cronFailures, deadTasks };
  } finally {
    db.close();
  }
}
