// Crash-loop backoff: while a service's new instances keep failing (to start, or soon after they
// are ready), each next start waits longer, and requests in the meantime get the last failure
// at once instead of waiting for a start that would most likely fail too.
import { CellhostError } from '../../core/errors.ts';
import type { Instance, PoolContext, ServiceState } from './state.ts';

/** a crash this soon after readiness counts as a failed start for the backoff */
export const EARLY_CRASH_MS = 10_000;

/** no wait after one failure (a single crash is not a loop), then 250 ms doubling to 30 s */
export function backoffDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 2));
}

export interface Backoff {
  /** a start of `generation` failed: counted only while that is still the service's version */
  recordFailure(s: ServiceState, err: CellhostError, generation: string): void;
  /** an instance exited while serving: a failed start too when it had been ready only briefly */
  recordCrash(s: ServiceState, inst: Instance, death: CellhostError): void;
  /** what a request is answered while the service backs off */
  error(s: ServiceState): CellhostError;
  /** an instance that stayed up past the early-crash window ends a crash loop */
  endIfStable(s: ServiceState, now: number): void;
  /** a new version gets a fresh chance to start */
  reset(s: ServiceState): void;
}

/** `retry`: the backoff is over; look at the service's queue again */
export function createBackoff(ctx: PoolContext, retry: (s: ServiceState) => void): Backoff {
  const reset = (s: ServiceState): void => {
    s.failures = 0;
    s.backoffUntil = 0;
  };

  function recordFailure(s: ServiceState, err: CellhostError, generation: string): void {
    if (s.target?.generation !== generation) return;
    s.failures++;
    s.lastFailure = err;
    const delay = backoffDelay(s.failures);
    s.backoffUntil = ctx.clock.now() + delay;
    if (s.failures > 1) ctx.emit({ type: 'backoff', service: s.name, failures: s.failures, delayMs: delay, message: err.message });
    setTimeout(() => retry(s), delay + 1).unref();
  }

  return {
    recordFailure,
    recordCrash(s, inst, death) {
      if (inst.readyAt !== null && ctx.clock.now() - inst.readyAt < EARLY_CRASH_MS) recordFailure(s, death, inst.generation);
    },
    error(s) {
      const last = s.lastFailure;
      const wait = Math.max(0, s.backoffUntil - ctx.clock.now());
      return new CellhostError(last?.code ?? 'ERR_APP_EXITED', `${last?.message ?? 'the app keeps failing to start'}; it failed ${s.failures} time(s) in a row, next start in ${(wait / 1000).toFixed(1)} s`, {
        details: last?.details,
      });
    },
    endIfStable(s, now) {
      if (s.failures && s.instances.some((i) => i.readyAt !== null && !i.exited && now - i.readyAt >= EARLY_CRASH_MS)) reset(s);
    },
    reset,
  };
}
