// The meter's reports in the shapes the pages draw: series of {t, v} per chart, and the usage
// report. The same functions the API's /metrics and /usage routes answer from.
import type { UsageRouteDeps } from '../runtime/api/routes-usage.ts';
import { foldPreviews, metricsSeries, usageReport, type MetricsPoint } from '../runtime/meter/reports.ts';
import type { MetricsWindow, Point, ServiceMetrics, UiDeps } from './deps.ts';

export const WINDOW_MS: Record<MetricsWindow, number> = { '1h': 3600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 };

export function meteredUi(u: UsageRouteDeps): Required<Pick<UiDeps, 'metrics' | 'usageReport'>> {
  return {
    metrics(service, window) {
      u.meter.flush();
      return toServiceMetrics(metricsSeries(u.usage, service, WINDOW_MS[window], u.now()).points);
    },
    usageReport(from, to) {
      u.meter.flush();
      const report = usageReport(u.usage, from, to, u.price);
      const parents = u.previewParents?.();
      return parents?.size ? foldPreviews(report, parents) : report;
    },
  };
}

export function toServiceMetrics(points: MetricsPoint[]): ServiceMetrics {
  const series = (pick: (p: MetricsPoint) => number | null): Point[] =>
    points.flatMap((p) => {
      const v = pick(p);
      return v === null ? [] : [{ t: Date.parse(p.t), v }];
    });
  return {
    requests: series((p) => p.requests),
    errors4xx: series((p) => p.s4xx),
    errors5xx: series((p) => p.s5xx),
    latencyP50: series((p) => p.p50),
    latencyP95: series((p) => p.p95),
    latencyP99: series((p) => p.p99),
    coldStarts: series((p) => p.coldStarts),
    coldStartMs: series((p) => p.coldStartAvgMs),
    instances: series((p) => p.instances),
    gbSeconds: series((p) => p.gbSeconds),
  };
}
