// The instance pool: service → a warm upstream with spare capacity. Cold starts are
// single-flight per capacity slot (requests that arrive during a start wait for it), scale to
// zero is an idle sweep, and a new generation (deployment or env change) replaces instances
// without dropping a request: old ones keep serving until a new one is ready, then drain.
import os from 'node:os';
import { CellhostError, describeError } from '../core/errors.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { InstanceSpec, Launch, Launcher } from './launcher.ts';
import { spawnInstance, type InstanceProcess, type OutputStream } from './process.ts';
import type { CpuMark, HostCpu } from './host-cpu.ts';
import { createStandbySet, newInstanceId } from './standby.ts';
import { closeUpstream, openUpstream, type Upstream } from './upstream.ts';

/** What a service should be running right now. A different `generation` means "replace". */
export interface Target {
  generation: string;
  spec: Omit<InstanceSpec, 'instanceId'>;
  concurrency: number;
  maxInstances: number;
  minInstances: number;
  idleTimeoutMs: number;
  healthPath: string | null;
}

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
  | { type: 'thawed'; service: string; instanceId: string; deploymentId: string; frozenMs: number; thawMs: number }
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
}

interface Instance {
  id: string;
  service: string;
  generation: string;
  deploymentId: string;
  memoryMb: number;
  state: InstanceState;
  inflight: number;
  proc: InstanceProcess;
  /** its keep-alive connections, opened with the first request after it is ready */
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
}

interface Waiter {
  resolve(inst: Instance): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface ServiceState {
  name: string;
  target: Target | null;
  instances: Instance[];
  waiters: Waiter[];
  /** consecutive failed starts (or crashes soon after start) of the current generation */
  failures: number;
  /** spawn (or a standby's go) to listening, ms, of the quickest start of the current generation; 0: none yet */
  appStartMs: number;
  /** when requests first found every warm instance full (0: they do not); drives scale-out */
  pressureSince: number;
  /** requests served so far, and that count and the host's CPU when the scale-out window opened */
  completed: number;
  windowCompleted: number;
  windowCpu: CpuMark | null;
  /** when this episode of pressure began (the window restarts after a held scale-out) */
  episodeSince: number;
  /** a held scale-out was reported in this episode of pressure */
  heldReported: boolean;
  /** no new instance before this time: crash-loop backoff */
  backoffUntil: number;
  lastFailure: CellhostError | null;
}

/** a crash this soon after readiness counts as a failed start for the backoff */
const EARLY_CRASH_MS = 10_000;

/** no wait after one failure (a single crash is not a loop), then 250 ms doubling to 30 s */
export function backoffDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 2));
}

export interface Lease {
  instanceId: string;
  upstream: { host: string; port: number };
  /** the instance's connections: requests go out on these */
  connections: Upstream;
  /** true when this request waited for a cold start */
  coldStart: boolean;
  /** the request is over: free its slot */
  release(): void;
  /** after an upstream error: the coded reason (crash with exit status, OOM) or null when the app is still up */
  diagnose(): Promise<CellhostError | null>;
  /** the instance is wedged (a request timed out): take no new requests on it, stop it once idle */
  recycle(reason: string): void;
}

/** told about every instance and lease: the meter bills from these */
export interface PoolObserver {
  instanceReady(info: { service: string; instanceId: string; memoryMb: number; startMs: number; persistent: boolean }): void;
  instanceStopped(instanceId: string): void;
  leased(instanceId: string): void;
  released(instanceId: string): void;
  paused?(instanceId: string): void;
  resumed?(instanceId: string): void;
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
   * the service is deleted: its target goes, in-flight requests get at most `graceMs`, and this
   * resolves once every instance and standby of it has exited (its files can go then)
   */
  stopService(service: string, graceMs: number): Promise<void>;
  instances(service: string): InstanceInfo[];
  /** stop taking requests, wait up to graceMs for in-flight ones, stop everything */
  close(graceMs: number): Promise<void>;
}

const BACKOFF = Symbol('backoff');
/** a start measured longer than this is not taken as the app's usual one (readiness polls sparsely until 60 % of it) */
const MAX_EXPECTED_START_MS = 10_000;
/** how long a saturated host holds a scale-out back (see scaleOutDue) */
const MAX_SCALE_OUT_HOLD_MS = 1000;
/** how long after a service's last instance stopped its standby is prepared */
const STANDBY_DELAY_MS = 200;

export function createPool(opts: PoolOptions): Pool {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  const services = new Map<string, ServiceState>();
  const maxParallelStarts = opts.maxParallelStarts ?? Math.max(1, Math.floor(os.availableParallelism() / 2));
  const scaleOutAfterMs = opts.scaleOutAfterMs ?? 50;
  let closing = false;
  const stopping = new Set<Promise<void>>();
  const stoppingFor = new Map<string, Set<Promise<void>>>();

  const sweep = setInterval(sweepIdle, opts.sweepMs ?? 250);
  sweep.unref();

  const spawnFor = (launch: Launch, service: string, id: string, deploymentId: string, healthPath: string | null, held = false) =>
    spawnInstance(launch, {
      startTimeoutMs: opts.startTimeoutMs,
      healthPath,
      held,
      expectReadyMs: Math.min(services.get(service)?.appStartMs ?? 0, MAX_EXPECTED_START_MS),
      onOutput: (stream, line) => opts.onOutput?.(service, id, deploymentId, stream, line),
    });
  const standbys = createStandbySet({
    max: opts.standbys ?? 0,
    launcher: opts.launcher,
    spawn: (launch, service, id, deploymentId) => spawnFor(launch, service, id, deploymentId, services.get(service)?.target?.healthPath ?? null, true),
    log,
  });

  /** a service with no instance of its current version gets a standby, so its next start is quick */
  function prepareStandby(s: ServiceState): void {
    const t = s.target;
    if (!t || closing || t.minInstances > 0 || t.maxInstances < 1) return;
    if (s.instances.some((i) => i.generation === t.generation)) return;
    standbys.prepare(s.name, t.generation, t.spec);
  }

  function state(name: string): ServiceState {
    let s = services.get(name);
    if (!s) {
      s = { name, target: null, instances: [], waiters: [], failures: 0, appStartMs: 0, pressureSince: 0, completed: 0, windowCompleted: 0, windowCpu: null, episodeSince: 0, heldReported: false, backoffUntil: 0, lastFailure: null };
      services.set(name, s);
    }
    return s;
  }

  function emit(event: PoolEvent): void {
    try {
      opts.onEvent?.(event);
    } catch (err) {
      log.error('pool.event_handler_failed', { error: describeError(err) });
    }
  }

  function startInstance(s: ServiceState, target: Target): Instance {
    const standby = standbys.take(s.name, target.generation);
    const id = standby?.id ?? newInstanceId();
    const startedAt = clock.now();
    const inst: Instance = {
      id,
      service: s.name,
      generation: target.generation,
      deploymentId: target.spec.deploymentId,
      memoryMb: target.spec.memoryMb,
      state: 'starting',
      inflight: 0,
      proc: null as unknown as InstanceProcess,
      connections: null,
      upstream: { host: '127.0.0.1', port: 0 },
      startedAt,
      readyAt: null,
      idleSince: startedAt,
      ready: Promise.resolve(),
      death: null,
      deathLogged: false,
      preparedAt: 0,
      exited: false,
      frozen: false,
      frozenAt: 0,
      freezeOp: Promise.resolve(),
    };
    s.instances.push(inst);
    inst.ready = (async () => {
      if (standby) {
        inst.upstream = standby.launch.upstream;
        inst.proc = standby.proc;
        inst.proc.go();
      } else {
        const launch = await opts.launcher.prepare({ ...target.spec, instanceId: id });
        inst.upstream = launch.upstream;
        inst.proc = spawnFor(launch, s.name, id, inst.deploymentId, target.healthPath);
      }
      inst.preparedAt = clock.now();
      void inst.proc.exited.then(() => onExit(s, inst));
      await inst.proc.ready;
    })();
    inst.ready.then(
      () => {
        if (inst.state !== 'starting') return;
        inst.state = 'ready';
        inst.readyAt = clock.now();
        inst.idleSince = inst.readyAt;
        // the quickest start of this version: one slowed by a busy host must not delay the next one's probes
        if (inst.generation === s.target?.generation) {
          const startMs = inst.readyAt - inst.preparedAt;
          s.appStartMs = s.appStartMs ? Math.min(s.appStartMs, startMs) : startMs;
        }
        // the boost lasts until the instance has answered every request that waited for its
        // start (it is first idle), at most one second after ready: an app's first requests are
        // its slowest, and a burst's backlog served under a 1024 MB cap was throttled for up to
        // 30 ms (measured)
        setTimeout(() => void inst.proc.settle(), 1000).unref();
        opts.observer?.instanceReady({ service: s.name, instanceId: id, memoryMb: target.spec.memoryMb, startMs: inst.readyAt - startedAt, persistent: target.minInstances > 0 });
        emit({ type: 'cold_start', service: s.name, instanceId: id, deploymentId: inst.deploymentId, durationMs: inst.readyAt - startedAt, prepareMs: inst.preparedAt - startedAt, standby: standby !== null });
        onNewReady(s, inst);
        dispatch(s);
      },
      (err: unknown) => {
        const coded = err instanceof CellhostError ? err : new CellhostError('ERR_APP_EXITED', `the app could not be started: ${describeError(err)}`, { cause: err });
        inst.death = coded;
        if (coded.code === 'ERR_APP_OOM') emit({ type: 'oom', service: s.name, instanceId: id, deploymentId: inst.deploymentId, limitMb: inst.memoryMb, message: coded.message });
        emit({ type: 'start_failed', service: s.name, instanceId: id, deploymentId: inst.deploymentId, code: coded.code, message: coded.message });
        recordFailure(s, coded, inst.generation);
        remove(s, inst);
        dispatch(s);
      },
    );
    return inst;
  }

  async function onExit(s: ServiceState, inst: Instance) {
    if (inst.state === 'stopped' || inst.state === 'starting') return;
    // out of rotation at once: no request may be sent to it while the reason is read
    inst.exited = true;
    const death = await inst.proc.explainExit('serving');
    if ((inst.state as InstanceState) === 'stopped') return;
    if (inst.readyAt !== null && clock.now() - inst.readyAt < EARLY_CRASH_MS) recordFailure(s, death, inst.generation);
    logDeath(s, inst, death);
    remove(s, inst);
    dispatch(s);
  }

  /** the death in the service's log, once: by whichever sees it first, the exit or a lease's diagnose() */
  function logDeath(s: ServiceState, inst: Instance, death: CellhostError): void {
    inst.death = death;
    if (inst.deathLogged) return;
    inst.deathLogged = true;
    if (death.code === 'ERR_APP_OOM') emit({ type: 'oom', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, limitMb: inst.memoryMb, message: death.message });
    else emit({ type: 'crash', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, code: death.code, message: death.message });
  }

  /** take the instance out of rotation and stop it (when its requests are done, if draining) */
  function remove(s: ServiceState, inst: Instance): void {
    if (inst.state === 'stopped') return;
    const wasServing = inst.readyAt !== null;
    inst.state = 'stopped';
    if (wasServing) opts.observer?.instanceStopped(inst.id);
    const i = s.instances.indexOf(inst);
    if (i >= 0) s.instances.splice(i, 1);
    closeUpstream(inst.connections);
    inst.connections = null;
    const uptimeMs = clock.now() - inst.startedAt;
    const p = (async () => {
      try {
        await inst.ready.catch(() => {});
        // a frozen process cannot see SIGTERM: resume it so it can shut down cleanly
        if (inst.frozen) {
          inst.frozen = false;
          await inst.freezeOp;
          await inst.proc.thaw().catch(() => {});
        }
        await inst.proc?.dispose();
      } catch (err) {
        log.error('instance.dispose_failed', { service: s.name, instance: inst.id, error: describeError(err) });
      }
      emit({ type: 'stopped', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, uptimeMs });
    })();
    stopping.add(p);
    const mine = stoppingFor.get(s.name) ?? new Set<Promise<void>>();
    stoppingFor.set(s.name, mine);
    mine.add(p);
    void p.finally(() => {
      stopping.delete(p);
      mine.delete(p);
      if (!mine.size && stoppingFor.get(s.name) === mine) stoppingFor.delete(s.name);
    });
    ensureMin(s);
    // after the stop's own work: the standby must not compete with it for the CPU
    if (!s.instances.length) setTimeout(() => prepareStandby(s), STANDBY_DELAY_MS).unref();
  }

  function onNewReady(s: ServiceState, inst: Instance): void {
    // the first ready instance of a new generation retires the old ones
    for (const old of s.instances) {
      if (old.generation !== inst.generation && old.state === 'retiring') drain(s, old);
    }
  }

  function drain(s: ServiceState, inst: Instance): void {
    if (inst.state === 'stopped' || inst.state === 'draining') return;
    inst.state = 'draining';
    emit({ type: 'drain', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId });
    if (inst.inflight === 0) remove(s, inst);
  }

  /** an instance of this service that can take one more request now or after its start */
  function pick(s: ServiceState, t: Target): Instance | typeof BACKOFF | null {
    let starting: Instance | null = null;
    let retiring: Instance | null = null;
    for (const inst of s.instances) {
      if (inst.inflight >= t.concurrency || inst.exited) continue;
      if (inst.generation === t.generation) {
        if (inst.state === 'ready') return inst;
        if (inst.state === 'starting' && !starting) starting = inst;
      } else if (inst.state === 'retiring' && !retiring) retiring = inst;
    }
    // while the new generation starts, warm old instances keep serving: nobody waits
    if (retiring && (!starting || starting.inflight > 0)) return retiring;
    if (starting) return starting;
    let live = 0;
    let startingNow = 0;
    let readyNow = 0;
    for (const i of s.instances) {
      if (i.generation !== t.generation || i.exited) continue;
      live++;
      if (i.state === 'starting') startingNow++;
      else if (i.state === 'ready') readyNow++;
    }
    if (live < t.maxInstances) {
      if (clock.now() < s.backoffUntil) return retiring ?? BACKOFF;
      // a burst starts a few instances at once, not one per request: more starts than cores
      // only slow each other down; queued requests go to them as they become ready, and the
      // next ones start while demand remains
      if (startingNow >= maxParallelStarts) return retiring;
      // warm instances that are merely full usually free a slot within milliseconds: scale out
      // only when requests have waited for one a while (a stable window, as Knative's)
      if (readyNow > 0 && !scaleOutDue(s, t)) return retiring;
      return startInstance(s, t);
    }
    return retiring;
  }

  /** true once requests have waited for capacity longer than the scale-out window */
  function scaleOutDue(s: ServiceState, t: Target): boolean {
    if (scaleOutAfterMs <= 0) return true;
    const now = clock.now();
    if (!s.pressureSince) {
      s.episodeSince = now;
      openScaleOutWindow(s, now);
      return false;
    }
    if (now - s.pressureSince < scaleOutAfterMs) return false;
    // a burst on a host with no core free: when the warm instances finished a request each within
    // the window (the queue moves; it is not stuck behind slow requests), a start would take CPU
    // from them and the queue would end later, so they keep it. One that became ready during the
    // window is not counted: an app's first requests are its slowest. For a second at most: past
    // that the load is not a burst, and the service gets its instances
    if (
      opts.hostCpu &&
      s.windowCpu &&
      now - s.episodeSince < MAX_SCALE_OUT_HOLD_MS &&
      s.completed - s.windowCompleted >= warmBefore(s, t, s.pressureSince) &&
      opts.hostCpu.saturated(s.windowCpu)
    ) {
      if (!s.heldReported) {
        s.heldReported = true;
        emit({ type: 'scale_out_held', service: s.name, instances: s.instances.length, queued: s.waiters.length });
      }
      openScaleOutWindow(s, now);
      return false;
    }
    return true;
  }

  /** ready instances of the target's version that were ready before `since` */
  function warmBefore(s: ServiceState, t: Target, since: number): number {
    let n = 0;
    for (const i of s.instances) if (i.generation === t.generation && i.state === 'ready' && !i.exited && i.readyAt !== null && i.readyAt < since) n++;
    return n;
  }

  function openScaleOutWindow(s: ServiceState, now: number): void {
    s.pressureSince = now;
    s.windowCompleted = s.completed;
    s.windowCpu = opts.hostCpu?.mark() ?? null;
    setTimeout(() => dispatch(s), scaleOutAfterMs + 1).unref();
  }

  function lease(s: ServiceState, inst: Instance, coldStart: boolean): Lease {
    let released = false;
    opts.observer?.leased(inst.id);
    return {
      instanceId: inst.id,
      upstream: inst.upstream,
      connections: (inst.connections ??= openUpstream(inst.upstream, s.target?.concurrency ?? 1)),
      coldStart,
      release() {
        if (released) return;
        released = true;
        s.completed++;
        opts.observer?.released(inst.id);
        inst.inflight--;
        if (inst.inflight === 0) {
          inst.idleSince = clock.now();
          void inst.proc.settle();
          if (inst.state === 'draining') remove(s, inst);
        }
        dispatch(s);
      },
      recycle(reason) {
        if (inst.state === 'stopped' || inst.state === 'draining') return;
        emit({ type: 'recycle', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, reason });
        drain(s, inst);
        ensureMin(s);
      },
      async diagnose() {
        if (inst.death) return inst.death;
        // an app that crashed mid-request is usually seen exiting within a few ms
        const exited = await Promise.race([inst.proc.exited.then(() => true), sleep(100).then(() => false)]);
        // a sandbox's outer process can outlive its app by a moment: the cgroup knows sooner
        const death = exited ? await inst.proc.explainExit('serving') : await inst.proc.checkNow();
        // logged before the visitor reads it in the answer, so the log never contradicts it
        if (death && inst.state !== 'stopped') logDeath(s, inst, death);
        return death;
      },
    };
  }

  async function thaw(s: ServiceState, inst: Instance): Promise<void> {
    if (!inst.frozen) return inst.freezeOp;
    inst.frozen = false;
    const t0 = clock.now();
    inst.freezeOp = inst.freezeOp.then(() => inst.proc.thaw());
    await inst.freezeOp;
    opts.observer?.resumed?.(inst.id);
    emit({ type: 'thawed', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, frozenMs: t0 - inst.frozenAt, thawMs: clock.now() - t0 });
  }

  function freeze(s: ServiceState, inst: Instance, idleMs: number): void {
    inst.frozen = true;
    // idle keep-alive connections would be closed by the app the moment it thaws (its keep-alive
    // timer is long overdue), racing the request sent on them: start the thawed app on fresh ones
    closeUpstream(inst.connections);
    inst.connections = null;
    inst.frozenAt = clock.now();
    opts.observer?.paused?.(inst.id);
    inst.freezeOp = inst.freezeOp.then(() => inst.proc.freeze()).catch((err) => {
      inst.frozen = false;
      log.warn('instance.freeze_failed', { service: s.name, instance: inst.id, error: describeError(err) });
    });
    emit({ type: 'frozen', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, idleMs });
  }

  /** `reserved`: dispatch() already counted this request against the instance */
  async function take(s: ServiceState, inst: Instance, reserved = false): Promise<Lease> {
    if (!reserved) inst.inflight++;
    if (inst.frozen) {
      try {
        await thaw(s, inst);
      } catch (err) {
        inst.inflight--;
        remove(s, inst);
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
    return lease(s, inst, false);
  }

  function backoffError(s: ServiceState): CellhostError {
    const last = s.lastFailure;
    const wait = Math.max(0, s.backoffUntil - clock.now());
    return new CellhostError(last?.code ?? 'ERR_APP_EXITED', `${last?.message ?? 'the app keeps failing to start'}; it failed ${s.failures} time(s) in a row, next start in ${(wait / 1000).toFixed(1)} s`, {
      details: last?.details,
    });
  }

  function recordFailure(s: ServiceState, err: CellhostError, generation: string): void {
    if (s.target?.generation !== generation) return;
    s.failures++;
    s.lastFailure = err;
    const delay = backoffDelay(s.failures);
    s.backoffUntil = clock.now() + delay;
    if (s.failures > 1) emit({ type: 'backoff', service: s.name, failures: s.failures, delayMs: delay, message: err.message });
    setTimeout(() => dispatch(s), delay + 1).unref();
  }

  function dispatch(s: ServiceState): void {
    while (s.waiters.length && s.target) {
      const inst = pick(s, s.target);
      if (inst === BACKOFF) {
        const err = backoffError(s);
        for (const w of s.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(err);
        }
        return;
      }
      if (!inst) return;
      const w = s.waiters.shift()!;
      clearTimeout(w.timer);
      // the slot is taken now, or the next pick() in this loop would hand out the same one
      inst.inflight++;
      w.resolve(inst);
    }
    if (!s.waiters.length) {
      s.pressureSince = 0;
      s.heldReported = false;
    }
  }

  function ensureMin(s: ServiceState): void {
    const t = s.target;
    if (!t || closing) return;
    let live = s.instances.filter((i) => i.generation === t.generation).length;
    while (live < Math.min(t.minInstances, t.maxInstances)) {
      startInstance(s, t);
      live++;
    }
  }

  function sweepIdle(): void {
    const now = clock.now();
    const freezeAfter = opts.freezeAfterMs ?? 30_000;
    if (opts.isMemoryLow?.()) {
      // the oldest frozen instance goes first; one per sweep, then look again
      let oldest: { s: ServiceState; inst: Instance } | null = null;
      for (const s of services.values()) for (const inst of s.instances) if (inst.frozen && (!oldest || inst.frozenAt < oldest.inst.frozenAt)) oldest = { s, inst };
      if (oldest) {
        emit({ type: 'memory_pressure_stop', service: oldest.s.name, instanceId: oldest.inst.id, deploymentId: oldest.inst.deploymentId, frozenMs: now - oldest.inst.frozenAt });
        remove(oldest.s, oldest.inst);
      }
    }
    for (const s of services.values()) {
      const t = s.target;
      // an instance that stayed up past the early-crash window ends a crash loop
      if (s.failures && s.instances.some((i) => i.readyAt !== null && !i.exited && now - i.readyAt >= EARLY_CRASH_MS)) {
        s.failures = 0;
        s.backoffUntil = 0;
      }
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
          remove(s, inst);
        } else if (freezeAfter > 0 && idleMs >= freezeAfter && !inst.frozen && inst.proc.canFreeze) {
          freeze(s, inst, idleMs);
        }
      }
    }
  }

  return {
    async acquire(name) {
      if (closing) throw new CellhostError('ERR_SHUTTING_DOWN', 'the platform is shutting down');
      const s = services.get(name);
      const t = s?.target;
      if (!s || !t) throw new CellhostError('ERR_NO_DEPLOYMENT', `service "${name}" has no live deployment yet`);
      const inst = pick(s, t);
      if (inst === BACKOFF) throw backoffError(s);
      if (inst) return take(s, inst);
      if (s.waiters.length >= opts.queueLimit) {
        throw new CellhostError('ERR_CAPACITY', `service "${name}" is at its limit of ${t.maxInstances} instance(s) × ${t.concurrency} concurrent requests and its wait queue is full`);
      }
      const chosen = await new Promise<Instance>((resolve, reject) => {
        const w: Waiter = {
          resolve,
          reject,
          timer: setTimeout(() => {
            const i = s.waiters.indexOf(w);
            if (i >= 0) s.waiters.splice(i, 1);
            reject(new CellhostError('ERR_CAPACITY', `service "${name}" had no free capacity for ${opts.queueTimeoutMs / 1000} s`));
          }, opts.queueTimeoutMs),
        };
        s.waiters.push(w);
      });
      return take(s, chosen, true);
    },

    tryAcquire(name) {
      const s = services.get(name);
      const t = s?.target;
      // anyone queued goes first (FIFO), and every other case (cold, frozen, full, retiring) is acquire()'s
      if (closing || !s || !t || s.waiters.length) return null;
      for (const inst of s.instances) {
        if (inst.state === 'ready' && inst.generation === t.generation && !inst.frozen && !inst.exited && inst.inflight < t.concurrency) {
          inst.inflight++;
          return lease(s, inst, false);
        }
      }
      return null;
    },

    setTarget(name, target, options) {
      const s = state(name);
      const prev = s.target;
      s.target = target;
      if (!target || prev?.generation !== target.generation) void standbys.discard(name);
      if (!target) {
        for (const w of s.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new CellhostError('ERR_NO_DEPLOYMENT', `service "${name}" has no live deployment`));
        }
        for (const inst of [...s.instances]) drain(s, inst);
        if (!s.instances.length) services.delete(name);
        return;
      }
      if (prev && prev.generation !== target.generation) {
        // a new version gets a fresh chance to start, and may start faster or slower
        s.failures = 0;
        s.backoffUntil = 0;
        s.appStartMs = 0;
        const warm = s.instances.some((i) => i.generation !== target.generation && i.state === 'ready');
        for (const inst of [...s.instances]) {
          if (inst.generation === target.generation) continue;
          if (inst.state === 'ready' && warm) inst.state = 'retiring';
          else drain(s, inst);
        }
        // start the replacement now, so the switch costs no request a cold start
        if (warm && !s.instances.some((i) => i.generation === target.generation)) startInstance(s, target);
      }
      ensureMin(s);
      dispatch(s);
      // a version just made live will be asked for soon; at the platform's start, no service gets
      // one until it has been used and scaled to zero
      if (options?.standby && prev?.generation !== target.generation) prepareStandby(s);
    },

    async stopService(name, graceMs) {
      this.setTarget(name, null);
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && services.get(name)?.instances.some((i) => i.inflight > 0)) await sleep(20);
      const s = services.get(name);
      if (s) for (const inst of [...s.instances]) remove(s, inst);
      if (s && !s.instances.length && !s.target) services.delete(name);
      await Promise.all([...(stoppingFor.get(name) ?? []), standbys.discard(name)]);
    },

    instances(name) {
      const s = services.get(name);
      if (!s) return [];
      return s.instances.map((i) => ({
        id: i.id,
        deploymentId: i.deploymentId,
        state: i.state,
        pid: i.proc?.pid ?? -1,
        inflight: i.inflight,
        frozen: i.frozen,
        startedAt: new Date(i.startedAt).toISOString(),
        readyAt: i.readyAt ? new Date(i.readyAt).toISOString() : null,
      }));
    },

    async close(graceMs) {
      closing = true;
      clearInterval(sweep);
      for (const s of services.values()) {
        for (const w of s.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new CellhostError('ERR_SHUTTING_DOWN', 'the platform is shutting down'));
        }
      }
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && [...services.values()].some((s) => s.instances.some((i) => i.inflight > 0))) await sleep(20);
      for (const s of services.values()) for (const inst of [...s.instances]) remove(s, inst);
      await Promise.all([...stopping, standbys.close()]);
      services.clear();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
