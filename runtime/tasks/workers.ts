// Delivers queued tasks: per service, up to its worker count at once, each as an HTTP request
// through the router (so the service scales from zero for them as for visitors). A 2xx completes
// the task; anything else, or no answer, is retried with exponential backoff until maxAttempts,
// then the task is dead-lettered. Every delivery carries the same task id, so the app can
// deduplicate the repeats that at-least-once delivery allows.
import { realTimers, type Clock, type Timers } from '../core/clock.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { LoopbackRequest, LoopbackResponse } from '../router/loopback.ts';
import type { QueueSettings, Task, TaskStore } from '../store/tasks.ts';

/** the timer re-checks at least this often */
const MAX_SLEEP_MS = 60_000;
/** done tasks are kept this long (their body is dropped at once), then removed */
export const DONE_KEPT_MS = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS = 10 * 60 * 1000;

export interface TaskWorkersDeps {
  store: TaskStore;
  clock: Clock;
  send(req: LoopbackRequest): Promise<LoopbackResponse>;
  /** how long the router may take to answer a delivery to this service, at most */
  timeoutFor(service: string): number;
  onEvent(service: string, event: string, fields: Record<string, unknown>): void;
  log: Logger;
  timers?: Timers;
}

export interface TaskTotals {
  delivered: number;
  failedAttempts: number;
  deadLettered: number;
}

export interface TaskWorkers {
  /** tasks a stopped platform had in flight are queued again; deliveries begin */
  start(): void;
  /** the service has new due tasks */
  kick(service: string): void;
  /** deliveries under way for the service */
  inFlight(service: string): number;
  /** no new deliveries; those under way finish (or are put back if the router refuses them) */
  stop(): void;
  idle(): Promise<void>;
  totals(): Map<string, TaskTotals>;
}

/** the wait before attempt `attempts + 1`: min · 2^(attempts−1), at most max; a Retry-After the app sent is honoured within max */
export function backoffMs(s: QueueSettings, attempts: number, retryAfterMs: number | null): number {
  const exp = Math.min(s.maxBackoffMs, s.minBackoffMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  return retryAfterMs === null ? exp : Math.min(s.maxBackoffMs, Math.max(exp, retryAfterMs));
}

export function createTaskWorkers(deps: TaskWorkersDeps): TaskWorkers {
  const timers = deps.timers ?? realTimers;
  const inFlight = new Map<string, number>();
  const pending = new Set<Promise<void>>();
  const totals = new Map<string, TaskTotals>();
  let timer: unknown = null;
  let timerAt = Infinity;
  let pruneTimer: NodeJS.Timeout | null = null;
  let stopped = true;

  const total = (service: string) => {
    let t = totals.get(service);
    if (!t) totals.set(service, (t = { delivered: 0, failedAttempts: 0, deadLettered: 0 }));
    return t;
  };

  /** sets the timer for `at` unless one is set for earlier */
  function armAt(at: number): void {
    if (stopped || at >= timerAt) return;
    if (timer !== null) timers.clear(timer);
    timerAt = at;
    timer = timers.set(onTimer, Math.min(MAX_SLEEP_MS, Math.max(0, at - deps.clock.now())));
  }

  function onTimer(): void {
    timer = null;
    timerAt = Infinity;
    if (stopped) return;
    const now = deps.clock.now();
    try {
      for (const service of deps.store.servicesDue(now)) pump(service);
      armAt(deps.store.nextDueAfter(now) ?? now + MAX_SLEEP_MS);
    } catch (err) {
      deps.log.error('tasks.schedule_failed', { error: describeError(err) });
      armAt(now + 1000);
    }
  }

  function pump(service: string): void {
    if (stopped) return;
    const settings = deps.store.settings(service);
    while ((inFlight.get(service) ?? 0) < settings.workers) {
      const task = deps.store.claim(service, deps.clock.now());
      if (!task) return;
      deliver(task, settings);
    }
  }

  function deliver(task: Task, settings: QueueSettings): void {
    const service = task.service;
    inFlight.set(service, (inFlight.get(service) ?? 0) + 1);
    const headers = [...task.headers, 'x-cellhost-task-id', task.id, 'x-cellhost-task-attempt', String(task.attempts)];
    const p = deps
      .send({ service, method: task.method, path: task.path, headers, body: task.body, timeoutMs: deps.timeoutFor(service) })
      .then(
        (res) => settle(task, settings, res.status, res.platformError ?? `the app answered ${res.status}`, res.retryAfterMs, res.platformError),
        (err: unknown) => settle(task, settings, null, `no answer: ${describeError(err)}`, null, null),
      )
      .catch((err: unknown) => deps.log.error('tasks.record_failed', { service, task: task.id, error: describeError(err) }))
      .finally(() => {
        const left = (inFlight.get(service) ?? 1) - 1;
        if (left) inFlight.set(service, left);
        else inFlight.delete(service);
        pending.delete(p);
        try {
          pump(service);
        } catch (err) {
          deps.log.error('tasks.schedule_failed', { service, error: describeError(err) });
        }
      });
    pending.add(p);
  }

  function settle(task: Task, settings: QueueSettings, status: number | null, reason: string, retryAfterMs: number | null, platformError: string | null): void {
    const now = deps.clock.now();
    if (status !== null && status >= 200 && status < 300) {
      deps.store.complete(task.id, now, status);
      total(task.service).delivered++;
      return;
    }
    // cut by the platform's own stop (no answer, or the router's own refusal): not the app's failure
    if (stopped && (status === null || platformError !== null)) {
      deps.store.putBack(task.id, now);
      return;
    }
    total(task.service).failedAttempts++;
    if (task.attempts >= settings.maxAttempts) {
      deps.store.deadLetter(task.id, now, status, reason);
      total(task.service).deadLettered++;
      deps.onEvent(task.service, 'task_dead', { taskId: task.id, attempts: task.attempts, statusCode: status, error: reason });
      return;
    }
    const due = now + backoffMs(settings, task.attempts, retryAfterMs);
    deps.store.retryLater(task.id, due, status, reason);
    armAt(due);
  }

  return {
    start() {
      stopped = false;
      const now = deps.clock.now();
      const recovered = deps.store.recoverRunning(now);
      if (recovered) deps.log.warn('tasks.recovered', { count: recovered });
      const prune = () => {
        try {
          deps.store.pruneDone(deps.clock.now() - DONE_KEPT_MS);
        } catch (err) {
          deps.log.error('tasks.prune_failed', { error: describeError(err) });
        }
      };
      prune();
      pruneTimer = setInterval(prune, PRUNE_EVERY_MS).unref();
      armAt(now);
    },
    kick(service) {
      pump(service);
    },
    inFlight: (service) => inFlight.get(service) ?? 0,
    stop() {
      stopped = true;
      if (timer !== null) timers.clear(timer);
      timer = null;
      timerAt = Infinity;
      if (pruneTimer) clearInterval(pruneTimer);
      pruneTimer = null;
    },
    async idle() {
      while (pending.size) await Promise.all([...pending]);
    },
    totals: () => totals,
  };
}
