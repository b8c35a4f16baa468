// The instance pool: service → a warm upstream with spare capacity. Cold starts are
// single-flight per capacity slot (requests that arrive during a start wait for it), scale to
// zero is an idle sweep, and a new generation (deployment or env change) replaces instances
// without dropping a request: old ones keep serving until a new one is ready, then drain.
//
// This file composes the pieces, each in its own file: placement (which instance serves, or
// whether to start one: a pure function), lifecycle (start, exit, stop, standbys), the wait
// queue, leases, the freezer, crash-loop backoff, rollout, the idle sweep and the start check
// a deployment passes before it goes live.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../core/clock.ts';
import { CellhostError, describeError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { createBackoff } from './backoff.ts';
import { createFreezer } from './freezer.ts';
import { createLeases } from './lease.ts';
import { createLifecycle } from './lifecycle.ts';
import { defaultMaxParallelStarts, place, type PlacementRules } from './placement.ts';
import { createWaitQueue } from './queue.ts';
import { createRollout } from './rollout.ts';
import { newServiceState, type Instance, type PoolContext, type ServiceState } from './state.ts';
import { startSweeper } from './sweeper.ts';
import type { Pool, PoolOptions, Target } from './types.ts';
import { createStartChecks } from './verify.ts';

export type { InstanceInfo, InstanceState, Lease, Pool, PoolEvent, PoolObserver, PoolOptions, Target } from './types.ts';
export { backoffDelay } from './backoff.ts';
export type { VerifyOptions, VerifyOutcome } from './verify.ts';

/** how long a host with no core free holds a scale-out back (see placement) */
const MAX_SCALE_OUT_HOLD_MS = 1000;

export function createPool(opts: PoolOptions): Pool {
  const log = opts.log ?? silentLogger;
  const services = new Map<string, ServiceState>();
  let closing = false;
  const ctx: PoolContext = {
    clock: opts.clock ?? systemClock,
    log,
    observer: opts.observer,
    services,
    emit(event) {
      try {
        opts.onEvent?.(event);
      } catch (err) {
        log.error('pool.event_handler_failed', { error: describeError(err) });
      }
    },
    isClosing: () => closing,
  };
  const { clock } = ctx;
  const rules: PlacementRules = {
    scaleOutAfterMs: opts.scaleOutAfterMs ?? 50,
    maxParallelStarts: opts.maxParallelStarts ?? defaultMaxParallelStarts(os.availableParallelism()),
    maxHoldMs: MAX_SCALE_OUT_HOLD_MS,
    hostCpu: opts.hostCpu,
  };

  // The pieces call each other in a cycle (a ready instance takes queued requests, the queue
  // starts instances): each is handed functions that run only after all of them exist.
  const backoff = createBackoff(ctx, (s) => queue.dispatch(s));
  const freezer = createFreezer(ctx);
  const lifecycle = createLifecycle(ctx, {
    launcher: opts.launcher,
    startTimeoutMs: opts.startTimeoutMs,
    onOutput: opts.onOutput,
    standbys: opts.standbys ?? 0,
    freezer,
    backoff,
    onReady(s, inst) {
      rollout.onReady(s, inst);
      queue.dispatch(s);
    },
    onLost: (s) => queue.dispatch(s),
  });
  const rollout = createRollout(lifecycle, backoff);
  const queue = createWaitQueue({ limit: opts.queueLimit, timeoutMs: opts.queueTimeoutMs, pick, backoffError: backoff.error });
  const leases = createLeases(ctx, { freezer, lifecycle, onRelease: (s) => queue.dispatch(s) });
  const checks = createStartChecks(ctx, { launcher: opts.launcher, startTimeoutMs: opts.startTimeoutMs });
  const stopSweeping = startSweeper(ctx, {
    everyMs: opts.sweepMs ?? 250,
    freezeAfterMs: opts.freezeAfterMs ?? 30_000,
    isMemoryLow: opts.isMemoryLow,
    freezer,
    backoff,
    lifecycle,
  });

  /** placement, carried out: an instance with a slot for this request (a new one if placement
   *  says start), null to wait for one, or 'backoff' */
  function pick(s: ServiceState, t: Target): Instance | 'backoff' | null {
    const now = clock.now();
    const p = place(s, t, now, rules);
    switch (p.kind) {
      case 'serve':
        return p.instance;
      case 'start':
        return lifecycle.start(s, t);
      case 'backoff':
        return 'backoff';
      case 'hold':
        if (p.isFirst) {
          s.pressure.heldReported = true;
          ctx.emit({ type: 'scale_out_held', service: s.name, instances: s.instances.length, queued: s.waiters.length });
        }
        openScaleOutWindow(s, now);
        return null;
      case 'wait':
        if (p.opensWindow) {
          s.pressure.episodeSince = now;
          openScaleOutWindow(s, now);
        }
        return null;
    }
  }

  /** from now, requests wait for a full warm instance; placement is asked again when the window is over */
  function openScaleOutWindow(s: ServiceState, now: number): void {
    s.pressure.since = now;
    s.pressure.completedAtOpen = s.completed;
    s.pressure.cpu = opts.hostCpu?.mark() ?? null;
    setTimeout(() => queue.dispatch(s), rules.scaleOutAfterMs + 1).unref();
  }

  return {
    async acquire(name) {
      if (closing) throw new CellhostError('ERR_SHUTTING_DOWN', 'the platform is shutting down');
      const s = services.get(name);
      const t = s?.target;
      if (!s || !t) throw new CellhostError('ERR_NO_DEPLOYMENT', `service "${name}" has no live deployment yet`);
      const inst = pick(s, t);
      if (inst === 'backoff') throw backoff.error(s);
      if (inst) return leases.take(s, inst);
      return leases.take(s, await queue.wait(s, t), true);
    },

    tryAcquire(name) {
      const s = services.get(name);
      const t = s?.target;
      // anyone queued goes first (FIFO), and every other case (cold, frozen, full, retiring) is acquire()'s
      if (closing || !s || !t || s.waiters.length) return null;
      for (const inst of s.instances) {
        if (inst.state === 'ready' && inst.generation === t.generation && !inst.frozen && !inst.exited && inst.inflight < t.concurrency) {
          inst.inflight++;
          return leases.lease(s, inst, false);
        }
      }
      return null;
    },

    setTarget(name, target, options) {
      let s = services.get(name);
      if (!s) services.set(name, (s = newServiceState(name)));
      const prev = s.target;
      s.target = target;
      if (!target || prev?.generation !== target.generation) void lifecycle.discardStandby(name);
      if (!target) {
        queue.rejectAll(s, new CellhostError('ERR_NO_DEPLOYMENT', `service "${name}" has no live deployment`));
        for (const inst of [...s.instances]) lifecycle.drain(s, inst);
        if (!s.instances.length) services.delete(name);
        return;
      }
      if (prev && prev.generation !== target.generation) rollout.replace(s, target);
      lifecycle.ensureMin(s);
      queue.dispatch(s);
      // a version just made live will be asked for soon; at the platform's start, no service gets
      // one until it has been used and scaled to zero
      if (options?.standby && prev?.generation !== target.generation) lifecycle.prepareStandby(s);
    },

    verify: (name, target, options) => checks.verify(name, target, options),

    async stopService(name, graceMs) {
      this.setTarget(name, null);
      const checked = checks.stop(name);
      const deadline = clock.now() + graceMs;
      while (clock.now() < deadline && services.get(name)?.instances.some((i) => i.inflight > 0)) await sleep(20);
      const s = services.get(name);
      if (s) for (const inst of [...s.instances]) lifecycle.remove(s, inst);
      if (s && !s.instances.length && !s.target) services.delete(name);
      await Promise.all([lifecycle.stopped(name), lifecycle.discardStandby(name), checked]);
    },

    instances(name) {
      const s = services.get(name);
      if (!s) return [];
      return s.instances.map((i) => ({
        id: i.id,
        deploymentId: i.deploymentId,
        state: i.state,
        pid: i.proc?.pid ?? -1,
        inflight: i.inflight,
        frozen: i.frozen,
        startedAt: new Date(i.startedAt).toISOString(),
        readyAt: i.readyAt ? new Date(i.readyAt).toISOString() : null,
      }));
    },

    async close(graceMs) {
      closing = true;
      stopSweeping();
      for (const s of services.values()) queue.rejectAll(s, new CellhostError('ERR_SHUTTING_DOWN', 'the platform is shutting down'));
      const deadline = clock.now() + graceMs;
      while (clock.now() < deadline && [...services.values()].some((s) => s.instances.some((i) => i.inflight > 0))) await sleep(20);
      for (const s of services.values()) for (const inst of [...s.instances]) lifecycle.remove(s, inst);
      await Promise.all([lifecycle.close(), checks.close()]);
      services.clear();
    },
  };
}
