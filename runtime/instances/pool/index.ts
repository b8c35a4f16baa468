// The instance pool: service → a warm upstream with spare capacity. Cold starts are
// single-flight per capacity slot (requests that arrive during a start wait for it), scale to
// zero is an idle sweep, and a new generation (deployment or env change) replaces instances
// without dropping a request: old ones keep serving until a new one is ready, then drain.
//
// This file composes the pieces, each in its own file: placement (which instance serves, or
// whether to start one: a pure function), lifecycle (start, exit, stop, standbys), the wait
// queue, leases, the freezer, crash-loop backoff, rollout, prewarmed instances (started ahead
// and frozen, within a memory budget), the idle sweep and the start check a deployment passes
// before it goes live.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../core/clock.ts';
import { CellhostError, describeError } from '../../core/errors.ts';
import { loadLlhttpBinding } from '../../core/llhttp-binding.ts';
import { silentLogger } from '../../core/log.ts';
import { createBackoff } from './backoff.ts';
import { createFreezer } from './freezer.ts';
import { createLeases } from './lease.ts';
import { createLifecycle } from './lifecycle.ts';
import { createPrewarm } from './prewarm.ts';
import { defaultMaxParallelStarts, place, type PlacementRules } from './placement.ts';
import { createWaitQueue } from './queue.ts';
import { createRollout } from './rollout.ts';
import { newServiceState, type Instance, type PoolContext, type ServiceState } from './state.ts';
import { startSweeper } from './sweeper.ts';
import type { Pool, PoolOptions, PrewarmOutcome, Target } from './types.ts';
import { createStartChecks } from './verify.ts';

export type { InstanceInfo, InstanceState, Lease, Pool, PoolEvent, PoolObserver, PoolOptions, PrewarmOutcome, PrewarmReason, Target } from './types.ts';
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
    upstream: { parser: opts.upstreamParser === undefined ? loadedParser() : opts.upstreamParser },
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
    onControl(service, instanceId, line) {
      const s = services.get(service);
      const inst = s?.instances.find((i) => i.id === instanceId);
      if (!s || !inst || inst.state === 'stopped') return;
      // work the app still does after answering (waitUntil) is a request in flight: billed, and
      // the instance is not frozen or stopped under it
      if (line === 'busy' && !inst.backgroundLease) {
        inst.inflight++;
        inst.backgroundLease = leases.lease(s, inst, false);
      } else if (line === 'idle' && inst.backgroundLease) {
        const held = inst.backgroundLease;
        inst.backgroundLease = null;
        held.release();
      }
    },
  });
  const rollout = createRollout(lifecycle, backoff);
  const queue = createWaitQueue({ limit: opts.queueLimit, timeoutMs: opts.queueTimeoutMs, pick, backoffError: backoff.error });
  const prewarm = createPrewarm(ctx, { budgetBytes: opts.prewarmBudgetBytes ?? 0, isMemoryLow: opts.isMemoryLow, freezer, lifecycle });
  const leases = createLeases(ctx, { freezer, lifecycle, prewarm, onRelease: (s) => queue.dispatch(s) });
  const checks = createStartChecks(ctx, {
    launcher: opts.launcher,
    startTimeoutMs: opts.startTimeoutMs,
    onOutput: opts.onOutput,
    // a version that passed its start check is the prewarmed instance, when one is wanted: one
    // start, not a check and then another start ahead
    keeper: {
      wants: (name, target) => !closing && prewarm.isEligible(target),
      async keep(name, target, checked) {
        let s = services.get(name);
        if (!s) services.set(name, (s = newServiceState(name)));
        s.checkedGeneration = target.generation;
        const outcome = await prewarm.keepChecked(s, target, checked);
        logOutcome(name, outcome);
        return outcome;
      },
    },
  });
  const stopSweeping = startSweeper(ctx, {
    everyMs: opts.sweepMs ?? 250,
    freezeAfterMs: opts.freezeAfterMs ?? 30_000,
    isMemoryLow: opts.isMemoryLow,
    freezer,
    backoff,
    lifecycle,
    prewarm,
  });

  const logOutcome = (service: string, outcome: PrewarmOutcome) => {
    if (outcome.kind === 'failed') log.warn('prewarm.failed', { service, code: outcome.code, message: outcome.message });
  };

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
      const changed = !target || prev?.generation !== target.generation;
      if (changed) void lifecycle.discardStandby(name);
      if (!target) {
        queue.rejectAll(s, new CellhostError('ERR_NO_DEPLOYMENT', `service "${name}" has no live deployment`));
        for (const inst of [...s.instances]) lifecycle.drain(s, inst);
        if (!s.instances.length) services.delete(name);
        return;
      }
      // its setting turned prewarming off, or it keeps instances running now
      if (!prewarm.isEligible(target)) prewarm.dropService(s);
      if (prev && changed) rollout.replace(s, target);
      lifecycle.ensureMin(s);
      queue.dispatch(s);
      // a version just made live will be asked for soon: its app started and frozen ahead (a
      // prewarmed instance) when the budget allows, else its sandbox prepared (a standby). At the
      // platform's start, services get theirs in order of last use (prewarm, reason 'restart').
      // A version whose start check was offered as the prewarmed instance is not started again:
      // it is kept already, or there was no room for it a moment ago
      const checked = s.checkedGeneration === target.generation;
      s.checkedGeneration = null;
      if (!options?.standby || !changed) return;
      if (prewarm.isEligible(target) && !checked && !s.instances.some((i) => i.generation === target.generation && i.state !== 'stopped')) {
        const reason = prev && prev.spec.deploymentId === target.spec.deploymentId ? 'change' : 'deploy';
        void prewarm.startAhead(s, target, reason, clock.now()).then((outcome) => {
          logOutcome(name, outcome);
          // not kept (no room, or it failed): the next start is at least a quick one
          if (outcome.kind === 'no-room' || outcome.kind === 'failed') lifecycle.prepareStandby(s);
        });
      } else lifecycle.prepareStandby(s);
    },

    verify: (name, target, options) => checks.verify(name, target, options),

    async prewarm(name, target, prewarmOpts) {
      if (closing) return { kind: 'off', reason: 'the platform is shutting down' };
      let s = services.get(name);
      if (!s) services.set(name, (s = newServiceState(name)));
      const outcome = await prewarm.startAhead(s, target, prewarmOpts.reason, prewarmOpts.lastUsedAt ?? clock.now());
      logOutcome(name, outcome);
      return outcome;
    },

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
        prewarm: i.prewarm && !i.prewarm.pending
          ? { reason: i.prewarm.reason, since: new Date(i.prewarm.since).toISOString(), kept: i.prewarm.kept, memoryBytes: i.prewarm.memoryBytes, startedAhead: i.prewarm.startMs !== null }
          : null,
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

/** Node's parser for the instances' connections, when it works here (else undici's client is used) */
function loadedParser() {
  const b = loadLlhttpBinding();
  return b.ok ? b.binding : null;
}
