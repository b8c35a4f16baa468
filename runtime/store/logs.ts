// Runtime logs and platform events of every service: one table, read by time range, text and
// id (for resuming a live tail).
import type { Db } from './db.ts';

export type LogStream = 'stdout' | 'stderr' | 'event';

export interface LogEntry {
  id: number;
  service: string;
  ts: number;
  stream: LogStream;
  instanceId: string | null;
  deploymentId: string | null;
  /** for events: its name (cold_start, crash, oom, env_changed, ...) */
  event: string | null;
  message: string;
  fields: Record<string, unknown> | null;
}

export type NewLogEntry = Omit<LogEntry, 'id'>;

export interface LogQuery {
  service: string;
  since?: number;
  until?: number;
  q?: string;
  afterId?: number;
  stream?: LogStream;
  limit: number;
}

interface Row {
  id: number;
  service: string;
  ts: number;
  stream: string;
  instance_id: string | null;
  deployment_id: string | null;
  event: string | null;
  message: string;
  fields: string | null;
}

const fromRow = (r: Row): LogEntry => ({
  id: r.id,
  service: r.service,
  ts: r.ts,
  stream: r.stream as LogStream,
  instanceId: r.instance_id,
  deploymentId: r.deployment_id,
  event: r.event,
  message: r.message,
  fields: r.fields ? (JSON.parse(r.fields) as Record<string, unknown>) : null,
});

export interface LogStore {
  /** inserts in one transaction; returns the entries with their ids */
  append(entries: NewLogEntry[]): LogEntry[];
  query(q: LogQuery): LogEntry[];
  /** drops entries older than `before`, and beyond `maxPerService` newest rows per service */
  prune(before: number, maxPerService: number): number;
  removeService(service: string): void;
}

export function createLogStore(db: Db): LogStore {
  const insert = db.prepare(
    'INSERT INTO logs (service, ts, stream, instance_id, deployment_id, event, message, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const append = db.transaction((entries: NewLogEntry[]) =>
    entries.map((e) => {
      const info = insert.run(e.service, e.ts, e.stream, e.instanceId, e.deploymentId, e.event, e.message, e.fields ? JSON.stringify(e.fields) : null);
      return { ...e, id: Number(info.lastInsertRowid) };
    }),
  );
  return {
    append,
    query(q) {
      const where = ['service = @service'];
      if (q.since !== undefined) where.push('ts >= @since');
      if (q.until !== undefined) where.push('ts <= @until');
      if (q.afterId !== undefined) where.push('id > @afterId');
      if (q.stream) where.push('stream = @stream');
      if (q.q) where.push(`(message LIKE @like ESCAPE '\\' OR event LIKE @like ESCAPE '\\')`);
      const like = q.q ? `%${q.q.replace(/[\\%_]/g, (c) => '\\' + c)}%` : undefined;
      // newest `limit` rows of the range, returned oldest first; a resume reads forward
      const order = q.afterId !== undefined ? 'ASC' : 'DESC';
      const rows = db
        .prepare<Record<string, unknown>, Row>(`SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY id ${order} LIMIT @limit`)
        .all({ ...q, like });
      if (order === 'DESC') rows.reverse();
      return rows.map(fromRow);
    },
    prune(before, maxPerService) {
      let n = db.prepare('DELETE FROM logs WHERE ts < ?').run(before).changes;
      const services = db.prepare<[], { service: string }>('SELECT DISTINCT service FROM logs').all();
      for (const { service } of services) {
        const cut = db
          .prepare<[string, number], { id: number }>('SELECT id FROM logs WHERE service = ? ORDER BY id DESC LIMIT 1 OFFSET ?')
          .get(service, maxPerService);
        if (cut) n += db.prepare('DELETE FROM logs WHERE service = ? AND id <= ?').run(service, cut.id).changes;
      }
      return n;
    },
    removeService(service) {
      db.prepare('DELETE FROM logs WHERE service = ?').run(service);
    },
  };
}
