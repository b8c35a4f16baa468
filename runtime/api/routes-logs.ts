// Runtime logs and events of a service: a time range and text search, or a live tail (SSE)
// that resumes from Last-Event-ID.
import { z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { Services } from '../control/types.ts';
import { parseTime } from '../core/time-range.ts';
import type { LogSink } from '../logs/sink.ts';
import type { LogEntry, LogStore } from '../store/logs.ts';
import { createRouter, defineRoute, mount } from './openapi.ts';

const time = (what: string) => z.string().optional().openapi({ description: `${what}: an ISO 8601 time, epoch milliseconds, or a duration ago such as 15m` });

const querySchema = z.object({
  since: time('from'),
  until: time('up to'),
  q: z.string().max(500).optional().openapi({ description: 'text the message (or the event name) contains' }),
  stream: z.enum(['stdout', 'stderr', 'event']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  follow: z.enum(['1', 'true', '0', 'false']).optional().openapi({ description: '1 or true: the latest entries, then new ones as server-sent events' }),
});

export const logEntrySchema = z
  .strictObject({
    id: z.number().int(),
    time: z.string(),
    stream: z.enum(['stdout', 'stderr', 'event']),
    instanceId: z.string().nullable(),
    deploymentId: z.string().nullable(),
    event: z.string().optional().openapi({ description: 'for events: cold_start, crash, oom, env_changed, ...' }),
    message: z.string(),
    fields: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('LogEntry');

export function logView(e: LogEntry): z.output<typeof logEntrySchema> {
  return {
    id: e.id,
    time: new Date(e.ts).toISOString(),
    stream: e.stream,
    instanceId: e.instanceId,
    deploymentId: e.deploymentId,
    ...(e.event ? { event: e.event } : {}),
    message: e.message,
    ...(e.fields ? { fields: e.fields } : {}),
  };
}

const read = defineRoute({
  method: 'get',
  path: '/',
  summary: 'Runtime logs and events: a range and a search, or a live tail (?follow=1, resumes after Last-Event-ID)',
  access: 'read',
  request: {
    params: z.object({ name: z.string() }),
    query: querySchema,
    headers: z.object({ 'last-event-id': z.string().optional().openapi({ description: 'with follow: resume after this entry id' }) }),
  },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: {
    200: {
      description: 'the entries, oldest first; with follow, an event "log" per entry (id: the entry id, data: the entry as JSON)',
      content: {
        'application/json': { schema: z.strictObject({ entries: z.array(logEntrySchema) }) },
        'text/event-stream': { schema: z.string() },
      },
    },
  },
});

/** mounted at /api/v1/services/:name/logs */
export function logRoutes(deps: { services: Services; logs: LogStore; sink: LogSink; now(): number }) {
  const app = createRouter();
  mount(app, read, (c) => {
    const service = c.req.valid('param').name;
    deps.services.get(service);
    const q = c.req.valid('query');
    deps.sink.flush();
    const now = deps.now();
    const base = { service, since: parseTime(q.since, now, 'since'), until: parseTime(q.until, now, 'until'), q: q.q, stream: q.stream, limit: q.limit };
    if (q.follow !== '1' && q.follow !== 'true') return c.json({ entries: deps.logs.query(base).map(logView) }, 200);

    const lastId = Number(c.req.valid('header')['last-event-id'] ?? NaN);
    const matches = (e: LogEntry) =>
      (!base.stream || e.stream === base.stream) && (!base.q || e.message.includes(base.q) || (e.event ?? '').includes(base.q));
    return streamSSE(c, async (stream) => {
      let sent = Number.isFinite(lastId) ? lastId : 0;
      const send = (e: LogEntry) => {
        if (e.id <= sent || !matches(e)) return;
        sent = e.id;
        void stream.writeSSE({ id: String(e.id), event: 'log', data: JSON.stringify(logView(e)) });
      };
      // subscribe first, then backfill: anything written in between is deduplicated by id
      const pending: LogEntry[] = [];
      let live = false;
      const unsubscribe = deps.sink.subscribe(service, (e) => (live ? send(e) : pending.push(e)));
      const backlog = Number.isFinite(lastId) ? deps.logs.query({ ...base, afterId: lastId, since: undefined, limit: 10_000 }) : deps.logs.query({ ...base, limit: Math.min(base.limit, 200) });
      for (const e of backlog) send(e);
      for (const e of pending) send(e);
      live = true;
      const keepAlive = setInterval(() => void stream.write(': keep-alive\n\n'), 15_000);
      await new Promise<void>((resolve) => stream.onAbort(resolve));
      clearInterval(keepAlive);
      unsubscribe();
    });
  });
  return app;
}
