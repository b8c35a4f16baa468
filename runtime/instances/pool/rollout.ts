// Rollout: a new generation (a deployment, a rollback or an env change) replaces a service's
// instances without dropping a request. Warm old instances keep serving, as `retiring`, until
// one of the new generation is ready; then they drain. Old instances that were not warm drain
// at once.
import type { Backoff } from './backoff.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Instance, ServiceState } from './state.ts';
import type { Target } from './types.ts';

export interface Rollout {
  /** the service's target is of a new generation: retire or drain the others, start its first instance */
  replace(s: ServiceState, target: Target): void;
  /** an instance became ready: the first of a new generation retires the old ones */
  onReady(s: ServiceState, inst: Instance): void;
}

export function createRollout(lifecycle: Pick<Lifecycle, 'start' | 'drain'>, backoff: Pick<Backoff, 'reset'>): Rollout {
  return {
    replace(s, target) {
      // a new version gets a fresh chance to start, and may start faster or slower
      backoff.reset(s);
      s.appStartMs = 0;
      const warm = s.instances.some((i) => i.generation !== target.generation && i.state === 'ready');
      for (const inst of [...s.instances]) {
        if (inst.generation === target.generation) continue;
        if (inst.state === 'ready' && warm) inst.state = 'retiring';
        else lifecycle.drain(s, inst);
      }
      // start the replacement now, so the switch costs no request a cold start
      if (warm && !s.instances.some((i) => i.generation === target.generation)) lifecycle.start(s, target);
    },

    onReady(s, inst) {
      // over a copy: an idle instance drained is removed from the list at once
      for (const old of [...s.instances]) {
        if (old.generation !== inst.generation && old.state === 'retiring') lifecycle.drain(s, old);
      }
    },
  };
}
