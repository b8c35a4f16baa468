// Cron runs per service and outcome since the start, in the Prometheus text format.
import type { CronTotals } from './scheduler.ts';

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function cronMetricsText(totals: Map<string, CronTotals>): string {
  const lines = ['# HELP cellhost_cron_runs_total Cron runs since the platform started, by outcome (skipped and missed were not run).', '# TYPE cellhost_cron_runs_total counter'];
  for (const [svc, t] of totals) for (const outcome of ['ok', 'failed', 'skipped', 'missed'] as const) lines.push(`cellhost_cron_runs_total{service="${esc(svc)}",outcome="${outcome}"} ${t[outcome]}`);
  return lines.join('\n') + '\n';
}
