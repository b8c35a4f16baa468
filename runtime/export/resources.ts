// Memory decides CPU, as here: the limits are the caps cellhost enforces; the requests are what
// a pod reserves on a node while it runs.
import { cpuForMemory } from '../core/cpu-for-memory.ts';

/** an instance that waits for requests uses a fraction of its cap: reserve that, not the cap */
const CPU_REQUEST_FRACTION = 0.1;
/** the smallest instance cellhost runs: an idle app fits in it */
const MEMORY_REQUEST_MI = 128;

export interface Resources {
  limits: { memory: string; cpu: string };
  requests: { memory: string; cpu: string };
}

/** millicores a memory size buys (1769 MB → 1000m) */
export function cpuMillisFor(memoryMb: number): number {
  return Math.max(1, Math.round(cpuForMemory(memoryMb, Number.POSITIVE_INFINITY).quota * 1000));
}

/**
 * Limits: memory size and memory / 1769 MB of a core. Requests are kept small so a scaled-out or
 * cold-started pod fits on a node the way instances share this host: a tenth of the CPU limit,
 * and 128 Mi of memory (or the limit when smaller).
 */
export function resourcesFor(memoryMb: number): Resources {
  const cpu = cpuMillisFor(memoryMb);
  return {
    limits: { memory: `${memoryMb}Mi`, cpu: `${cpu}m` },
    requests: { memory: `${Math.min(memoryMb, MEMORY_REQUEST_MI)}Mi`, cpu: `${Math.max(1, Math.round(cpu * CPU_REQUEST_FRACTION))}m` },
  };
}
