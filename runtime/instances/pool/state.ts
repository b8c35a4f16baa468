// The pool's records: one per service and one per instance, shared by its pieces (lifecycle,
// placement, queue, freezer, backoff, sweeper), and what every piece is given.
import type { Clock } from '../../core/clock.ts';
import type { CellhostError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { UpstreamOptions } from '../upstream.ts';
import type { InstanceProcess } from '../process.ts';
import type { Upstream } from '../upstream.ts';
import type { PressureWindow } from './placement.ts';
import type { InstanceState, Lease, PoolEvent, PoolObserver, PrewarmReason, Target } from './types.ts';

export interface Instance {
  id: string;
  service: string;
  generation: string;
  deploymentId: string;
  memoryMb: number;
  state: InstanceState;
  inflight: number;
  proc: InstanceProcess;
  /** its keep-alive connections, opened with the first request after it is ready (an edge
   *  standby's: as it is told to go) */
  connections: Upstream | null;
  upstream: { host: string; port: number };
  startedAt: number;
  readyAt: number | null;
  idleSince: number;
  ready: Promise<void>;
  /** set once the process exited: why, for the 502 page of the requests it dropped */
  death: CellhostError | null;
  /** its death is in the service's log (an oom or crash event): logged once, before any answer */
  deathLogged: boolean;
  /** when the launcher had the sandbox ready and the process was spawned */
  preparedAt: number;
  exited: boolean;
  /** frozen by the cgroup freezer: thawed before it takes a request */
  frozen: boolean;
  frozenAt: number;
  /** the freeze or thaw in progress; the next one waits for it */
  freezeOp: Promise<void>;
  /** started ahead of any request (a prewarmed instance being made): no cold start to count */
  startedAhead: boolean;
  /** a prewarmed instance: kept frozen for its service's next request, within the budget */
  prewarm: PrewarmState | null;
  /** held while the app says it has work pending after its responses (the edge host's
   *  waitUntil): the instance counts as busy, is billed, and is neither frozen nor stopped */
  backgroundLease: Lease | null;
}

export interface PrewarmState {
  reason: PrewarmReason;
  /** when it was started ahead, or kept at its idle timeout */
  since: number;
  /** frozen and waiting for a request, counted against the budget */
  kept: boolean;
  /** being measured and fitted into the budget: the sweeper leaves it alone */
  pending: boolean;
  /** when its service last served a request (or asked for it ahead): the budget keeps the newest */
  lastUsedAt: number;
  /** its cgroup's memory when it was kept */
  memoryBytes: number;
  /** spawn to ready, when it was started ahead */
  startMs: number | null;
}

/** a request waiting for a slot */
export interface Waiter {
  resolve(inst: Instance): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export interface ServiceState {
  name: string;
  target: Target | null;
  instances: Instance[];
  /** requests waiting for a slot, first come first served */
  waiters: Waiter[];
  /** consecutive failed starts (or crashes soon after start) of the current generation */
  failures: number;
  /** spawn (or a standby's go) to listening, ms, of the quickest start of the current generation; 0: none yet */
  appStartMs: number;
  /** requests answered so far: the scale-out window counts those answered while it is open */
  completed: number;
  /** since when requests find every warm instance full: drives scale-out */
  pressure: PressureWindow;
  /** no new instance before this time: crash-loop backoff */
  backoffUntil: number;
  lastFailure: CellhostError | null;
  /** the version whose start check passed and was offered as the prewarmed instance: once it
   *  goes live it is not started ahead a second time */
  checkedGeneration: string | null;
}

export function newServiceState(name: string): ServiceState {
  return {
    name,
    target: null,
    instances: [],
    waiters: [],
    failures: 0,
    appStartMs: 0,
    completed: 0,
    pressure: { since: 0, episodeSince: 0, completedAtOpen: 0, cpu: null, heldReported: false },
    backoffUntil: 0,
    lastFailure: null,
    checkedGeneration: null,
  };
}

/** what every piece of the pool is given */
export interface PoolContext {
  readonly clock: Clock;
  readonly log: Logger;
  readonly observer: PoolObserver | undefined;
  /** every service the pool knows, by name */
  readonly services: Map<string, ServiceState>;
  /** tell the pool's listener; a listener that throws is logged, never the pool's failure */
  emit(event: PoolEvent): void;
  /** the pool is closing: nothing new starts */
  isClosing(): boolean;
  /** how the instances' connections are made (which client) */
  readonly upstream: Pick<UpstreamOptions, 'parser'>;
}
