// Runtime logs and events of a service: a time range and text search, or a live tail (SSE)
// that resumes from Last-Event-ID.
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { Services } from '../control/services.ts';
import { parseTime } from '../core/time-range.ts';
import type { LogSink } from '../logs/sink.ts';
import type { LogEntry, LogStore } from '../store/logs.ts';
import type { AuthEnv } from './auth.ts';

const querySchema = z.object({
  since: z.string().optional(),
  until: z.string().optional(),
  q: z.string().max(500).optional(),
  stream: z.enum(['stdout', 'stderr', 'event']).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  follow: z.enum(['1', 'true', '0', 'false']).optional(),
});

export function logView(e: LogEntry) {
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

/** mounted at /api/v1/services/:name/logs */
export function logRoutes(deps: { services: Services; logs: LogStore; sink: LogSink; now(): number }) {
  const app = new Hono<AuthEnv>();
  app.get('/', (c) => {
    const service = c.req.param('name')!;
    deps.services.get(service);
    const q = querySchema.parse(c.req.query());
    deps.sink.flush();
    const now = deps.now();
    const base = { service, since: parseTime(q.since, now, 'since'), until: parseTime(q.until, now, 'until'), q: q.q, stream: q.stream, limit: q.limit };
    if (q.follow !== '1' && q.follow !== 'true') return c.json({ entries: deps.logs.query(base).map(logView) });

    const lastId = Number(c.req.header('last-event-id') ?? NaN);
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
