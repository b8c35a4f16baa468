// The pool's public types, apart from the code that runs it: the control plane, the router and
// the UI read instances and leases without importing the pool itself.
import type { Clock } from '../../core/clock.ts';
import type { CellhostError } from '../../core/errors.ts';
import type { LlhttpBinding } from '../../core/llhttp-binding.ts';
import type { Logger } from '../../core/log.ts';
import type { HostCpu } from '../host-cpu.ts';
import type { InstanceSpec, Launcher } from '../launcher.ts';
import type { OutputStream } from '../process.ts';
import type { Upstream } from '../upstream.ts';
import type { VerifyOptions, VerifyOutcome } from './verify.ts';

/** What a service should be running right now. A different `generation` means "replace". */
export interface Target {
  generation: string;
  spec: Omit<InstanceSpec, 'instanceId'>;
  concurrency: number;
  maxInstances: number;
  minInstances: number;
  idleTimeoutMs: number;
  healthPath: string | null;
  /** once scaled to zero, keep an instance started and frozen (a prewarmed instance) within the
   *  platform's budget; false for apps whose start has side effects */
  prewarm: boolean;
}

/** why an instance was started ahead of any request, or kept frozen at its idle timeout */
export type PrewarmReason = 'deploy' | 'change' | 'idle' | 'restart';

/** what pool.prewarm() came to */
export type PrewarmOutcome =
  /** started (or already there), ready, frozen and kept */
  | { kind: 'kept'; instanceId: string; startMs: number | null; memoryBytes: number }
  /** a request took it while it started: it serves as a warm instance */
  | { kind: 'taken'; instanceId: string }
  /** not kept: the budget is held by more recently used services, or the host is short of memory */
  | { kind: 'no-room'; reason: string }
  /** not started: prewarming is off for the service or the platform, or not possible here */
  | { kind: 'off'; reason: string }
  | { kind: 'failed'; code: string; message: string };

export type InstanceState = 'starting' | 'ready' | 'retiring' | 'draining' | 'stopped';

export type PoolEvent =
  | { type: 'cold_start'; service: string; instanceId: string; deploymentId: string; durationMs: number; prepareMs: number; standby: boolean }
  | { type: 'start_failed'; service: string; instanceId: string; deploymentId: string; code: string; message: string }
  | { type: 'crash'; service: string; instanceId: string; deploymentId: string; message: string; code: string }
  | { type: 'oom'; service: string; instanceId: string; deploymentId: string; limitMb: number; message: string }
  | { type: 'idle_stop'; service: string; instanceId: string; deploymentId: string; idleMs: number }
  | { type: 'drain'; service: string; instanceId: string; deploymentId: string }
  | { type: 'recycle'; service: string; instanceId: string; deploymentId: string; reason: string }
  | { type: 'backoff'; service: string; failures: number; delayMs: number; message: string }
  | { type: 'scale_out_held'; service: string; instances: number; queued: number }
  | { type: 'frozen'; service: string; instanceId: string; deploymentId: string; idleMs: number }
  | { type: 'thawed'; service: string; instanceId: string; deploymentId: string; frozenMs: number; thawMs: number; prewarmed: boolean; startedAt?: string; reason?: PrewarmReason }
  | { type: 'prewarmed'; service: string; instanceId: string; deploymentId: string; reason: PrewarmReason; startedAt: string; startMs: number | null; memoryBytes: number; budgetBytes: number; keptBytes: number }
  | { type: 'prewarm_evicted'; service: string; instanceId: string; deploymentId: string; why: 'budget' | 'memory' | 'off'; keptMs: number; memoryBytes: number }
  | { type: 'prewarm_skipped'; service: string; deploymentId: string; reason: PrewarmReason; message: string }
  | { type: 'memory_pressure_stop'; service: string; instanceId: string; deploymentId: string; frozenMs: number }
  | { type: 'stopped'; service: string; instanceId: string; deploymentId: string; uptimeMs: number };

export interface InstanceInfo {
  id: string;
  deploymentId: string;
  state: InstanceState;
  pid: number;
  inflight: number;
  frozen: boolean;
  startedAt: string;
  readyAt: string | null;
  /** started ahead of any request or kept at its idle timeout (a prewarmed instance): why, since
   *  when, and whether it still waits frozen for its first request (kept) or has taken requests */
  prewarm: { reason: PrewarmReason; since: string; kept: boolean; memoryBytes: number; startedAhead: boolean } | null;
}

export interface Lease {
  instanceId: string;
  upstream: { host: string; port: number };
  /** the instance's connections: requests go out on these */
  connections: Upstream;
  /** true when this request waited for a cold start */
  coldStart: boolean;
  /** true when this request thawed a prewarmed instance (its app started before the request) */
  prewarmed: boolean;
  /** true when this request thawed a frozen instance (prewarmed or not): an app that died while
   *  frozen is seen only now, and a request it never read may go to a fresh instance */
  thawed: boolean;
  /** the request is over: free its slot */
  release(): void;
  /** after an upstream error: the coded reason (crash with exit status, OOM) or null when the app is still up */
  diagnose(): Promise<CellhostError | null>;
  /** the instance is wedged (a request timed out): take no new requests on it, stop it once idle */
  recycle(reason: string): void;
}

/** told about every instance and lease: the meter bills from these */
export interface PoolObserver {
  /** `ahead`: started before any request asked for it (a prewarmed instance): no cold start to count or bill */
  instanceReady(info: { service: string; instanceId: string; memoryMb: number; startMs: number; persistent: boolean; ahead?: boolean }): void;
  /** a request thawed a prewarmed instance: counted apart from cold starts */
  prewarmedStart?(service: string, instanceId: string, thawMs: number): void;
  instanceStopped(instanceId: string): void;
  leased(instanceId: string): void;
  released(instanceId: string): void;
  paused?(instanceId: string): void;
  resumed?(instanceId: string): void;
  /** how many instances the service has now (starting, serving or on their way out) */
  instancesChanged?(service: string, count: number): void;
}

export interface PoolOptions {
  observer?: PoolObserver;
  launcher: Launcher;
  startTimeoutMs: number;
  queueLimit: number;
  queueTimeoutMs: number;
  clock?: Clock;
  log?: Logger;
  sweepMs?: number;
  onEvent?(event: PoolEvent): void;
  onOutput?(service: string, instanceId: string, deploymentId: string, stream: OutputStream, line: string): void;
  /** how long requests wait for a full warm instance before another one starts; default 50 ms */
  scaleOutAfterMs?: number;
  /** cold starts in flight per service at most; default half the host's cores (at least 1): a
   *  start takes about a core, and the requests already being served need the rest */
  maxParallelStarts?: number;
  /** freeze an instance idle this long (0: never); default 30 s */
  freezeAfterMs?: number;
  /** true when the host is short of memory: frozen instances are stopped, oldest first */
  isMemoryLow?(): boolean;
  /** services scaled to zero that keep a standby (their next instance prepared); default 0 */
  standbys?: number;
  /** the host's CPU load: no scale-out onto a host whose cores are all busy (default: not asked) */
  hostCpu?: HostCpu;
  /** memory the prewarmed instances may hold at once, counted from their cgroups (0: none kept) */
  prewarmBudgetBytes?: number;
  /** Node's HTTP/1 parser for the router's own upstream client; null: undici's (default: loaded here) */
  upstreamParser?: LlhttpBinding | null;
}

export interface Pool {
  acquire(service: string): Promise<Lease>;
  /** the common case without a promise: a warm instance with a free slot and nobody queued; else null */
  tryAcquire(service: string): Lease | null;
  /**
   * set what a service runs; null stops all its instances (deleted, or nothing live).
   * `standby`: a version a user just made live (not every service at the platform's start):
   * prepare its first instance ahead of the first request
   */
  setTarget(service: string, target: Target | null, opts?: { standby?: boolean }): void;
  /**
   * start an instance of `target` ahead of any request and keep it frozen (a prewarmed instance),
   * within the budget (after the platform's start, for the services used last).
   * `lastUsedAt`: when the service last served a request (the budget keeps the most recent)
   */
  prewarm(service: string, target: Target, opts: { reason: PrewarmReason; lastUsedAt?: number }): Promise<PrewarmOutcome>;
  /**
   * the start check before a version goes live: `target` started once outside the service's
   * rotation until it accepts connections on its port; then kept, frozen, as the service's
   * prewarmed instance when one is wanted and fits the budget, else stopped; how that went
   */
  verify(service: string, target: Target, opts?: VerifyOptions): Promise<VerifyOutcome>;
  /**
   * the service is deleted: its target goes, in-flight requests get at most `graceMs`, and this
   * resolves once every instance and standby of it has exited (its files can go then)
   */
  stopService(service: string, graceMs: number): Promise<void>;
  instances(service: string): InstanceInfo[];
  /** stop taking requests, wait up to graceMs for in-flight ones, stop everything */
  close(graceMs: number): Promise<void>;
}
