// Async tasks: one task, a service's tasks by status, sending a dead task again, the service's
// queue settings and depth, and its task token. Tasks themselves are sent to the router
// (POST /tasks/<service>/<path>), not to this API.
import { z } from '@hono/zod-openapi';
import { queueSettingsPatchSchema, type TaskControl } from '../tasks/control.ts';
import { TASK_STATUSES } from '../store/tasks.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

const statusSchema = z.enum(TASK_STATUSES as ['queued', 'running', 'done', 'dead']);

export const taskSchema = z
  .strictObject({
    id: z.string(),
    service: z.string(),
    method: z.string(),
    path: z.string().openapi({ description: 'what the app gets: the path after /tasks/<service>, with its query' }),
    status: statusSchema.openapi({ description: 'queued (waiting, or waiting to be retried), running (being delivered), done (the app answered 2xx), dead (maxAttempts failed)' }),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    lastStatusCode: z.number().int().nullable().openapi({ description: "the last attempt's HTTP status (null: no answer)" }),
    lastError: z.string().nullable(),
    bodyBytes: z.number().int(),
    createdAt: z.string(),
    nextAttemptAt: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Task');

const queueSchema = z
  .strictObject({
    service: z.string(),
    workers: z.number().int().openapi({ description: 'deliveries at once' }),
    maxAttempts: z.number().int(),
    minBackoffMs: z.number().int(),
    maxBackoffMs: z.number().int(),
    counts: z.strictObject({ queued: z.number().int(), running: z.number().int(), done: z.number().int(), dead: z.number().int() }),
    oldestPendingAt: z.string().nullable(),
    oldestPendingAgeS: z.number().int().nullable(),
    inFlight: z.number().int(),
  })
  .openapi('TaskQueue');

const tokenSchema = z
  .strictObject({ token: z.string().openapi({ description: 'sent with each task: "Authorization: Bearer <token>" or "X-Cellhost-Task-Token: <token>"' }) })
  .openapi('TaskToken');

const idParams = z.object({ id: z.string() });
const serviceParams = z.object({ name: z.string() });

const show = defineRoute({
  method: 'get',
  path: '/{id}',
  summary: 'One task: status, attempts, last status code, times',
  access: 'read',
  request: { params: idParams },
  errors: ['ERR_TASK_NOT_FOUND'],
  responses: { 200: jsonContent(taskSchema, 'the task') },
});

const retry = defineRoute({
  method: 'post',
  path: '/{id}/retry',
  summary: 'Send a dead-lettered task again, for a new round of attempts (same id)',
  access: 'write',
  request: { params: idParams },
  errors: ['ERR_TASK_NOT_FOUND', 'ERR_TASK_NOT_DEAD'],
  responses: { 200: jsonContent(taskSchema, 'the task, queued') },
});

/** mounted at /api/v1/tasks */
export function taskRoutes(tasks: TaskControl) {
  const app = createRouter();
  mount(app, show, (c) => c.json(tasks.get(c.req.valid('param').id), 200));
  mount(app, retry, (c) => c.json(tasks.retry(c.req.valid('param').id), 200));
  return app;
}

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's tasks, newest first, optionally of one status (done tasks are kept 7 days)",
  access: 'read',
  request: {
    params: serviceParams,
    query: z.object({
      status: statusSchema.optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: z.string().optional().openapi({ description: 'the nextCursor of the page before' }),
    }),
  },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(z.strictObject({ tasks: z.array(taskSchema), nextCursor: z.string().nullable() }), 'a page of tasks') },
});

/** mounted at /api/v1/services/:name/tasks */
export function serviceTaskRoutes(tasks: TaskControl) {
  const app = createRouter();
  mount(app, list, (c) => {
    const q = c.req.valid('query');
    return c.json(tasks.list(c.req.valid('param').name, q.status ?? null, q.limit, q.cursor), 200);
  });
  return app;
}

const showQueue = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's task queue: its settings, tasks by status, the oldest pending task's age",
  access: 'read',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 200: jsonContent(queueSchema, 'the queue') },
});

const patchQueue = defineRoute({
  method: 'patch',
  path: '/',
  summary: 'Change the queue: workers (1–100, default 10), maxAttempts (default 5), backoff between attempts (doubling from minBackoffMs to maxBackoffMs)',
  access: 'write',
  request: { params: serviceParams, body: jsonBody(queueSettingsPatchSchema) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(queueSchema, 'the queue') },
});

/** mounted at /api/v1/services/:name/task-queue */
export function taskQueueRoutes(tasks: TaskControl) {
  const app = createRouter();
  mount(app, showQueue, (c) => c.json(tasks.queue(c.req.valid('param').name), 200));
  mount(app, patchQueue, async (c) => {
    const { name } = c.req.valid('param');
    tasks.queue(name);
    return c.json(tasks.setQueue(name, await readBody(c, patchQueue)), 200);
  });
  return app;
}

const showToken = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's task token (made on first ask)",
  access: 'read',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(tokenSchema, 'the token') },
});

const rotateToken = defineRoute({
  method: 'post',
  path: '/',
  summary: 'A new task token: the old one stops working at once (tasks already accepted are still delivered)',
  access: 'write',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(tokenSchema, 'the new token') },
});

/** mounted at /api/v1/services/:name/task-token */
export function taskTokenRoutes(tasks: TaskControl) {
  const app = createRouter();
  mount(app, showToken, (c) => c.json({ token: tasks.token(c.req.valid('param').name) }, 200));
  mount(app, rotateToken, (c) => c.json({ token: tasks.rotateToken(c.req.valid('param').name) }, 200));
  return app;
}
