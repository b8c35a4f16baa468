// Freeze and thaw: an instance idle for a while is frozen with the cgroup freezer (no CPU, not
// billed, memory kept) and thawed in a few ms when a request comes or before it is stopped. The
// freezes and thaws of one instance run one after the other (`freezeOp`).
import { describeError } from '../../core/errors.ts';
import { closeUpstream, openUpstream } from '../upstream.ts';
import type { Instance, PoolContext, PrewarmState, ServiceState } from './state.ts';

export interface Freezer {
  /** `quiet`: the caller logs why (a prewarmed instance being kept) */
  freeze(s: ServiceState, inst: Instance, idleMs: number, quiet?: boolean): void;
  /** resume it for a request; rejects when the freezer fails (the instance is then unusable).
   *  `prewarmed`: it was a prewarmed instance, thawed for its first request (the log says so) */
  thaw(s: ServiceState, inst: Instance, prewarmed?: PrewarmState | null): Promise<void>;
  /** resume it before it is stopped: a frozen process cannot see SIGTERM */
  thawToStop(inst: Instance): Promise<void>;
  /** the instance frozen longest, of all services: the first to go when memory runs short */
  oldestFrozen(): { s: ServiceState; inst: Instance } | null;
}

export function createFreezer(ctx: PoolContext): Freezer {
  return {
    freeze(s, inst, idleMs, quiet = false) {
      inst.frozen = true;
      // idle keep-alive connections would be closed by the app the moment it thaws (its
      // keep-alive timer is long overdue), racing the request sent on them: the thawed app gets a
      // fresh one, opened once it is frozen (below)
      closeUpstream(inst.connections);
      inst.connections = null;
      inst.frozenAt = ctx.clock.now();
      ctx.observer?.paused?.(inst.id);
      inst.freezeOp = inst.freezeOp
        .then(() => inst.proc.freeze())
        .then(() => {
          // a connection opened now completes its handshake in the kernel and waits in the frozen
          // app's accept queue: the request that thaws the app is sent without a connect first
          if (inst.frozen && inst.connections === null) inst.connections = openUpstream(inst.upstream, s.target?.concurrency ?? 1, { ...ctx.upstream, connectNow: true });
        })
        .catch((err) => {
          inst.frozen = false;
          ctx.log.warn('instance.freeze_failed', { service: s.name, instance: inst.id, error: describeError(err) });
        });
      if (!quiet) ctx.emit({ type: 'frozen', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, idleMs });
    },

    async thaw(s, inst, prewarmed) {
      if (!inst.frozen) return inst.freezeOp;
      inst.frozen = false;
      const t0 = ctx.clock.now();
      inst.freezeOp = inst.freezeOp.then(() => inst.proc.thaw());
      await inst.freezeOp;
      const thawMs = ctx.clock.now() - t0;
      ctx.observer?.resumed?.(inst.id);
      if (prewarmed) ctx.observer?.prewarmedStart?.(s.name, inst.id, thawMs);
      ctx.emit({
        type: 'thawed',
        service: s.name,
        instanceId: inst.id,
        deploymentId: inst.deploymentId,
        frozenMs: t0 - inst.frozenAt,
        thawMs,
        prewarmed: Boolean(prewarmed),
        ...(prewarmed ? { startedAt: new Date(inst.startedAt).toISOString(), reason: prewarmed.reason } : {}),
      });
    },

    thawToStop(inst) {
      // in the instance's chain of freezes and thaws, so that a second caller (the stop, after an
      // eviction's own wait) waits for this thaw instead of passing it
      if (inst.frozen) {
        inst.frozen = false;
        inst.freezeOp = inst.freezeOp.catch(() => {}).then(() => inst.proc.thaw());
      }
      // a failed thaw costs only the clean shutdown: the stop's later kill rounds thaw the group
      return inst.freezeOp.catch(() => {});
    },

    oldestFrozen() {
      let oldest: { s: ServiceState; inst: Instance } | null = null;
      for (const s of ctx.services.values()) for (const inst of s.instances) if (inst.frozen && (!oldest || inst.frozenAt < oldest.inst.frozenAt)) oldest = { s, inst };
      return oldest;
    },
  };
}
