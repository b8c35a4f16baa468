// Usage and cost for a period; a service's metric series; Prometheus text.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Services } from '../control/services.ts';
import { CellhostError } from '../core/errors.ts';
import { parseDuration, parseTime } from '../core/time-range.ts';
import type { Meter } from '../meter/meter.ts';
import { metricsSeries, prometheusText, usageReport } from '../meter/reports.ts';
import type { UsageStore } from '../store/usage.ts';
import type { AuthEnv } from './auth.ts';

export interface UsageRouteDeps {
  services: Services;
  usage: UsageStore;
  meter: Meter;
  price: number;
  now(): number;
  instances(service: string): number;
  /** more Prometheus text from other parts (certificates) */
  more?(): string;
}

const usageQuery = z.object({ from: z.string().optional(), to: z.string().optional(), service: z.string().optional() });

/** mounted at /api/v1/usage */
export function usageRoutes(deps: UsageRouteDeps) {
  const app = new Hono<AuthEnv>();
  app.get('/', (c) => {
    const q = usageQuery.parse(c.req.query());
    const now = deps.now();
    const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
    const from = parseTime(q.from, now, 'from') ?? monthStart;
    const to = parseTime(q.to, now, 'to') ?? now;
    if (to < from) throw new CellhostError('ERR_VALIDATION', 'to: must not be before from');
    deps.meter.flush();
    return c.json(usageReport(deps.usage, from, to, deps.price, q.service));
  });
  return app;
}

/** mounted at /api/v1/services/:name/metrics */
export function metricsRoutes(deps: UsageRouteDeps) {
  const app = new Hono<AuthEnv>();
  app.get('/', (c) => {
    const name = c.req.param('name')!;
    deps.services.get(name);
    const text = c.req.query('window') ?? '1h';
    const windowMs = parseDuration(text);
    if (windowMs === null || windowMs < 60_000 || windowMs > 31 * 86_400_000) {
      throw new CellhostError('ERR_VALIDATION', 'window: a duration from 1m to 31d, such as 1h, 24h or 7d');
    }
    deps.meter.flush();
    return c.json(metricsSeries(deps.usage, name, windowMs, deps.now()));
  });
  return app;
}

export function prometheusRoute(deps: UsageRouteDeps) {
  return (c: { text(body: string, status: 200, headers: Record<string, string>): Response }) =>
    c.text(prometheusText(deps.meter.totals(), deps.instances, deps.services.list().map((s) => s.name)) + (deps.more?.() ?? ''), 200, {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    });
}
