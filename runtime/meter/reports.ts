// Usage (billing) and metrics (observability) read from the same per-minute rows.
import type { UsageStore } from '../store/usage.ts';
import { BUCKETS, bucketUpper, merge, quantile, type Histogram } from './histogram.ts';
import type { LifetimeTotals } from './meter.ts';

export interface ServiceUsage {
  service: string;
  requests: number;
  billedMs: number;
  gbSeconds: number;
  coldStarts: number;
  coldStartMs: number;
  /** requests that thawed a prewarmed instance instead of waiting for a start */
  prewarmedStarts: number;
  prewarmedStartMs: number;
  cost: number;
  /** a service's preview deployments, each on its own; the service's numbers include them */
  previews?: PreviewUsage[];
}

export type PreviewUsage = Omit<ServiceUsage, 'previews'>;

export interface UsageReport {
  from: string;
  to: string;
  pricePerGbSecond: number;
  services: ServiceUsage[];
  total: Omit<ServiceUsage, 'service'>;
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

export function usageReport(store: UsageStore, from: number, to: number, price: number, service?: string): UsageReport {
  const by = new Map<string, ServiceUsage>();
  for (const r of store.range(Math.floor(from / 60_000), Math.floor(to / 60_000), service)) {
    let u = by.get(r.service);
    if (!u) by.set(r.service, (u = { service: r.service, requests: 0, billedMs: 0, gbSeconds: 0, coldStarts: 0, coldStartMs: 0, prewarmedStarts: 0, prewarmedStartMs: 0, cost: 0 }));
    u.requests += r.requests;
    u.billedMs += r.billedMs;
    u.gbSeconds += r.gbMs / 1000;
    u.coldStarts += r.coldStarts;
    u.coldStartMs += r.coldStartMs;
    u.prewarmedStarts += r.prewarmedStarts;
    u.prewarmedStartMs += r.prewarmedStartMs;
  }
  const services = [...by.values()].map((u) => ({
    ...u,
    billedMs: Math.round(u.billedMs),
    gbSeconds: round(u.gbSeconds, 6),
    coldStartMs: Math.round(u.coldStartMs),
    prewarmedStartMs: Math.round(u.prewarmedStartMs),
    cost: round(u.gbSeconds * price, 9),
  }));
  const total = services.reduce(
    (t, u) => ({
      requests: t.requests + u.requests,
      billedMs: t.billedMs + u.billedMs,
      gbSeconds: round(t.gbSeconds + u.gbSeconds, 6),
      coldStarts: t.coldStarts + u.coldStarts,
      coldStartMs: t.coldStartMs + u.coldStartMs,
      prewarmedStarts: t.prewarmedStarts + u.prewarmedStarts,
      prewarmedStartMs: t.prewarmedStartMs + u.prewarmedStartMs,
      cost: round(t.cost + u.cost, 9),
    }),
    { requests: 0, billedMs: 0, gbSeconds: 0, coldStarts: 0, coldStartMs: 0, prewarmedStarts: 0, prewarmedStartMs: 0, cost: 0 },
  );
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), pricePerGbSecond: price, services, total };
}

/**
 * Counts each preview's usage under its parent: the parent's row holds its own and its previews'
 * numbers, with the previews listed inside it; no preview has a row of its own. `parents` names
 * the parent of every preview there ever was (deleted ones too: their usage stays). With
 * `service`, only that service's row (previews included).
 */
export function foldPreviews(report: UsageReport, parents: ReadonlyMap<string, string>, service?: string): UsageReport {
  const rows = new Map<string, ServiceUsage>();
  const zero = (name: string): ServiceUsage => ({ service: name, requests: 0, billedMs: 0, gbSeconds: 0, coldStarts: 0, coldStartMs: 0, prewarmedStarts: 0, prewarmedStartMs: 0, cost: 0 });
  for (const u of report.services) if (!parents.has(u.service)) rows.set(u.service, { ...u });
  for (const u of report.services) {
    const parent = parents.get(u.service);
    if (parent === undefined) continue;
    let row = rows.get(parent);
    if (!row) rows.set(parent, (row = zero(parent)));
    row.requests += u.requests;
    row.billedMs += u.billedMs;
    row.gbSeconds = round(row.gbSeconds + u.gbSeconds, 6);
    row.coldStarts += u.coldStarts;
    row.coldStartMs += u.coldStartMs;
    row.prewarmedStarts += u.prewarmedStarts;
    row.prewarmedStartMs += u.prewarmedStartMs;
    row.cost = round(row.cost + u.cost, 9);
    (row.previews ??= []).push(u);
  }
  let services = [...rows.values()].sort((a, b) => a.service.localeCompare(b.service));
  if (service !== undefined) services = services.filter((u) => u.service === service);
  const total = service === undefined ? report.total : services[0] ? totalsOf(services[0]) : totalsOf(zero(''));
  return { ...report, services, total };
}

function totalsOf(u: ServiceUsage): UsageReport['total'] {
  return { requests: u.requests, billedMs: u.billedMs, gbSeconds: u.gbSeconds, coldStarts: u.coldStarts, coldStartMs: u.coldStartMs, prewarmedStarts: u.prewarmedStarts, prewarmedStartMs: u.prewarmedStartMs, cost: u.cost };
}

export interface MetricsPoint {
  t: string;
  requests: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  coldStarts: number;
  coldStartAvgMs: number | null;
  /** requests that thawed a prewarmed instance instead of a cold start, and their mean thaw */
  prewarmedStarts: number;
  prewarmedStartAvgMs: number | null;
  instances: number;
  gbSeconds: number;
}

/** one point per step (minutes), empty steps included, so charts have a regular x axis */
export function metricsSeries(store: UsageStore, service: string, windowMs: number, now: number) {
  const stepMin = Math.max(1, Math.ceil(windowMs / 60_000 / 360));
  const toMin = Math.floor(now / 60_000);
  const fromMin = toMin - Math.ceil(windowMs / 60_000) + 1;
  const first = fromMin - (fromMin % stepMin);
  const buckets = new Map<number, { rows: number; point: Omit<MetricsPoint, 't' | 'p50' | 'p95' | 'p99' | 'coldStartAvgMs' | 'prewarmedStartAvgMs'> & { hist: Histogram; coldMs: number; prewarmedMs: number } }>();
  for (let m = first; m <= toMin; m += stepMin) {
    buckets.set(m, { rows: 0, point: { requests: 0, s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, coldStarts: 0, coldMs: 0, prewarmedStarts: 0, prewarmedMs: 0, instances: 0, gbSeconds: 0, hist: {} } });
  }
  const all: Histogram = {};
  for (const r of store.range(fromMin, toMin, service)) {
    const b = buckets.get(r.minute - (r.minute % stepMin))!;
    if (!b) continue;
    const p = b.point;
    p.requests += r.requests;
    p.s2xx += r.s2xx;
    p.s3xx += r.s3xx;
    p.s4xx += r.s4xx;
    p.s5xx += r.s5xx;
    p.coldStarts += r.coldStarts;
    p.coldMs += r.coldStartMs;
    p.prewarmedStarts += r.prewarmedStarts;
    p.prewarmedMs += r.prewarmedStartMs;
    p.instances = Math.max(p.instances, r.instances);
    p.gbSeconds += r.gbMs / 1000;
    merge(p.hist, r.latency);
    merge(all, r.latency);
  }
  const points: MetricsPoint[] = [...buckets.entries()].map(([m, { point: p }]) => ({
    t: new Date(m * 60_000).toISOString(),
    requests: p.requests,
    s2xx: p.s2xx,
    s3xx: p.s3xx,
    s4xx: p.s4xx,
    s5xx: p.s5xx,
    p50: roundOrNull(quantile(p.hist, 0.5)),
    p95: roundOrNull(quantile(p.hist, 0.95)),
    p99: roundOrNull(quantile(p.hist, 0.99)),
    coldStarts: p.coldStarts,
    coldStartAvgMs: p.coldStarts ? Math.round(p.coldMs / p.coldStarts) : null,
    prewarmedStarts: p.prewarmedStarts,
    prewarmedStartAvgMs: p.prewarmedStarts ? Math.round(p.prewarmedMs / p.prewarmedStarts) : null,
    instances: p.instances,
    gbSeconds: round(p.gbSeconds, 6),
  }));
  return {
    service,
    windowMs,
    stepSeconds: stepMin * 60,
    summary: { p50: roundOrNull(quantile(all, 0.5)), p95: roundOrNull(quantile(all, 0.95)), p99: roundOrNull(quantile(all, 0.99)) },
    points,
  };
}

const roundOrNull = (n: number | null) => (n === null ? null : round(n, 2));

/** Prometheus text exposition of the lifetime counters and the instance gauge */
export function prometheusText(totals: Map<string, LifetimeTotals>, instances: (service: string) => number, services: string[]): string {
  const lines: string[] = [];
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const metric = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  metric('cellhost_requests_total', 'counter', 'Requests served through the router, by status class.');
  for (const [svc, t] of totals) for (const [cls, n] of Object.entries(t.requests)) lines.push(`cellhost_requests_total{service="${esc(svc)}",class="${cls}"} ${n}`);
  metric('cellhost_request_duration_seconds', 'histogram', 'Request latency through the router.');
  for (const [svc, t] of totals) {
    let cum = 0;
    const s = esc(svc);
    for (let i = 0; i < BUCKETS; i += 4) {
      for (let j = i; j < i + 4 && j < BUCKETS; j++) cum += t.latency[j] ?? 0;
      lines.push(`cellhost_request_duration_seconds_bucket{service="${s}",le="${(bucketUpper(Math.min(i + 3, BUCKETS - 1)) / 1000).toPrecision(4)}"} ${cum}`);
    }
    const total = Object.values(t.latency).reduce((a, b) => a + b, 0);
    lines.push(`cellhost_request_duration_seconds_bucket{service="${s}",le="+Inf"} ${total}`);
    lines.push(`cellhost_request_duration_seconds_sum{service="${s}"} ${(t.latencySumMs / 1000).toFixed(6)}`);
    lines.push(`cellhost_request_duration_seconds_count{service="${s}"} ${total}`);
  }
  metric('cellhost_cold_starts_total', 'counter', 'Instances started.');
  for (const [svc, t] of totals) lines.push(`cellhost_cold_starts_total{service="${esc(svc)}"} ${t.coldStarts}`);
  metric('cellhost_cold_start_seconds_total', 'counter', 'Time spent in cold starts.');
  for (const [svc, t] of totals) lines.push(`cellhost_cold_start_seconds_total{service="${esc(svc)}"} ${(t.coldStartMs / 1000).toFixed(3)}`);
  metric('cellhost_prewarmed_starts_total', 'counter', 'Requests that thawed a prewarmed instance (its app started ahead) instead of waiting for a cold start.');
  for (const [svc, t] of totals) lines.push(`cellhost_prewarmed_starts_total{service="${esc(svc)}"} ${t.prewarmedStarts}`);
  metric('cellhost_billed_gb_seconds_total', 'counter', 'Billed compute in GB-seconds.');
  for (const [svc, t] of totals) lines.push(`cellhost_billed_gb_seconds_total{service="${esc(svc)}"} ${(t.gbMs / 1000).toFixed(6)}`);
  metric('cellhost_instances', 'gauge', 'Instances running now.');
  for (const svc of services) lines.push(`cellhost_instances{service="${esc(svc)}"} ${instances(svc)}`);
  return lines.join('\n') + '\n';
}
