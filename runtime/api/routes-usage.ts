// Usage and cost for a period; a service's metric series; Prometheus text.
import { z } from '@hono/zod-openapi';
import type { Services } from '../control/types.ts';
import { CellhostError } from '../core/errors.ts';
import { parseDuration, parseTime } from '../core/time-range.ts';
import type { Meter } from '../meter/meter.ts';
import { foldPreviews, metricsSeries, prometheusText, usageReport } from '../meter/reports.ts';
import type { UsageStore } from '../store/usage.ts';
import { createRouter, defineRoute, jsonContent, mount, type ApiRouter } from './openapi.ts';

export interface UsageRouteDeps {
  services: Services;
  usage: UsageStore;
  meter: Meter;
  price: number;
  now(): number;
  instances(service: string): number;
  /** more series for /metrics (cron runs, task queues) */
  extraMetrics?(): string;
  /** preview name → parent service, for every preview there was: their usage counts under the parent */
  previewParents?(): ReadonlyMap<string, string>;
}

const time = (what: string) => z.string().optional().openapi({ description: `${what}: an ISO 8601 time, epoch milliseconds, or a duration ago such as 7d` });
const usageQuery = z.object({
  from: time('from (default: the start of this month, UTC)'),
  to: time('up to (default: now)'),
  service: z.string().optional().openapi({ description: 'only this service' }),
});

const totalsShape = {
  requests: z.number().int(),
  billedMs: z.number().int(),
  gbSeconds: z.number(),
  coldStarts: z.number().int(),
  coldStartMs: z.number().int(),
  prewarmedStarts: z.number().int().openapi({ description: 'requests that thawed a prewarmed instance (its app started ahead, frozen) instead of waiting for a cold start' }),
  prewarmedStartMs: z.number().int(),
  cost: z.number(),
};

const usageSchema = z
  .strictObject({
    from: z.string(),
    to: z.string(),
    pricePerGbSecond: z.number(),
    services: z.array(
      z.strictObject({
        service: z.string(),
        ...totalsShape,
        previews: z
          .array(z.strictObject({ service: z.string(), ...totalsShape }))
          .optional()
          .openapi({ description: "the service's preview deployments, each on its own; the service's numbers include them" }),
      }),
    ),
    total: z.strictObject(totalsShape),
  })
  .openapi('Usage');

const usage = defineRoute({
  method: 'get',
  path: '/',
  summary: 'Usage and cost per service for a period',
  access: 'read',
  request: { query: usageQuery },
  errors: ['ERR_VALIDATION'],
  responses: { 200: jsonContent(usageSchema, 'usage per service and in all') },
});

/** mounted at /api/v1/usage */
export function usageRoutes(deps: UsageRouteDeps) {
  const app = createRouter();
  mount(app, usage, (c) => {
    const q = c.req.valid('query');
    const now = deps.now();
    const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
    const from = parseTime(q.from, now, 'from') ?? monthStart;
    const to = parseTime(q.to, now, 'to') ?? now;
    if (to < from) throw new CellhostError('ERR_VALIDATION', 'to: must not be before from');
    deps.meter.flush();
    const parents = deps.previewParents?.() ?? new Map<string, string>();
    if (parents.size === 0) return c.json(usageReport(deps.usage, from, to, deps.price, q.service), 200);
    return c.json(foldPreviews(usageReport(deps.usage, from, to, deps.price), parents, q.service), 200);
  });
  return app;
}

const quantiles = { p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() };

const metricsSchema = z
  .strictObject({
    service: z.string(),
    windowMs: z.number(),
    stepSeconds: z.number().int(),
    summary: z.strictObject(quantiles).openapi({ description: 'latency quantiles over the window, ms' }),
    points: z.array(
      z.strictObject({
        t: z.string().openapi({ description: 'the start of the step' }),
        requests: z.number().int(),
        s2xx: z.number().int(),
        s3xx: z.number().int(),
        s4xx: z.number().int(),
        s5xx: z.number().int(),
        ...quantiles,
        coldStarts: z.number().int(),
        coldStartAvgMs: z.number().int().nullable(),
        prewarmedStarts: z.number().int(),
        prewarmedStartAvgMs: z.number().int().nullable(),
        instances: z.number().int(),
        gbSeconds: z.number(),
      }),
    ),
  })
  .openapi('Metrics');

const metrics = defineRoute({
  method: 'get',
  path: '/',
  summary: "A service's metric series: requests by status class, latency quantiles, cold starts, instances, GB-seconds",
  access: 'read',
  request: {
    params: z.object({ name: z.string() }),
    query: z.object({ window: z.string().default('1h').openapi({ description: 'a duration from 1m to 31d, such as 1h, 24h or 7d' }) }),
  },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(metricsSchema, 'one point per step (at most 360), empty steps included') },
});

/** mounted at /api/v1/services/:name/metrics */
export function metricsRoutes(deps: UsageRouteDeps) {
  const app = createRouter();
  mount(app, metrics, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const windowMs = parseDuration(c.req.valid('query').window);
    if (windowMs === null || windowMs < 60_000 || windowMs > 31 * 86_400_000) {
      throw new CellhostError('ERR_VALIDATION', 'window: a duration from 1m to 31d, such as 1h, 24h or 7d');
    }
    deps.meter.flush();
    return c.json(metricsSeries(deps.usage, name, windowMs, deps.now()), 200);
  });
  return app;
}

const prometheus = defineRoute({
  method: 'get',
  path: '/metrics',
  summary: 'Lifetime counters and the instance gauge in the Prometheus text format (a bearer token only, no session cookie)',
  access: 'read',
  responses: { 200: { description: 'Prometheus text exposition 0.0.4', content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: z.string() } } } },
});

/** GET /metrics on `app`, behind the token check the caller puts on that path */
export function mountPrometheus(app: ApiRouter, deps: UsageRouteDeps): void {
  mount(app, prometheus, (c) =>
    c.text(prometheusText(deps.meter.totals(), deps.instances, deps.services.list().map((s) => s.name)) + (deps.extraMetrics?.() ?? ''), 200, {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    }),
  );
}
