// The cron scheduler with an injected clock and a fake router: each scheduled time is run at most
// once (even when a scheduler "dies" after taking it), missed times after downtime, overlap
// policies, time zones, validation. A real SQLite file; no sleeping.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCronControl, type CronControl } from '../../../runtime/cron/control.ts';
import type { Timers } from '../../../runtime/core/clock.ts';
import { createCronScheduler, type CronScheduler } from '../../../runtime/cron/scheduler.ts';
import { CellhostError } from '../../../runtime/core/errors.ts';
import { silentLogger } from '../../../runtime/core/log.ts';
import { createCronStore, type CronStore } from '../../../runtime/store/cron.ts';
import { openDatabase, type Db } from '../../../runtime/store/db.ts';
import { createServiceSecrets } from '../../../runtime/store/service-secrets.ts';
import { generateKey } from '../../../runtime/store/secrets.ts';
import { FAKE_DURATION_MS, recordingSend, type SentRequest } from '../../helpers/loopback.ts';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');

let dir: string;
let db: Db;
let store: CronStore;
let now: number;
let sent: SentRequest[];
let events: { event: string; fields: Record<string, unknown> }[];
let control: CronControl;
let scheduler: CronScheduler;

/** timers that never fire by themselves: the test moves the clock and calls tick() */
const manualTimers: Timers = { set: () => 0, clear: () => {} };

function newScheduler(): CronScheduler {
  return createCronScheduler({
    store,
    clock: { now: () => now },
    send: recordingSend(() => sent),
    secretFor: () => 'chc_secret',
    timeoutFor: () => 60_000,
    onEvent: (_service, event, fields) => events.push({ event, fields }),
    log: silentLogger,
    timers: manualTimers,
  });
}

function newControl(s: CronScheduler): CronControl {
  const key = generateKey();
  return createCronControl({
    store,
    scheduler: s,
    clock: { now: () => now },
    secrets: createServiceSecrets(db, () => key),
    assertService: (name) => {
      if (name !== 'web') throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    },
    onSecretRotated: () => {},
  });
}

const flush = () => new Promise((r) => setImmediate(r));
const runs = (job = 'job') => store.runs('web', job, 1000).reverse();
const at = (ms: number) => new Date(ms).toISOString();

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-cron-'));
  db = openDatabase(path.join(dir, 'cellhost.db'));
  db.prepare(
    "INSERT INTO services (name, runtime, port, memory_mb, plan, min_instances, max_instances, concurrency, idle_timeout_s, request_timeout_s, created_at, updated_at) VALUES ('web', 'node', 8080, 256, 'hobby', 0, 10, 100, 300, 900, 'x', 'x')",
  ).run();
  store = createCronStore(db);
  now = T0;
  sent = [];
  events = [];
  scheduler = newScheduler();
  control = newControl(scheduler);
  scheduler.start();
});

afterEach(() => {
  scheduler.stop();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('cron scheduler', () => {
  it('runs each scheduled time once, as a request with the cron headers, and records the answer', async () => {
    const job = control.create('web', { name: 'job', schedule: '*/10 * * * * *', timeZone: 'UTC', method: 'POST', path: '/hook?x=1', body: '{"a":1}', overlap: 'skip', enabled: true });
    expect(job.nextRunAt).toBe(T0 + 10_000);
    now = T0 + 9_999;
    scheduler.tick();
    expect(sent).toHaveLength(0);
    now = T0 + 10_002;
    scheduler.tick();
    scheduler.tick();
    expect(sent).toHaveLength(1);
    const { req } = sent[0]!;
    expect(req).toMatchObject({ service: 'web', method: 'POST', path: '/hook?x=1', body: '{"a":1}' });
    const headers = Object.fromEntries(Array.from({ length: req.headers.length / 2 }, (_, i) => [req.headers[2 * i], req.headers[2 * i + 1]]));
    expect(headers).toMatchObject({ 'x-cellhost-cron': 'job', authorization: 'Bearer chc_secret', 'x-cellhost-cron-scheduled-at': at(T0 + 10_000), 'content-type': 'application/json' });
    expect(runs()).toMatchObject([{ status: 'running', trigger: 'schedule', scheduledAt: T0 + 10_000 }]);
    sent[0]!.answer(200, { body: 'x'.repeat(3000) });
    await scheduler.idle();
    const [run] = runs();
    expect(run).toMatchObject({ status: 'ok', statusCode: 200, durationMs: FAKE_DURATION_MS });
    expect(run!.bodyHead).toHaveLength(1024);
    expect(control.get('web', 'job').nextRunAt).toBe(T0 + 20_000);
  });

  it('a non-2xx answer or no answer is a failure: recorded, an event, the last failure', async () => {
    control.create('web', { name: 'job', schedule: '* * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'allow', enabled: true });
    now = T0 + 60_000;
    scheduler.tick();
    sent[0]!.answer(503, { body: 'down' });
    now = T0 + 120_000;
    scheduler.tick();
    sent[1]!.fail(new Error('connect ECONNREFUSED'));
    await scheduler.idle();
    expect(runs().map((r) => [r.status, r.statusCode])).toEqual([
      ['failed', 503],
      ['failed', null],
    ]);
    expect(runs()[1]!.error).toMatch(/no answer: connect ECONNREFUSED/);
    expect(events.filter((e) => e.event === 'cron_failed')).toHaveLength(2);
    expect(control.get('web', 'job').lastFailure).toMatchObject({ scheduledAt: T0 + 120_000, status: 'failed' });
    expect(control.lastFailures()).toHaveLength(1);
  });

  it('overlap skip: a time that comes while the previous run goes is recorded as skipped; allow runs both', async () => {
    control.create('web', { name: 'job', schedule: '* * * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true });
    control.create('web', { name: 'both', schedule: '* * * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'allow', enabled: true });
    now = T0 + 1000;
    scheduler.tick();
    now = T0 + 2000;
    scheduler.tick();
    expect(runs('job').map((r) => r.status)).toEqual(['running', 'skipped']);
    expect(runs('both').map((r) => r.status)).toEqual(['running', 'running']);
    expect(sent).toHaveLength(3);
    expect(events.some((e) => e.event === 'cron_skipped' && e.fields.job === 'job')).toBe(true);
    for (const s of sent) s.answer(200);
    await scheduler.idle();
    now = T0 + 3000;
    scheduler.tick();
    expect(runs('job').map((r) => r.status)).toEqual(['ok', 'skipped', 'running']);
  });

  it('a time taken by a scheduler that dies is not run again by the next one: it is marked interrupted', async () => {
    control.create('web', { name: 'job', schedule: '*/5 * * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true });
    now = T0 + 5000;
    scheduler.tick();
    expect(sent).toHaveLength(1);
    // the platform dies here (its request never answered); a new one starts on the same store
    scheduler.stop();
    now = T0 + 6000;
    const next = newScheduler();
    next.start();
    expect(sent).toHaveLength(1);
    expect(runs()).toMatchObject([{ scheduledAt: T0 + 5000, status: 'interrupted' }]);
    now = T0 + 10_000;
    next.tick();
    expect(sent).toHaveLength(2);
    expect(runs().map((r) => r.scheduledAt)).toEqual([T0 + 5000, T0 + 10_000]);
    next.stop();
  });

  it('after downtime: the latest time that passed runs once at start, earlier ones are recorded as missed', async () => {
    control.create('web', { name: 'job', schedule: '* * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true });
    scheduler.stop();
    // down from T0 to 3.5 minutes later: T0+1m, +2m and +3m passed
    now = T0 + 210_000;
    const next = newScheduler();
    next.start();
    expect(runs().map((r) => [r.scheduledAt, r.status, r.trigger])).toEqual([
      [T0 + 60_000, 'missed', 'schedule'],
      [T0 + 120_000, 'missed', 'schedule'],
      [T0 + 180_000, 'running', 'catch_up'],
    ]);
    expect(sent).toHaveLength(1);
    expect(events.find((e) => e.event === 'cron_missed')?.fields).toMatchObject({ job: 'job', count: 2 });
    // one record per scheduled time, whatever else happens
    next.tick();
    next.start();
    expect(runs()).toHaveLength(3);
    expect(control.get('web', 'job').nextRunAt).toBe(T0 + 240_000);
    next.stop();
  });

  it('schedules in a time zone (default UTC), with a seconds field or as a nickname', () => {
    now = Date.parse('2026-01-05T12:00:00.000Z');
    expect(control.create('web', { name: 'paris', schedule: '0 9 * * 1-5', timeZone: 'Europe/Paris', method: 'GET', path: '/', overlap: 'skip', enabled: true }).nextRunAt).toBe(Date.parse('2026-01-06T08:00:00.000Z'));
    expect(control.create('web', { name: 'utc', schedule: '0 9 * * 1-5', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true }).nextRunAt).toBe(Date.parse('2026-01-06T09:00:00.000Z'));
    expect(control.create('web', { name: 'daily', schedule: '@daily', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true }).nextRunAt).toBe(Date.parse('2026-01-06T00:00:00.000Z'));
    expect(control.create('web', { name: 'secs', schedule: '30 * * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true }).nextRunAt).toBe(Date.parse('2026-01-05T12:00:30.000Z'));
  });

  it('refuses a bad schedule, time zone, a GET with a body, a duplicate name, with the field named', () => {
    const base = { name: 'job', schedule: '* * * * *', timeZone: 'UTC', method: 'GET' as const, path: '/', overlap: 'skip' as const, enabled: true };
    const fieldOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return [(err as CellhostError).code, (err as CellhostError).details?.field];
      }
      return null;
    };
    expect(fieldOf(() => control.create('web', { ...base, schedule: '61 * * * *' }))).toEqual(['ERR_VALIDATION', 'schedule']);
    expect(fieldOf(() => control.create('web', { ...base, schedule: '* * * *' }))).toEqual(['ERR_VALIDATION', 'schedule']);
    expect(fieldOf(() => control.create('web', { ...base, schedule: '* * * * * * *' }))).toEqual(['ERR_VALIDATION', 'schedule']);
    expect(fieldOf(() => control.create('web', { ...base, timeZone: 'Mars/Olympus' }))).toEqual(['ERR_VALIDATION', 'timeZone']);
    expect(fieldOf(() => control.create('web', { ...base, body: 'x' }))).toEqual(['ERR_VALIDATION', 'body']);
    control.create('web', base);
    expect(fieldOf(() => control.create('web', base))).toEqual(['ERR_CRON_EXISTS', undefined]);
    expect(fieldOf(() => control.get('web', 'nope'))).toEqual(['ERR_CRON_NOT_FOUND', undefined]);
    expect(fieldOf(() => control.list('other'))).toEqual(['ERR_SERVICE_NOT_FOUND', undefined]);
  });

  it('a disabled job does not run; enabled again, it counts from then (times that passed are not owed)', () => {
    control.create('web', { name: 'job', schedule: '* * * * *', timeZone: 'UTC', method: 'GET', path: '/', overlap: 'skip', enabled: true });
    expect(control.update('web', 'job', { enabled: false }).nextRunAt).toBeNull();
    now = T0 + 600_000;
    scheduler.tick();
    expect(sent).toHaveLength(0);
    expect(control.update('web', 'job', { enabled: true }).nextRunAt).toBe(T0 + 660_000);
    scheduler.tick();
    expect(runs()).toHaveLength(0);
  });

  it('a manual run goes whatever the schedule and is recorded as manual', async () => {
    control.create('web', { name: 'job', schedule: '0 0 1 1 *', timeZone: 'UTC', method: 'GET', path: '/now', overlap: 'skip', enabled: true });
    const pending = control.run('web', 'job');
    await flush();
    expect(sent[0]!.req.path).toBe('/now');
    sent[0]!.answer(204);
    expect(await pending).toMatchObject({ trigger: 'manual', scheduledAt: null, status: 'ok', statusCode: 204 });
  });
});
