// The task workers with an injected clock and a fake router, on a real SQLite file: the worker
// limit, backoff (and Retry-After), dead letters, tasks a dead platform had in flight delivered
// again with the same id, deliveries cut by a clean stop put back without counting.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../runtime/core/log.ts';
import type { LoopbackRequest } from '../../../runtime/router/loopback.ts';
import { openDatabase, type Db } from '../../../runtime/store/db.ts';
import { createTaskStore, DEFAULT_QUEUE, type TaskStore } from '../../../runtime/store/tasks.ts';
import { backoffMs, createTaskWorkers, type TaskWorkers } from '../../../runtime/tasks/workers.ts';
import { recordingSend, type SentRequest } from '../../helpers/loopback.ts';

let dir: string;
let db: Db;
let store: TaskStore;
let now: number;
let sent: SentRequest[];
let events: { event: string; fields: Record<string, unknown> }[];
let timerAt: number | null;
let timerFn: (() => void) | null;

function newWorkers(): TaskWorkers {
  return createTaskWorkers({
    store,
    clock: { now: () => now },
    send: recordingSend(() => sent),
    timeoutFor: () => 60_000,
    onEvent: (_s, event, fields) => events.push({ event, fields }),
    log: silentLogger,
    timers: {
      set: (fn, ms) => {
        timerAt = now + ms;
        timerFn = fn;
        return 1;
      },
      clear: () => {
        timerAt = null;
        timerFn = null;
      },
    },
  });
}

const settle = () => new Promise((r) => setImmediate(r));
/** moves the clock to the armed timer and fires it */
async function fireTimer() {
  expect(timerAt).not.toBeNull();
  now = Math.max(now, timerAt!);
  const fn = timerFn!;
  timerAt = null;
  timerFn = null;
  fn();
  await settle();
}
/** fires the timer (moving the clock to it) until `n` requests have been sent */
async function runUntilSent(n: number) {
  for (let i = 0; sent.length < n; i++) {
    if (i > 10) throw new Error(`only ${sent.length} of ${n} requests sent`);
    await fireTimer();
  }
}
const header = (req: LoopbackRequest, name: string) => req.headers[req.headers.indexOf(name) + 1];
const add = (id: string, p = '/work') => store.insertDurably([{ id, service: 'web', method: 'POST', path: p, headers: ['content-type', 'text/plain'], body: Buffer.from(id), createdAt: now }]);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-tasks-'));
  db = openDatabase(path.join(dir, 'cellhost.db'));
  db.prepare(
    "INSERT INTO services (name, runtime, port, memory_mb, plan, min_instances, max_instances, concurrency, idle_timeout_s, request_timeout_s, created_at, updated_at) VALUES ('web', 'node', 8080, 256, 'hobby', 0, 10, 100, 300, 900, 'x', 'x')",
  ).run();
  store = createTaskStore(db);
  now = Date.parse('2026-03-02T10:00:00.000Z');
  sent = [];
  events = [];
  timerAt = null;
  timerFn = null;
});

afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('backoff', () => {
  it('doubles from the minimum to the maximum; a Retry-After counts within the maximum', () => {
    const s = { ...DEFAULT_QUEUE, minBackoffMs: 1000, maxBackoffMs: 10_000 };
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffMs(s, a, null))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(backoffMs(s, 1, 5000)).toBe(5000);
    expect(backoffMs(s, 3, 1000)).toBe(4000);
    expect(backoffMs(s, 1, 60_000)).toBe(10_000);
  });
});

describe('task workers', () => {
  it('delivers at most `workers` at once, oldest first, with the id and attempt headers', async () => {
    store.setSettings('web', { ...DEFAULT_QUEUE, workers: 2 });
    for (const id of ['a', 'b', 'c']) add(id);
    const w = newWorkers();
    w.start();
    w.kick('web');
    expect(sent.map((s) => header(s.req, 'x-cellhost-task-id'))).toEqual(['a', 'b']);
    expect(sent[0]!.req).toMatchObject({ service: 'web', method: 'POST', path: '/work' });
    expect(header(sent[0]!.req, 'x-cellhost-task-attempt')).toBe('1');
    expect(header(sent[0]!.req, 'content-type')).toBe('text/plain');
    expect(w.inFlight('web')).toBe(2);
    sent[0]!.answer(200);
    await settle();
    expect(sent.map((s) => header(s.req, 'x-cellhost-task-id'))).toEqual(['a', 'b', 'c']);
    expect(store.get('a')).toMatchObject({ status: 'done', lastStatus: 200 });
    // a done task's body is dropped at once; a queued one's is kept
    expect(db.prepare("SELECT body FROM tasks WHERE id = 'a'").get()).toEqual({ body: null });
    expect((db.prepare("SELECT body FROM tasks WHERE id = 'c'").get() as { body: Buffer }).body.toString()).toBe('c');
    w.stop();
  });

  it('retries with backoff (a Retry-After honoured), then dead-letters with an event; a retry starts a new round', async () => {
    store.setSettings('web', { workers: 1, maxAttempts: 3, minBackoffMs: 1000, maxBackoffMs: 60_000 });
    add('t');
    const w = newWorkers();
    w.start();
    w.kick('web');
    const start = now;
    sent[0]!.answer(500);
    await settle();
    expect(store.get('t')).toMatchObject({ status: 'queued', attempts: 1, lastStatus: 500, dueAt: start + 1000 });
    await runUntilSent(2);
    expect(now).toBe(start + 1000);
    expect(header(sent[1]!.req, 'x-cellhost-task-attempt')).toBe('2');
    sent[1]!.answer(503, { retryAfterMs: 30_000, platformError: null });
    await settle();
    const retryAt = now + 30_000;
    expect(store.get('t')!.dueAt).toBe(retryAt);
    await runUntilSent(3);
    expect(now).toBe(retryAt);
    sent[2]!.fail(new Error('socket hang up'));
    await settle();
    expect(store.get('t')).toMatchObject({ status: 'dead', attempts: 3, lastStatus: null });
    expect(store.get('t')!.lastError).toContain('socket hang up');
    expect(events).toMatchObject([{ event: 'task_dead', fields: { taskId: 't', attempts: 3 } }]);
    expect(store.retry('t', now)).toBe(true);
    w.kick('web');
    expect(header(sent[3]!.req, 'x-cellhost-task-attempt')).toBe('1');
    expect(header(sent[3]!.req, 'x-cellhost-task-id')).toBe('t');
    w.stop();
  });

  it('a task a dead platform had in flight is delivered again by the next one, same id, next attempt', async () => {
    add('t');
    const first = newWorkers();
    first.start();
    first.kick('web');
    expect(store.get('t')).toMatchObject({ status: 'running', attempts: 1 });
    // the platform dies here: its workers are gone without a word
    const next = newWorkers();
    next.start();
    await runUntilSent(2);
    expect(sent).toHaveLength(2);
    expect(header(sent[1]!.req, 'x-cellhost-task-id')).toBe('t');
    expect(header(sent[1]!.req, 'x-cellhost-task-attempt')).toBe('2');
    sent[1]!.answer(204);
    await settle();
    expect(store.get('t')).toMatchObject({ status: 'done', attempts: 2 });
    next.stop();
  });

  it('a delivery cut by a clean stop (the router refusing) is put back without counting the attempt', async () => {
    add('t');
    const w = newWorkers();
    w.start();
    w.kick('web');
    w.stop();
    sent[0]!.answer(503, { platformError: 'ERR_SHUTTING_DOWN' });
    await w.idle();
    expect(store.get('t')).toMatchObject({ status: 'queued', attempts: 0 });
    expect(events).toEqual([]);
  });
});
