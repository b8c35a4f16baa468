// Placement: which instance serves a request, or whether the service starts another one or the
// request waits. A function of the service's instances, its scale-out window, the host's CPU
// and the time, with no state of its own: it reads the live records it is given and changes
// none of them, and the pool applies what it returns (starts the instance, opens the window,
// reports a held scale-out). So every rule is tested with plain objects and a number for a clock.
import type { CpuMark } from '../host-cpu.ts';
import type { InstanceState } from './types.ts';

/** what placement reads of an instance */
export interface PlacedInstance {
  readonly generation: string;
  readonly state: InstanceState;
  readonly inflight: number;
  /** its process exited: out of rotation while the reason is read */
  readonly exited: boolean;
  readonly readyAt: number | null;
}

/** How long requests have found every warm instance full. It opens when a request first finds
 *  that and closes when nobody waits any more; a held scale-out opens it again. */
export interface PressureWindow {
  /** when the current window opened (0: no window, nobody waits for a full warm instance) */
  since: number;
  /** when this episode of pressure began: windows reopened after a hold belong to it */
  episodeSince: number;
  /** the service's completed requests when the window opened */
  completedAtOpen: number;
  /** the host's CPU when the window opened (null: no reading) */
  cpu: CpuMark | null;
  /** a held scale-out was reported in this episode */
  heldReported: boolean;
}

/** what placement reads of the service's target */
export interface PlacementTarget {
  readonly generation: string;
  readonly concurrency: number;
  readonly maxInstances: number;
}

/** what placement reads of the service */
export interface PlacementInput<I extends PlacedInstance> {
  readonly instances: readonly I[];
  /** no new instance before this time: crash-loop backoff */
  readonly backoffUntil: number;
  /** requests the service has answered so far */
  readonly completed: number;
  readonly pressure: Readonly<PressureWindow>;
}

export interface PlacementRules {
  /** how long requests wait for a full warm instance before another one starts (0: no wait) */
  readonly scaleOutAfterMs: number;
  /** cold starts in flight per service at most */
  readonly maxParallelStarts: number;
  /** how long, from the start of an episode, a host with no core free holds a scale-out back */
  readonly maxHoldMs: number;
  /** the host's CPU (absent: never held). Read only when a hold is otherwise due: it reads /proc,
   *  and placement runs for every request that finds no warm slot */
  readonly hostCpu?: { saturated(since: CpuMark): boolean };
}

export type Placement<I> =
  /** an instance with a free slot: ready (thawed first if frozen), starting, or retiring */
  | { kind: 'serve'; instance: I }
  /** start a new instance: the request waits for it */
  | { kind: 'start' }
  /** wait for a slot; `opensWindow`: the first wait of an episode of pressure */
  | { kind: 'wait'; opensWindow: boolean }
  /** the host has no core to spare and the warm instances turn requests over quickly: wait for
   *  them, and open the window again; `isFirst`: the first hold of this episode */
  | { kind: 'hold'; isFirst: boolean }
  /** crash-loop backoff: no start now, and the request fails at once */
  | { kind: 'backoff' };

const START: Placement<never> = { kind: 'start' };
const WAIT: Placement<never> = { kind: 'wait', opensWindow: false };
const WAIT_OPENING: Placement<never> = { kind: 'wait', opensWindow: true };
const HOLD_FIRST: Placement<never> = { kind: 'hold', isFirst: true };
const HOLD: Placement<never> = { kind: 'hold', isFirst: false };
const BACKOFF: Placement<never> = { kind: 'backoff' };

/** a start takes about a core, and the requests already being served need the rest */
export function defaultMaxParallelStarts(cores: number): number {
  return Math.max(1, Math.floor(cores / 2));
}

export function place<I extends PlacedInstance>(s: PlacementInput<I>, t: PlacementTarget, now: number, rules: PlacementRules): Placement<I> {
  let starting: I | null = null;
  let retiring: I | null = null;
  for (const inst of s.instances) {
    if (inst.inflight >= t.concurrency || inst.exited) continue;
    if (inst.generation === t.generation) {
      if (inst.state === 'ready') return { kind: 'serve', instance: inst };
      if (inst.state === 'starting' && !starting) starting = inst;
    } else if (inst.state === 'retiring' && !retiring) retiring = inst;
  }
  // while the new generation starts, warm old instances keep serving: nobody waits
  if (retiring && (!starting || starting.inflight > 0)) return { kind: 'serve', instance: retiring };
  if (starting) return { kind: 'serve', instance: starting };
  // no instance has a free slot
  let live = 0;
  let startingNow = 0;
  let readyNow = 0;
  for (const i of s.instances) {
    if (i.generation !== t.generation || i.exited) continue;
    live++;
    if (i.state === 'starting') startingNow++;
    else if (i.state === 'ready') readyNow++;
  }
  if (live >= t.maxInstances) return WAIT;
  if (now < s.backoffUntil) return BACKOFF;
  // a burst starts a few instances at once, not one per request: more starts than cores only
  // slow each other down; queued requests go to them as they become ready, and the next ones
  // start while demand remains
  if (startingNow >= rules.maxParallelStarts) return WAIT;
  // warm instances that are merely full usually free a slot within milliseconds: scale out only
  // when requests have waited for one a while (a stable window, as Knative's)
  return readyNow > 0 ? scaleOutOrWait(s, t, now, rules) : START;
}

/** every warm instance is full: start another once requests have waited the window out */
function scaleOutOrWait(s: PlacementInput<PlacedInstance>, t: PlacementTarget, now: number, rules: PlacementRules): Placement<never> {
  if (rules.scaleOutAfterMs <= 0) return START;
  const w = s.pressure;
  if (!w.since) return WAIT_OPENING;
  if (now - w.since < rules.scaleOutAfterMs) return WAIT;
  // a burst on a host with no core free: when the warm instances finished a request each within
  // the window (the queue moves; it is not stuck behind slow requests), a start would take CPU
  // from them and the queue would end later, so they keep it. An instance counts from its second
  // window on: an app's first requests are its slowest, and its readiness is what opened the
  // first (a millisecond or a busy tick after it became ready, so `readyAt < since` alone would
  // count it by chance). For a second at most: past that the load is not a burst, and the
  // service gets its instances
  if (
    rules.hostCpu &&
    w.cpu &&
    now - w.episodeSince < rules.maxHoldMs &&
    s.completed - w.completedAtOpen >= warmBefore(s, t, w.since - rules.scaleOutAfterMs) &&
    rules.hostCpu.saturated(w.cpu)
  ) {
    return w.heldReported ? HOLD : HOLD_FIRST;
  }
  return START;
}

/** ready instances of the target's version that were ready at `since` or before */
function warmBefore(s: PlacementInput<PlacedInstance>, t: PlacementTarget, since: number): number {
  let n = 0;
  for (const i of s.instances) if (i.generation === t.generation && i.state === 'ready' && !i.exited && i.readyAt !== null && i.readyAt <= since) n++;
  return n;
}
