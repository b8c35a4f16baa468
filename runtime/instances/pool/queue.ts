// The wait queue: a request that finds no free slot waits here, first come first served, until
// it is handed one (a slot freed, an instance became ready, a start began for it), its time in
// the queue runs out, or the service goes away.
import { CellhostError } from '../../core/errors.ts';
import type { Instance, ServiceState, Waiter } from './state.ts';
import type { Target } from './types.ts';

export interface WaitQueue {
  /** wait for a slot; the instance comes with the request already counted against it */
  wait(s: ServiceState, t: Target): Promise<Instance>;
  /** hand slots to the waiting requests, in order, while there are some */
  dispatch(s: ServiceState): void;
  /** fail every waiting request */
  rejectAll(s: ServiceState, err: Error): void;
}

export interface WaitQueueOptions {
  /** waiting requests per service at most */
  limit: number;
  timeoutMs: number;
  /** placement, applied: an instance with a free slot (or starting for this request), none, or backing off */
  pick(s: ServiceState, t: Target): Instance | 'backoff' | null;
  /** what the waiting requests get while the service backs off */
  backoffError(s: ServiceState): CellhostError;
}

export function createWaitQueue(opts: WaitQueueOptions): WaitQueue {
  function rejectAll(s: ServiceState, err: Error): void {
    for (const w of s.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  return {
    rejectAll,

    wait(s, t) {
      if (s.waiters.length >= opts.limit) {
        throw new CellhostError('ERR_CAPACITY', `service "${s.name}" is at its limit of ${t.maxInstances} instance(s) × ${t.concurrency} concurrent requests and its wait queue is full`);
      }
      return new Promise<Instance>((resolve, reject) => {
        const w: Waiter = {
          resolve,
          reject,
          timer: setTimeout(() => {
            const i = s.waiters.indexOf(w);
            if (i >= 0) s.waiters.splice(i, 1);
            reject(new CellhostError('ERR_CAPACITY', `service "${s.name}" had no free capacity for ${opts.timeoutMs / 1000} s`));
          }, opts.timeoutMs),
        };
        s.waiters.push(w);
      });
    },

    dispatch(s) {
      while (s.waiters.length && s.target) {
        const inst = opts.pick(s, s.target);
        if (inst === 'backoff') return rejectAll(s, opts.backoffError(s));
        if (!inst) return;
        const w = s.waiters.shift()!;
        clearTimeout(w.timer);
        // the slot is taken now, or the next pick in this loop would hand out the same one
        inst.inflight++;
        w.resolve(inst);
      }
      // nobody waits: this episode of pressure is over
      if (!s.waiters.length) {
        s.pressure.since = 0;
        s.pressure.heldReported = false;
      }
    },
  };
}
