// A service's cron jobs: list, create, change, delete, run now, history; and its cron secret.
import { z } from '@hono/zod-openapi';
import { CRON_METHODS, cronJobCreateSchema, cronJobPatchSchema, type CronControl, type CronJobView } from '../cron/control.ts';
import type { CronRun } from '../store/cron.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const cronRunSchema = z
  .strictObject({
    id: z.number().int(),
    trigger: z.enum(['schedule', 'catch_up', 'manual']).openapi({ description: 'catch_up: a time that passed while the platform was down, run at its start' }),
    scheduledAt: z.string().nullable().openapi({ description: 'the scheduled time this run is for (null for a manual run)' }),
    startedAt: z.string(),
    durationMs: z.number().int().nullable(),
    status: z.enum(['running', 'ok', 'failed', 'skipped', 'missed', 'interrupted']).openapi({
      description: 'ok: the app answered 2xx; failed: another status or no answer; skipped: the previous run still went (overlap: skip); missed: the platform was down then; interrupted: the platform stopped during the run',
    }),
    statusCode: z.number().int().nullable(),
    error: z.string().nullable(),
    body: z.string().nullable().openapi({ description: 'the first 1 KB of the response body' }),
  })
  .openapi('CronRun');

export const cronJobSchema = z
  .strictObject({
    name: z.string(),
    service: z.string(),
    schedule: z.string(),
    timeZone: z.string(),
    method: z.enum(CRON_METHODS),
    path: z.string(),
    body: z.string().nullable(),
    contentType: z.string().nullable(),
    overlap: z.enum(['skip', 'allow']),
    enabled: z.boolean(),
    nextRunAt: z.string().nullable(),
    running: z.number().int(),
    lastRun: cronRunSchema.nullable(),
    lastFailure: cronRunSchema.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('CronJob');

export function cronRunView(r: CronRun): z.infer<typeof cronRunSchema> {
  return {
    id: r.id,
    trigger: r.trigger,
    scheduledAt: iso(r.scheduledAt),
    startedAt: iso(r.startedAt)!,
    durationMs: r.durationMs,
    status: r.status,
    statusCode: r.statusCode,
    error: r.error,
    body: r.bodyHead,
  };
}

export function cronJobView(j: CronJobView): z.infer<typeof cronJobSchema> {
  return {
    name: j.name,
    service: j.service,
    schedule: j.schedule,
    timeZone: j.timeZone,
    method: j.method as (typeof CRON_METHODS)[number],
    path: j.path,
    body: j.body,
    contentType: j.contentType,
    overlap: j.overlap,
    enabled: j.enabled,
    nextRunAt: iso(j.nextRunAt),
    running: j.running,
    lastRun: j.lastRun ? cronRunView(j.lastRun) : null,
    lastFailure: j.lastFailure ? cronRunView(j.lastFailure) : null,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
  };
}

const serviceParams = z.object({ name: z.string() });
const jobParams = z.object({ name: z.string(), job: z.string() });

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's cron jobs, with their next run, last run and last failure",
  access: 'read',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 200: jsonContent(z.strictObject({ jobs: z.array(cronJobSchema) }), 'the jobs') },
});

const create = defineRoute({
  method: 'post',
  path: '/',
  summary: 'Add a cron job: an HTTP request to the service on a schedule',
  description:
    'schedule: 5 fields (minute hour day month weekday), or 6 with seconds first, or @hourly, @daily...; in timeZone (IANA, default UTC). ' +
    'Each run is `method path` (with body) through the router, with X-Cellhost-Cron: <name> and Authorization: Bearer <the cron secret>. ' +
    'overlap: skip (default) skips a time that comes while the previous run still goes; allow runs them side by side.',
  access: 'write',
  request: { params: serviceParams, body: jsonBody(cronJobCreateSchema) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_EXISTS', 'ERR_BODY_MISSING', 'ERR_VALIDATION'],
  responses: { 201: jsonContent(cronJobSchema, 'the job') },
});

const show = defineRoute({
  method: 'get',
  path: '/{job}',
  summary: 'One cron job',
  access: 'read',
  request: { params: jobParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_NOT_FOUND'],
  responses: { 200: jsonContent(cronJobSchema, 'the job') },
});

const update = defineRoute({
  method: 'patch',
  path: '/{job}',
  summary: 'Change a cron job (a new schedule, or enabling it again, counts from now)',
  access: 'write',
  request: { params: jobParams, body: jsonBody(cronJobPatchSchema) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(cronJobSchema, 'the job') },
});

const remove = defineRoute({
  method: 'delete',
  path: '/{job}',
  summary: 'Delete a cron job and its history',
  access: 'write',
  request: { params: jobParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_NOT_FOUND'],
  responses: { 204: { description: 'deleted' } },
});

const run = defineRoute({
  method: 'post',
  path: '/{job}/run',
  summary: 'Run a cron job now, outside its schedule, and wait for its answer',
  access: 'write',
  request: { params: jobParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_NOT_FOUND'],
  responses: { 200: jsonContent(cronRunSchema, 'the finished run (its status says how it went)') },
});

const runs = defineRoute({
  method: 'get',
  path: '/{job}/runs',
  summary: "A cron job's history, newest first (the last 200 runs are kept)",
  access: 'read',
  request: { params: jobParams, query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_CRON_NOT_FOUND', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(z.strictObject({ runs: z.array(cronRunSchema) }), 'the runs') },
});

/** mounted at /api/v1/services/:name/cron */
export function cronRoutes(cron: CronControl) {
  const app = createRouter();
  mount(app, list, (c) => c.json({ jobs: cron.list(c.req.valid('param').name).map(cronJobView) }, 200));
  mount(app, create, async (c) => {
    const { name } = c.req.valid('param');
    cron.list(name); // 404 for an unknown service before the body is read
    const body = await readBody(c, create);
    return c.json(cronJobView(cron.create(name, body)), 201);
  });
  mount(app, show, (c) => {
    const { name, job } = c.req.valid('param');
    return c.json(cronJobView(cron.get(name, job)), 200);
  });
  mount(app, update, async (c) => {
    const { name, job } = c.req.valid('param');
    cron.get(name, job);
    const body = await readBody(c, update);
    return c.json(cronJobView(cron.update(name, job, body)), 200);
  });
  mount(app, remove, (c) => {
    const { name, job } = c.req.valid('param');
    cron.remove(name, job);
    return c.body(null, 204);
  });
  mount(app, run, async (c) => {
    const { name, job } = c.req.valid('param');
    return c.json(cronRunView(await cron.run(name, job)), 200);
  });
  mount(app, runs, (c) => {
    const { name, job } = c.req.valid('param');
    return c.json({ runs: cron.runs(name, job, c.req.valid('query').limit).map(cronRunView) }, 200);
  });
  return app;
}

const secretSchema = z.strictObject({ secret: z.string().openapi({ description: 'what cron runs send as "Authorization: Bearer <secret>"; the app has it as CELLHOST_CRON_SECRET' }) }).openapi('CronSecret');

const showSecret = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's cron secret (made on first use)",
  access: 'read',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(secretSchema, 'the secret') },
});

const rotateSecret = defineRoute({
  method: 'post',
  path: '/',
  summary: 'A new cron secret: the old one stops working, instances are replaced gracefully to get the new CELLHOST_CRON_SECRET',
  access: 'write',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(secretSchema, 'the new secret') },
});

/** mounted at /api/v1/services/:name/cron-secret */
export function cronSecretRoutes(cron: CronControl) {
  const app = createRouter();
  mount(app, showSecret, (c) => c.json({ secret: cron.secret(c.req.valid('param').name) }, 200));
  mount(app, rotateSecret, (c) => c.json({ secret: cron.rotateSecret(c.req.valid('param').name) }, 200));
  return app;
}
