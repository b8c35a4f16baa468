// Leases: one request's slot on an instance, from placement to release(). Taking one thaws a
// frozen instance and waits for a starting one; a lease also tells why its instance failed
// (diagnose) and takes a wedged one out of rotation (recycle).
import { setTimeout as sleep } from 'node:timers/promises';
import { CellhostError, describeError } from '../../core/errors.ts';
import { openUpstream } from '../upstream.ts';
import type { Freezer } from './freezer.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Prewarm } from './prewarm.ts';
import type { Instance, PoolContext, ServiceState } from './state.ts';
import type { Lease } from './types.ts';

export interface Leases {
  /** a lease on the instance once it can serve; `reserved`: its slot is already counted for this request */
  take(s: ServiceState, inst: Instance, reserved?: boolean): Promise<Lease>;
  /** a lease on an instance that can serve now, its slot counted */
  lease(s: ServiceState, inst: Instance, coldStart: boolean, thawed?: 'frozen' | 'prewarmed' | null): Lease;
}

export interface LeaseOptions {
  freezer: Pick<Freezer, 'thaw'>;
  /** a kept prewarmed instance leaves the budget as a request takes it */
  prewarm: Pick<Prewarm, 'taken'>;
  lifecycle: Pick<Lifecycle, 'remove' | 'drain' | 'ensureMin' | 'logDeath'>;
  /** a slot freed: waiting requests may take it */
  onRelease(s: ServiceState): void;
}

export function createLeases(ctx: PoolContext, opts: LeaseOptions): Leases {
  const { observer } = ctx;

  function lease(s: ServiceState, inst: Instance, coldStart: boolean, thawed: 'frozen' | 'prewarmed' | null = null): Lease {
    let released = false;
    observer?.leased(inst.id);
    return {
      instanceId: inst.id,
      upstream: inst.upstream,
      connections: (inst.connections ??= openUpstream(inst.upstream, s.target?.concurrency ?? 1, ctx.upstream)),
      coldStart,
      prewarmed: thawed === 'prewarmed',
      thawed: thawed !== null,
      release() {
        if (released) return;
        released = true;
        s.completed++;
        observer?.released(inst.id);
        inst.inflight--;
        if (inst.inflight === 0) {
          inst.idleSince = ctx.clock.now();
          void inst.proc.settle();
          if (inst.state === 'draining') opts.lifecycle.remove(s, inst);
        }
        opts.onRelease(s);
      },
      recycle(reason) {
        if (inst.state === 'stopped' || inst.state === 'draining') return;
        ctx.emit({ type: 'recycle', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, reason });
        opts.lifecycle.drain(s, inst);
        opts.lifecycle.ensureMin(s);
      },
      async diagnose() {
        if (inst.death) return inst.death;
        // an app that crashed mid-request is usually seen exiting within a few ms
        const exited = await Promise.race([inst.proc.exited.then(() => true), sleep(100).then(() => false)]);
        // a sandbox's outer process can outlive its app by a moment: the cgroup knows sooner
        const death = exited ? await inst.proc.explainExit('serving') : await inst.proc.checkNow();
        // logged before the visitor reads it in the answer, so the log never contradicts it
        if (death && inst.state !== 'stopped') opts.lifecycle.logDeath(s, inst, death);
        return death;
      },
    };
  }

  return {
    lease,
    async take(s, inst, reserved = false) {
      if (!reserved) inst.inflight++;
      let thawed: 'frozen' | 'prewarmed' | null = null;
      if (inst.frozen) {
        const prewarm = inst.prewarm;
        thawed = opts.prewarm.taken(inst) ? 'prewarmed' : 'frozen';
        try {
          await opts.freezer.thaw(s, inst, thawed === 'prewarmed' ? prewarm : null);
        } catch (err) {
          inst.inflight--;
          opts.lifecycle.remove(s, inst);
          throw new CellhostError('ERR_APP_REFUSED', `the instance could not be resumed: ${describeError(err)}`, { cause: err });
        }
      }
      if (inst.state === 'starting') {
        try {
          await inst.ready;
        } catch (err) {
          inst.inflight--;
          throw err;
        }
        // a start that succeeded after the service changed: the request is still served by it
        return lease(s, inst, true);
      }
      return lease(s, inst, false, thawed);
    },
  };
}
