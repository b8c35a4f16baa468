// Prewarmed instances: a service scaled to zero keeps one instance whose app has run its start
// command and passed readiness, frozen with the cgroup freezer, so its next request is a thaw
// (a few ms) instead of a start. One is made when a version is about to go live (the app its
// start check started, kept instead of stopped: one start, before any request), when an instance reaches its idle timeout (frozen and kept instead of
// stopped), and after the platform restarts. All of them together hold at most the budget, counted
// from each one's cgroup memory; when a new one does not fit, the least recently used go first,
// and a new one older than every one it would have to push out is not kept.
//
// Not to be confused with a standby (standby.ts): a standby is a prepared sandbox whose app has
// not started; a prewarmed instance is the app itself, started and frozen.
import { CellhostError, describeError } from '../../core/errors.ts';
import type { Freezer } from './freezer.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Instance, PoolContext, PrewarmState, ServiceState } from './state.ts';
import type { PrewarmOutcome, PrewarmReason, Target } from './types.ts';
import type { CheckedInstance } from './verify.ts';

/** CELLHOST_PREWARM_MB unset: a quarter of the host's memory, at most what is free now */
export function prewarmBudgetBytes(configuredMb: number | null, totalBytes: number, freeBytes: number): number {
  if (configuredMb !== null) return configuredMb * 1024 * 1024;
  return Math.max(0, Math.min(Math.floor(totalBytes / 4), freeBytes));
}

export interface Prewarm {
  /** whether the service's target asks for one and the platform has a budget */
  isEligible(t: Target | null): t is Target;
  /** a deployment's start check passed: its app, still running, is kept (frozen) instead of stopped */
  keepChecked(s: ServiceState, target: Target, checked: CheckedInstance): Promise<PrewarmOutcome>;
  /** start an instance of `target` ahead of any request, then keep it (see keep) */
  startAhead(s: ServiceState, target: Target, reason: PrewarmReason, lastUsedAt: number): Promise<PrewarmOutcome>;
  /**
   * an idle instance, the last of its service, reached its idle timeout: true when it is being kept
   * (frozen and counted) instead of stopped; the sweeper stops it otherwise
   */
  keepAtIdleTimeout(s: ServiceState, inst: Instance, idleMs: number): boolean;
  /** a request is about to thaw it: it leaves the budget and serves as a warm instance */
  taken(inst: Instance): boolean;
  /** the host is short of memory: stop the least recently used one; false when there is none */
  evictOne(why: 'memory'): boolean;
  /** stop the service's kept ones (its setting turned prewarm off) */
  dropService(s: ServiceState): void;
}

export interface PrewarmOptions {
  budgetBytes: number;
  isMemoryLow?(): boolean;
  freezer: Freezer;
  lifecycle: Pick<Lifecycle, 'start' | 'adopt' | 'remove' | 'lastOutputAt'>;
}

/**
 * A fresh start is frozen once its output has been quiet this long since it became ready (at most
 * SETTLE_MAX_MS after): an app's "listening on" line comes just after its port opens, and an app
 * frozen in between would say it only when a request thaws it.
 */
const SETTLE_QUIET_MS = 50;
const SETTLE_MAX_MS = 500;

/**
 * Room made before a freeze beyond what the instance held when measured: between that reading
 * and the freeze it still runs (a collection, a timer), and the kernel charges memory in batches.
 * A 300 MB budget of 39 node apps ended 1 MB over without it.
 */
const FREEZE_HEADROOM_BYTES = 1024 * 1024;

export function createPrewarm(ctx: PoolContext, opts: PrewarmOptions): Prewarm {
  const { clock, emit } = ctx;
  // keeps run one at a time: each decides from what the others left
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  };

  function kept(): { s: ServiceState; inst: Instance }[] {
    const out: { s: ServiceState; inst: Instance }[] = [];
    for (const s of ctx.services.values()) for (const inst of s.instances) if (inst.prewarm?.kept && inst.state !== 'stopped') out.push({ s, inst });
    return out;
  }

  async function evict(victim: { s: ServiceState; inst: Instance }, why: 'budget' | 'memory' | 'off'): Promise<void> {
    const { s, inst } = victim;
    const p = inst.prewarm!;
    p.kept = false;
    emit({ type: 'prewarm_evicted', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, why, keptMs: clock.now() - p.since, memoryBytes: p.memoryBytes });
    // out of service before the thaw: thawed but not yet stopped, it looked like a warm instance,
    // and a request sent to it then failed (502) as the stop closed it
    opts.lifecycle.remove(s, inst);
    // thawed (and so no longer counted as frozen memory) before the next one is frozen
    await opts.freezer.thawToStop(inst);
  }

  /** waits until a fresh start's output has been quiet SETTLE_QUIET_MS since it became ready */
  async function settled(inst: Instance): Promise<void> {
    const readyAt = inst.readyAt ?? clock.now();
    for (let round = 0; round <= SETTLE_MAX_MS / SETTLE_QUIET_MS && inst.state === 'ready'; round++) {
      const quietSince = Math.max(readyAt, opts.lifecycle.lastOutputAt(inst.id) ?? 0);
      const wait = Math.min(quietSince + SETTLE_QUIET_MS, readyAt + SETTLE_MAX_MS) - clock.now();
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * Which kept instances must go for `bytes` more to fit, least recently used first and only ones
   * used less recently than `lastUsedAt`; null when they cannot make room. `othersBytes` is what
   * the rest hold.
   */
  function makeRoom(inst: Instance, bytes: number, lastUsedAt: number): { victims: { s: ServiceState; inst: Instance }[]; othersBytes: number } | null {
    const others = kept().filter((k) => k.inst !== inst).sort((a, b) => a.inst.prewarm!.lastUsedAt - b.inst.prewarm!.lastUsedAt);
    let total = others.reduce((a, k) => a + k.inst.prewarm!.memoryBytes, 0);
    const victims: typeof others = [];
    for (const k of others) {
      if (total + bytes <= opts.budgetBytes) break;
      if (k.inst.prewarm!.lastUsedAt > lastUsedAt) break;
      victims.push(k);
      total -= k.inst.prewarm!.memoryBytes;
    }
    return total + bytes > opts.budgetBytes ? null : { victims, othersBytes: total };
  }

  /** the instance is ready and idle: measure it, make room, freeze it, count what it holds frozen */
  async function keep(s: ServiceState, inst: Instance, reason: PrewarmReason, lastUsedAt: number): Promise<PrewarmOutcome> {
    const state: PrewarmState = (inst.prewarm = { reason, since: inst.prewarm?.since ?? clock.now(), kept: false, pending: true, lastUsedAt, memoryBytes: 0, startMs: inst.readyAt !== null && inst.startedAhead ? inst.readyAt - inst.preparedAt : null });
    const settle = (outcome: PrewarmOutcome): PrewarmOutcome => {
      state.pending = false;
      if (outcome.kind !== 'kept') {
        if (outcome.kind === 'no-room') emit({ type: 'prewarm_skipped', service: s.name, deploymentId: inst.deploymentId, reason, message: outcome.reason });
        // a request took it: it stays as a warm instance; otherwise it goes
        if (outcome.kind !== 'taken' && inst.inflight === 0) opts.lifecycle.remove(s, inst);
        if (outcome.kind !== 'taken') inst.prewarm = null;
      }
      return outcome;
    };
    const stillIdle = () => inst.state === 'ready' && !inst.exited && inst.inflight === 0;
    // a request took it (it serves, warm), or it stopped
    const notIdle = (): PrewarmOutcome => (inst.state === 'ready' && !inst.exited ? { kind: 'taken', instanceId: inst.id } : { kind: 'failed', code: 'ERR_APP_CRASHED', message: 'the instance stopped before it was kept' });
    if (reason !== 'idle') await settled(inst);
    return serially(async () => {
      if (!stillIdle()) return settle(notIdle());
      if (!inst.proc.canFreeze) return settle({ kind: 'off', reason: 'the cgroup freezer is not available: instances cannot be frozen' });
      if (opts.isMemoryLow?.()) return settle({ kind: 'no-room', reason: 'the host is short of memory' });
      const before = (await inst.proc.memoryBytes()) ?? 0;
      if (!stillIdle()) return settle({ kind: 'taken', instanceId: inst.id });
      if (before > opts.budgetBytes) return settle({ kind: 'no-room', reason: `it holds ${mb(before)}, more than the budget of ${mb(opts.budgetBytes)} (CELLHOST_PREWARM_MB)` });
      // room for what it holds now and what it may still touch before the freezer stops it
      const room = makeRoom(inst, Math.min(before + FREEZE_HEADROOM_BYTES, opts.budgetBytes), lastUsedAt);
      if (!room) return settle({ kind: 'no-room', reason: `the budget of ${mb(opts.budgetBytes)} (CELLHOST_PREWARM_MB) is held by more recently used services` });
      await Promise.all(room.victims.map((v) => evict(v, 'budget')));
      if (!stillIdle()) return settle({ kind: 'taken', instanceId: inst.id });
      const idleMs = clock.now() - inst.idleSince;
      if (!inst.frozen) opts.freezer.freeze(s, inst, idleMs, true);
      await inst.freezeOp;
      if (!inst.frozen) return settle({ kind: 'failed', code: 'ERR_INTERNAL', message: 'the instance could not be frozen' });
      // counted by what it holds frozen, which stays put until it is thawed: what the kernel reports
      const bytes = (await inst.proc.memoryBytes()) ?? before;
      state.memoryBytes = bytes;
      // a request may have thawed it meanwhile (then it serves, warm), or it stopped
      const takenMeanwhile = () => !inst.frozen || !stillIdle();
      if (takenMeanwhile()) return settle(notIdle());
      const over = makeRoom(inst, bytes, lastUsedAt);
      if (!over) {
        // it grew past the headroom while it was being frozen, and nothing older can make room
        await opts.freezer.thawToStop(inst);
        return settle({ kind: 'no-room', reason: `frozen, it holds ${mb(bytes)}: the budget of ${mb(opts.budgetBytes)} (CELLHOST_PREWARM_MB) is held by more recently used services` });
      }
      await Promise.all(over.victims.map((v) => evict(v, 'budget')));
      if (takenMeanwhile()) return settle(notIdle());
      const total = over.othersBytes;
      state.kept = true;
      emit({
        type: 'prewarmed',
        service: s.name,
        instanceId: inst.id,
        deploymentId: inst.deploymentId,
        reason,
        startedAt: new Date(inst.startedAt).toISOString(),
        startMs: state.startMs,
        memoryBytes: bytes,
        budgetBytes: opts.budgetBytes,
        keptBytes: total + bytes,
      });
      return settle({ kind: 'kept', instanceId: inst.id, startMs: state.startMs, memoryBytes: bytes });
    });
  }

  const isEligible = (t: Target | null): t is Target => opts.budgetBytes > 0 && t !== null && t.prewarm && t.minInstances === 0 && t.maxInstances >= 1;

  return {
    isEligible,

    keepChecked(s, target, checked) {
      const inst = opts.lifecycle.adopt(s, target, checked);
      return keep(s, inst, 'deploy', clock.now());
    },

    async startAhead(s, target, reason, lastUsedAt) {
      if (!isEligible(target)) return { kind: 'off', reason: opts.budgetBytes > 0 ? 'prewarm is off for this service (or it keeps instances running)' : 'prewarming is off (CELLHOST_PREWARM_MB=0)' };
      if (ctx.isClosing()) return { kind: 'off', reason: 'the platform is shutting down' };
      const existing = s.instances.find((i) => i.generation === target.generation && i.state !== 'stopped' && !i.exited);
      if (existing?.prewarm?.kept) return { kind: 'kept', instanceId: existing.id, startMs: existing.prewarm.startMs, memoryBytes: existing.prewarm.memoryBytes };
      if (existing && existing.state !== 'starting') return { kind: 'taken', instanceId: existing.id };
      const inst = existing ?? opts.lifecycle.start(s, target, { ahead: true });
      try {
        await inst.ready;
      } catch (err) {
        const coded = err instanceof CellhostError ? err : null;
        return { kind: 'failed', code: coded?.code ?? 'ERR_APP_EXITED', message: coded?.message ?? describeError(err) };
      }
      return keep(s, inst, reason, lastUsedAt);
    },

    keepAtIdleTimeout(s, inst, idleMs) {
      const t = s.target;
      if (!isEligible(t) || inst.generation !== t.generation || !inst.proc.canFreeze || ctx.isClosing()) return false;
      // one per service, and only for a service that is scaling to zero
      if (s.instances.some((i) => i !== inst && i.state !== 'stopped')) return false;
      void keep(s, inst, 'idle', clock.now() - idleMs);
      return true;
    },

    taken(inst) {
      const p = inst.prewarm;
      if (!p?.kept) return false;
      p.kept = false;
      return true;
    },

    evictOne(why) {
      const lru = kept().sort((a, b) => a.inst.prewarm!.lastUsedAt - b.inst.prewarm!.lastUsedAt)[0];
      if (!lru) return false;
      void evict(lru, why);
      return true;
    },

    dropService(s) {
      for (const inst of [...s.instances]) if (inst.prewarm?.kept) void evict({ s, inst }, 'off');
    },

  };

  function mb(bytes: number): string {
    return `${Math.round(bytes / 1024 / 1024)} MB`;
  }
}
