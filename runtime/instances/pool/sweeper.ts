// The idle sweep, every `everyMs`: an instance idle past its service's idle timeout is stopped
// (scale to zero) and one idle past `freezeAfterMs` is frozen; the service's minimum stays up.
// When the host runs short of memory, frozen instances are stopped first, oldest first. An
// instance that has stayed up a while ends its service's crash loop.
import type { Backoff } from './backoff.ts';
import type { Freezer } from './freezer.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { PoolContext } from './state.ts';

export interface SweeperOptions {
  everyMs: number;
  /** freeze an instance idle this long (0: never) */
  freezeAfterMs: number;
  isMemoryLow?(): boolean;
  freezer: Freezer;
  backoff: Pick<Backoff, 'endIfStable'>;
  lifecycle: Pick<Lifecycle, 'remove'>;
}

/** starts sweeping; returns the function that stops it */
export function startSweeper(ctx: PoolContext, opts: SweeperOptions): () => void {
  const { emit } = ctx;

  function sweep(): void {
    const now = ctx.clock.now();
    if (opts.isMemoryLow?.()) {
      // one per sweep, then look again
      const oldest = opts.freezer.oldestFrozen();
      if (oldest) {
        emit({ type: 'memory_pressure_stop', service: oldest.s.name, instanceId: oldest.inst.id, deploymentId: oldest.inst.deploymentId, frozenMs: now - oldest.inst.frozenAt });
        opts.lifecycle.remove(oldest.s, oldest.inst);
      }
    }
    for (const s of ctx.services.values()) {
      const t = s.target;
      opts.backoff.endIfStable(s, now);
      let keep = t?.minInstances ?? 0;
      for (const inst of [...s.instances]) {
        if (inst.state !== 'ready' || inst.inflight > 0) continue;
        const idleMs = now - inst.idleSince;
        if (t && inst.generation === t.generation && keep > 0) {
          keep--;
          continue;
        }
        if (!t || idleMs >= t.idleTimeoutMs) {
          emit({ type: 'idle_stop', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, idleMs });
          opts.lifecycle.remove(s, inst);
        } else if (opts.freezeAfterMs > 0 && idleMs >= opts.freezeAfterMs && !inst.frozen && inst.proc.canFreeze) {
          opts.freezer.freeze(s, inst, idleMs);
        }
      }
    }
  }

  const timer = setInterval(sweep, opts.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
