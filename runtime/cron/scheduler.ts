// Runs cron jobs on time: one timer for the earliest due job; when it fires, each due job's
// scheduled time is taken (stored as done before the request leaves, so a time runs at most once
// even across a crash) and its request is sent through the router.
//
// After downtime, the latest scheduled time that passed is run once at start (it is less than
// one period late); the times before it are recorded as missed. A time that comes while the
// previous run still goes is skipped, unless the job allows overlap.
import { realTimers, type Clock, type Timers } from '../core/clock.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { LoopbackRequest, LoopbackResponse } from '../router/loopback.ts';
import type { CronJob, CronRun, CronRunStatus, CronStore, NewCronRun } from '../store/cron.ts';
import { parseSchedule, type Schedule } from './schedule.ts';

/** missed times recorded one by one at most; the first record then counts the rest */
const MISSED_RECORDED = 100;
/** the timer re-checks at least this often (clock changes, jobs added by another path) */
const MAX_SLEEP_MS = 30_000;
/** what a run keeps of the response body */
export const BODY_HEAD_BYTES = 1024;

export interface CronSchedulerDeps {
  store: CronStore;
  clock: Clock;
  send(req: LoopbackRequest): Promise<LoopbackResponse>;
  /** the service's cron secret (Authorization: Bearer ...) */
  secretFor(service: string): string;
  /** how long the router may take to answer a run of this service, at most */
  timeoutFor(service: string): number;
  onEvent(service: string, event: string, fields: Record<string, unknown>): void;
  log: Logger;
  timers?: Timers;
}

export interface CronTotals {
  ok: number;
  failed: number;
  skipped: number;
  missed: number;
}

export interface CronScheduler {
  /** marks runs a stopped platform left as interrupted, catches up, arms the timer */
  start(): void;
  /** takes every due scheduled time now (the timer calls it; tests call it after moving the clock) */
  tick(): void;
  /** jobs were added, changed or removed */
  changed(): void;
  /** runs a job now, outside its schedule; resolves with the finished run */
  runNow(job: CronJob): Promise<CronRun>;
  /** when the job would run next after now (null: never, or disabled) */
  nextAfter(job: Pick<CronJob, 'schedule' | 'timeZone'>, afterMs: number): number | null;
  inFlight(service: string, name: string): number;
  /** no new runs; runs under way go on */
  stop(): void;
  /** resolves once no run is under way */
  idle(): Promise<void>;
  /** runs per service and outcome since the start */
  totals(): Map<string, CronTotals>;
}

export function createCronScheduler(deps: CronSchedulerDeps): CronScheduler {
  const timers = deps.timers ?? realTimers;
  const schedules = new Map<string, Schedule>();
  const inFlight = new Map<string, number>();
  const pending = new Set<Promise<void>>();
  const totals = new Map<string, CronTotals>();
  let timer: unknown = null;
  let stopped = false;
  let startedAt = 0;

  const key = (service: string, name: string) => `${service}\0${name}`;
  const scheduleOf = (job: Pick<CronJob, 'schedule' | 'timeZone'>): Schedule => {
    const k = `${job.timeZone}\0${job.schedule}`;
    let s = schedules.get(k);
    if (!s) {
      s = parseSchedule(job.schedule, job.timeZone);
      schedules.set(k, s);
    }
    return s;
  };
  const count = (service: string, outcome: keyof CronTotals, n = 1) => {
    let t = totals.get(service);
    if (!t) totals.set(service, (t = { ok: 0, failed: 0, skipped: 0, missed: 0 }));
    t[outcome] += n;
  };
  const iso = (ms: number) => new Date(ms).toISOString();

  function arm(): void {
    if (timer !== null) timers.clear(timer);
    timer = null;
    if (stopped) return;
    let earliest = Infinity;
    for (const job of deps.store.listEnabled()) if (job.nextDueAt !== null && job.nextDueAt < earliest) earliest = job.nextDueAt;
    const wait = Math.min(MAX_SLEEP_MS, Math.max(0, earliest - deps.clock.now()));
    timer = timers.set(onTimer, wait);
  }

  function onTimer(): void {
    timer = null;
    try {
      tick();
    } catch (err) {
      deps.log.error('cron.tick_failed', { error: describeError(err) });
    }
    arm();
  }

  function tick(): void {
    if (stopped) return;
    const now = deps.clock.now();
    for (const job of deps.store.listEnabled()) {
      if (job.nextDueAt === null) {
        deps.store.update(job.service, job.name, job, scheduleOf(job).next(now), new Date(now).toISOString());
        continue;
      }
      if (job.nextDueAt > now) continue;
      try {
        takeDue(job, now);
      } catch (err) {
        // one job's failure (a full disk, say) must not stop the others
        deps.log.error('cron.take_failed', { service: job.service, job: job.name, error: describeError(err) });
      }
    }
  }

  function takeDue(job: CronJob, now: number): void {
    const schedule = scheduleOf(job);
    const due = job.nextDueAt!;
    const latest = Math.max(due, schedule.latest(now) ?? due);
    const next = schedule.next(latest);
    const missed: number[] = [];
    let more = 0;
    for (let t: number | null = due; t !== null && t < latest; t = schedule.next(t)) {
      if (missed.length < MISSED_RECORDED) missed.push(t);
      else if (++more > 10_000) break; // a count past this says enough
    }
    const skip = job.overlap === 'skip' && (inFlight.get(key(job.service, job.name)) ?? 0) > 0;
    const runs: NewCronRun[] = missed.map((t, i) => ({
      trigger: 'schedule',
      scheduledAt: t,
      startedAt: now,
      durationMs: null,
      status: 'missed',
      statusCode: null,
      error: i === 0 && more ? `not run: the platform was not running then (nor at ${more} more time(s) after the last one recorded)` : 'not run: the platform was not running then',
      bodyHead: null,
    }));
    runs.push({
      trigger: latest < startedAt ? 'catch_up' : 'schedule',
      scheduledAt: latest,
      startedAt: now,
      durationMs: skip ? 0 : null,
      status: skip ? 'skipped' : 'running',
      statusCode: null,
      error: skip ? 'skipped: the previous run was still going (overlap: skip)' : null,
      bodyHead: null,
    });
    const ids = deps.store.take(job.service, job.name, due, next, runs);
    if (!ids) return;
    if (missed.length) {
      count(job.service, 'missed', missed.length + more);
      deps.onEvent(job.service, 'cron_missed', { job: job.name, count: missed.length + more, from: iso(missed[0]!), to: iso(missed[missed.length - 1]!) });
    }
    if (skip) {
      count(job.service, 'skipped');
      deps.onEvent(job.service, 'cron_skipped', { job: job.name, scheduledAt: iso(latest) });
      return;
    }
    launch(job, ids[ids.length - 1]!, latest);
  }

  function launch(job: CronJob, runId: number, scheduledAt: number | null): Promise<void> {
    const k = key(job.service, job.name);
    inFlight.set(k, (inFlight.get(k) ?? 0) + 1);
    let secret: string;
    try {
      secret = deps.secretFor(job.service);
    } catch (err) {
      // (a full disk when the secret is first made): the run is recorded as failed, not left running
      finish(job, runId, scheduledAt, 'failed', null, `not sent: the cron secret could not be read (${describeError(err)})`, null, 0);
      const left = (inFlight.get(k) ?? 1) - 1;
      if (left) inFlight.set(k, left);
      else inFlight.delete(k);
      return Promise.resolve();
    }
    const headers = [
      'x-cellhost-cron', job.name,
      'authorization', `Bearer ${secret}`,
      'user-agent', 'cellhost-cron',
    ];
    if (scheduledAt !== null) headers.push('x-cellhost-cron-scheduled-at', iso(scheduledAt));
    if (job.body !== null) headers.push('content-type', job.contentType ?? 'application/json');
    const started = deps.clock.now();
    const p = deps
      .send({ service: job.service, method: job.method, path: job.path, headers, body: job.body, timeoutMs: deps.timeoutFor(job.service) })
      .then(
        (res) => {
          const ok = res.status >= 200 && res.status < 300;
          const interrupted = !ok && stopped && res.platformError === 'ERR_SHUTTING_DOWN';
          finish(job, runId, scheduledAt, interrupted ? 'interrupted' : ok ? 'ok' : 'failed', res.status, res.platformError, res.bodyHead.toString('utf8'), res.durationMs);
        },
        (err: unknown) => {
          const reason = stopped ? 'the platform stopped during the run' : `no answer: ${describeError(err)}`;
          finish(job, runId, scheduledAt, stopped ? 'interrupted' : 'failed', null, reason, null, deps.clock.now() - started);
        },
      )
      .catch((err: unknown) => deps.log.error('cron.record_failed', { service: job.service, job: job.name, error: describeError(err) }))
      .finally(() => {
        const left = (inFlight.get(k) ?? 1) - 1;
        if (left) inFlight.set(k, left);
        else inFlight.delete(k);
        pending.delete(p);
      });
    pending.add(p);
    return p;
  }

  function finish(job: CronJob, runId: number, scheduledAt: number | null, status: CronRunStatus, statusCode: number | null, error: string | null, bodyHead: string | null, durationMs: number): void {
    deps.store.finish(runId, { durationMs, status, statusCode, error, bodyHead });
    if (status === 'ok') count(job.service, 'ok');
    else {
      count(job.service, 'failed');
      deps.onEvent(job.service, 'cron_failed', {
        job: job.name,
        runId,
        scheduledAt: scheduledAt === null ? null : iso(scheduledAt),
        statusCode,
        error,
      });
    }
  }

  return {
    start() {
      startedAt = deps.clock.now();
      const interrupted = deps.store.interruptRunning();
      if (interrupted) deps.log.warn('cron.runs_interrupted', { count: interrupted });
      tick();
      arm();
    },
    tick,
    changed() {
      tick();
      arm();
    },
    async runNow(job) {
      const now = deps.clock.now();
      const id = deps.store.record(job.service, job.name, { trigger: 'manual', scheduledAt: null, startedAt: now, durationMs: null, status: 'running', statusCode: null, error: null, bodyHead: null });
      await launch(job, id, null);
      return deps.store.getRun(id)!;
    },
    nextAfter: (job, afterMs) => scheduleOf(job).next(afterMs),
    inFlight: (service, name) => inFlight.get(key(service, name)) ?? 0,
    stop() {
      stopped = true;
      if (timer !== null) timers.clear(timer);
      timer = null;
    },
    async idle() {
      while (pending.size) await Promise.all([...pending]);
    },
    totals: () => totals,
  };
}
