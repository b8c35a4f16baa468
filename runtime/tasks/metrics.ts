// Queue depth, oldest pending age and delivery outcomes per service, in the Prometheus text format
// (appended to /metrics on the admin listener).
import type { QueueCounts } from '../store/tasks.ts';
import type { TaskTotals } from './workers.ts';

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function taskMetricsText(pending: Map<string, QueueCounts>, totals: Map<string, TaskTotals>, now: number): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  metric('cellhost_task_queue_depth', 'gauge', 'Tasks by status that are not done: queued (waiting or retrying), running, dead (dead-lettered).');
  for (const [svc, c] of pending) for (const status of ['queued', 'running', 'dead'] as const) lines.push(`cellhost_task_queue_depth{service="${esc(svc)}",status="${status}"} ${c[status]}`);
  metric('cellhost_task_oldest_age_seconds', 'gauge', 'Age of the oldest task not yet done nor dead.');
  for (const [svc, c] of pending) if (c.oldestPendingAt !== null) lines.push(`cellhost_task_oldest_age_seconds{service="${esc(svc)}"} ${Math.max(0, (now - c.oldestPendingAt) / 1000).toFixed(3)}`);
  metric('cellhost_task_deliveries_total', 'counter', 'Task delivery attempts since the platform started, by outcome.');
  for (const [svc, t] of totals) {
    lines.push(`cellhost_task_deliveries_total{service="${esc(svc)}",outcome="done"} ${t.delivered}`);
    lines.push(`cellhost_task_deliveries_total{service="${esc(svc)}",outcome="failed"} ${t.failedAttempts}`);
  }
  metric('cellhost_tasks_dead_lettered_total', 'counter', 'Tasks dead-lettered since the platform started.');
  for (const [svc, t] of totals) lines.push(`cellhost_tasks_dead_lettered_total{service="${esc(svc)}"} ${t.deadLettered}`);
  return lines.join('\n') + '\n';
}
