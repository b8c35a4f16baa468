// Per-service, per-minute counters: the one table behind usage, cost and metrics. Writes add
// to a minute's row, so a flush every second and a final flush at stop lose nothing.
import type { Db } from './db.ts';

/**
 * Request latencies as counts per bucket, sparse (bucket index → count). The buckets are the
 * meter's; the store only adds counts of the same bucket, so two minutes merge by adding.
 */
export type LatencyCounts = Record<number, number>;

export interface MinuteDelta {
  service: string;
  minute: number;
  requests: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
  latency: LatencyCounts;
  coldStarts: number;
  coldStartMs: number;
  /** requests that thawed a prewarmed instance instead of waiting for a start, and their thaws */
  prewarmedStarts: number;
  prewarmedStartMs: number;
  /** when the minute's last request came (epoch ms; 0: none, or a row from before it was kept) */
  lastRequestAt: number;
  /** most instances seen at once in the minute (kept as a max, not a sum) */
  instances: number;
  billedMs: number;
  gbMs: number;
}

export type MinuteRow = MinuteDelta;

export interface UsageStore {
  add(deltas: MinuteDelta[]): void;
  range(fromMinute: number, toMinute: number, service?: string): MinuteRow[];
  /** every service that served a request, with the last minute it did (epoch ms), most recent first */
  lastUsed(): { service: string; at: number }[];
}

export function createUsageStore(db: Db): UsageStore {
  const get = db.prepare<[string, number], { latency: string }>('SELECT latency FROM service_minutes WHERE service = ? AND minute = ?');
  const upsert = db.prepare(`
    INSERT INTO service_minutes (service, minute, requests, s2xx, s3xx, s4xx, s5xx, latency, cold_starts, cold_start_ms, prewarmed_starts, prewarmed_start_ms, last_request_at, instances, billed_ms, gb_ms)
    VALUES (@service, @minute, @requests, @s2xx, @s3xx, @s4xx, @s5xx, @latency, @coldStarts, @coldStartMs, @prewarmedStarts, @prewarmedStartMs, @lastRequestAt, @instances, @billedMs, @gbMs)
    ON CONFLICT(service, minute) DO UPDATE SET
      requests = requests + excluded.requests, s2xx = s2xx + excluded.s2xx, s3xx = s3xx + excluded.s3xx,
      s4xx = s4xx + excluded.s4xx, s5xx = s5xx + excluded.s5xx, latency = excluded.latency,
      cold_starts = cold_starts + excluded.cold_starts, cold_start_ms = cold_start_ms + excluded.cold_start_ms,
      prewarmed_starts = prewarmed_starts + excluded.prewarmed_starts, prewarmed_start_ms = prewarmed_start_ms + excluded.prewarmed_start_ms,
      last_request_at = MAX(last_request_at, excluded.last_request_at),
      instances = MAX(instances, excluded.instances), billed_ms = billed_ms + excluded.billed_ms, gb_ms = gb_ms + excluded.gb_ms`);
  const add = db.transaction((deltas: MinuteDelta[]) => {
    for (const d of deltas) {
      const prior = get.get(d.service, d.minute);
      const latency: LatencyCounts = prior ? (JSON.parse(prior.latency) as LatencyCounts) : {};
      for (const [k, v] of Object.entries(d.latency)) latency[Number(k)] = (latency[Number(k)] ?? 0) + v;
      upsert.run({ ...d, latency: JSON.stringify(latency) });
    }
  });
  // to the millisecond where the row kept it, else the start of the minute
  const lastUsed = db.prepare<[], { service: string; at: number }>(
    'SELECT service, MAX(MAX(last_request_at, minute * 60000)) AS at FROM service_minutes WHERE requests > 0 GROUP BY service ORDER BY at DESC, service',
  );
  return {
    add,
    lastUsed: () => lastUsed.all(),
    range(from, to, service) {
      const rows = db
        .prepare<unknown[], Record<string, number | string>>(
          `SELECT * FROM service_minutes WHERE minute >= ? AND minute <= ?${service ? ' AND service = ?' : ''} ORDER BY service, minute`,
        )
        .all(...(service ? [from, to, service] : [from, to]));
      return rows.map((r) => ({
        service: r.service as string,
        minute: r.minute as number,
        requests: r.requests as number,
        s2xx: r.s2xx as number,
        s3xx: r.s3xx as number,
        s4xx: r.s4xx as number,
        s5xx: r.s5xx as number,
        latency: JSON.parse(r.latency as string) as LatencyCounts,
        coldStarts: r.cold_starts as number,
        coldStartMs: r.cold_start_ms as number,
        prewarmedStarts: r.prewarmed_starts as number,
        prewarmedStartMs: r.prewarmed_start_ms as number,
        lastRequestAt: r.last_request_at as number,
        instances: r.instances as number,
        billedMs: r.billed_ms as number,
        gbMs: r.gb_ms as number,
      }));
    },
  };
}
