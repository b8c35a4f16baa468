// Freeze and thaw: an instance idle for a while is frozen with the cgroup freezer (no CPU, not
// billed, memory kept) and thawed in a few ms when a request comes or before it is stopped. The
// freezes and thaws of one instance run one after the other (`freezeOp`).
import { describeError } from '../../core/errors.ts';
import { closeUpstream } from '../upstream.ts';
import type { Instance, PoolContext, ServiceState } from './state.ts';

export interface Freezer {
  freeze(s: ServiceState, inst: Instance, idleMs: number): void;
  /** resume it for a request; rejects when the freezer fails (the instance is then unusable) */
  thaw(s: ServiceState, inst: Instance): Promise<void>;
  /** resume it before it is stopped: a frozen process cannot see SIGTERM */
  thawToStop(inst: Instance): Promise<void>;
  /** the instance frozen longest, of all services: the first to go when memory runs short */
  oldestFrozen(): { s: ServiceState; inst: Instance } | null;
}

export function createFreezer(ctx: PoolContext): Freezer {
  return {
    freeze(s, inst, idleMs) {
      inst.frozen = true;
      // idle keep-alive connections would be closed by the app the moment it thaws (its
      // keep-alive timer is long overdue), racing the request sent on them: start the thawed
      // app on fresh ones
      closeUpstream(inst.connections);
      inst.connections = null;
      inst.frozenAt = ctx.clock.now();
      ctx.observer?.paused?.(inst.id);
      inst.freezeOp = inst.freezeOp
        .then(() => inst.proc.freeze())
        .catch((err) => {
          inst.frozen = false;
          ctx.log.warn('instance.freeze_failed', { service: s.name, instance: inst.id, error: describeError(err) });
        });
      ctx.emit({ type: 'frozen', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, idleMs });
    },

    async thaw(s, inst) {
      if (!inst.frozen) return inst.freezeOp;
      inst.frozen = false;
      const t0 = ctx.clock.now();
      inst.freezeOp = inst.freezeOp.then(() => inst.proc.thaw());
      await inst.freezeOp;
      ctx.observer?.resumed?.(inst.id);
      ctx.emit({ type: 'thawed', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, frozenMs: t0 - inst.frozenAt, thawMs: ctx.clock.now() - t0 });
    },

    async thawToStop(inst) {
      if (!inst.frozen) return;
      inst.frozen = false;
      await inst.freezeOp;
      // a failed thaw costs only the clean shutdown: the stop's later kill rounds thaw the group
      await inst.proc.thaw().catch(() => {});
    },

    oldestFrozen() {
      let oldest: { s: ServiceState; inst: Instance } | null = null;
      for (const s of ctx.services.values()) for (const inst of s.instances) if (inst.frozen && (!oldest || inst.frozenAt < oldest.inst.frozenAt)) oldest = { s, inst };
      return oldest;
    },
  };
}
