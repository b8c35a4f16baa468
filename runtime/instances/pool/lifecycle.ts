// An instance's life: started (from a standby when the service has one, else prepared and
// spawned), ready, drained of its requests, stopped; a crash or failed start reported with its
// reason. A service's standby (its next instance's sandbox prepared ahead) is kept here too,
// since it is made when the last instance stops and used by the next start.
import { CellhostError, describeError } from '../../core/errors.ts';
import type { Launch } from '../launcher.ts';
import { spawnInstance, type InstanceProcess, type OutputStream } from '../process.ts';
import { createStandbySet, newInstanceId } from '../standby.ts';
import { closeUpstream, openUpstream } from '../upstream.ts';
import type { Backoff } from './backoff.ts';
import type { Freezer } from './freezer.ts';
import type { Instance, PoolContext, ServiceState } from './state.ts';
import type { CheckedInstance } from './verify.ts';
import type { InstanceState, PoolOptions, Target } from './types.ts';

/** a start measured longer than this is not taken as the app's usual one (readiness polls sparsely until 60 % of it) */
const MAX_EXPECTED_START_MS = 10_000;
/** how long after a service's last instance stopped its standby is prepared */
const STANDBY_DELAY_MS = 200;

export interface Lifecycle {
  /**
   * start an instance of the target's version; it takes requests at once (they wait for its
   * start). `ahead`: nobody asked for it yet (a prewarmed instance being made): unless a request
   * takes it before it is ready, its start is neither a cold start nor billed
   */
  start(s: ServiceState, target: Target, opts?: { ahead?: boolean }): Instance;
  /**
   * an app of the target's version already started and ready (a deployment's start check that
   * passed) becomes an instance of the service, started ahead: no cold start, not billed for its
   * start. Its version need not be live yet
   */
  adopt(s: ServiceState, target: Target, checked: CheckedInstance): Instance;
  /** take the instance out of rotation and stop it now */
  remove(s: ServiceState, inst: Instance): void;
  /** take it out of rotation and stop it once its requests are done */
  drain(s: ServiceState, inst: Instance): void;
  /** start instances of the current version up to the service's minimum */
  ensureMin(s: ServiceState): void;
  /** a service with no instance of its current version gets a standby, so its next start is quick */
  prepareStandby(s: ServiceState): void;
  /** drops the service's standby; resolves once it has exited */
  discardStandby(service: string): Promise<void>;
  /** resolves once every stop of the service's instances under way is done */
  stopped(service: string): Promise<void>;
  /** an instance's death, recorded and logged once (an oom or crash event) */
  logDeath(s: ServiceState, inst: Instance, death: CellhostError): void;
  /** when the instance last wrote a line of output (stdout or stderr); null: never yet */
  lastOutputAt(instanceId: string): number | null;
  /** resolves once every stop under way is done and the standbys are gone */
  close(): Promise<void>;
}

export interface LifecycleOptions extends Pick<PoolOptions, 'launcher' | 'startTimeoutMs' | 'onOutput'> {
  /** services scaled to zero that keep a standby */
  standbys: number;
  freezer: Freezer;
  backoff: Backoff;
  /** an instance became ready and can take requests */
  onReady(s: ServiceState, inst: Instance): void;
  /** an instance failed to start or exited: the requests counted on it need another */
  onLost(s: ServiceState): void;
  /** a line from an instance's control fd (the edge host's busy and idle) */
  onControl?(service: string, instanceId: string, line: string): void;
}

export function createLifecycle(ctx: PoolContext, opts: LifecycleOptions): Lifecycle {
  const { clock, log, observer, emit } = ctx;
  const stopping = new Set<Promise<void>>();
  /** the stops under way per service, for stopService() to wait on */
  const stoppingFor = new Map<string, Set<Promise<void>>>();

  /** each instance's last line of output, by id: a prewarmed instance is frozen once its start has had its say */
  const outputAt = new Map<string, number>();
  const output = (service: string, id: string, deploymentId: string) => (stream: OutputStream, line: string) => {
    outputAt.set(id, clock.now());
    opts.onOutput?.(service, id, deploymentId, stream, line);
  };

  const spawnFor = (launch: Launch, service: string, id: string, deploymentId: string, healthPath: string | null, servicePort: number | undefined, held = false) =>
    spawnInstance(launch, {
      startTimeoutMs: opts.startTimeoutMs,
      healthPath,
      held,
      servicePort,
      expectReadyMs: Math.min(ctx.services.get(service)?.appStartMs ?? 0, MAX_EXPECTED_START_MS),
      onOutput: output(service, id, deploymentId),
      onControl: (line) => opts.onControl?.(service, id, line),
    });
  const standbys = createStandbySet({
    max: opts.standbys,
    launcher: opts.launcher,
    spawn: (launch, service, id, deploymentId) => {
      const t = ctx.services.get(service)?.target;
      return spawnFor(launch, service, id, deploymentId, t?.healthPath ?? null, t?.spec.port, true);
    },
    log,
  });

  function prepareStandby(s: ServiceState): void {
    const t = s.target;
    if (!t || ctx.isClosing() || t.minInstances > 0 || t.maxInstances < 1) return;
    if (s.instances.some((i) => i.generation === t.generation)) return;
    standbys.prepare(s.name, t.generation, t.spec);
  }

  /** the instance's record, in the service's list from now on */
  function record(s: ServiceState, target: Target, id: string, startedAt: number, ahead: boolean): Instance {
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
      startedAhead: ahead,
      prewarm: null,
      backgroundLease: null,
    };
    s.instances.push(inst);
    observer?.instancesChanged?.(s.name, s.instances.length);
    return inst;
  }

  /** its app listens: it takes requests from now on */
  function becameReady(s: ServiceState, inst: Instance, target: Target, readyAt: number, standby: boolean): void {
    if (inst.state !== 'starting') return;
    inst.state = 'ready';
    inst.readyAt = readyAt;
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
    // started ahead and still nobody's: not a cold start, and its start is not billed; a
    // request that came meanwhile waited for it, which makes it one after all
    const ahead = inst.startedAhead && inst.inflight === 0;
    inst.startedAhead = ahead;
    const durationMs = inst.readyAt - inst.startedAt;
    observer?.instanceReady({ service: s.name, instanceId: inst.id, memoryMb: target.spec.memoryMb, startMs: ahead ? 0 : durationMs, persistent: target.minInstances > 0, ahead });
    if (!ahead) emit({ type: 'cold_start', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, durationMs, prepareMs: inst.preparedAt - inst.startedAt, standby });
    opts.onReady(s, inst);
  }

  function start(s: ServiceState, target: Target, startOpts: { ahead?: boolean } = {}): Instance {
    const standby = standbys.take(s.name, target.generation);
    const inst = record(s, target, standby?.id ?? newInstanceId(), clock.now(), startOpts.ahead ?? false);
    const id = inst.id;
    inst.ready = (async () => {
      if (standby) {
        inst.upstream = standby.launch.upstream;
        inst.proc = standby.proc;
        inst.proc.go();
        // an edge host listens already: its first connection is made while its module loads
        // (~1.5 ms of an edge cold start after readiness otherwise, measured)
        if (standby.launch.acceptsBeforeReady) inst.connections = openUpstream(inst.upstream, target.concurrency, { ...ctx.upstream, connectNow: true });
      } else {
        const launch = await opts.launcher.prepare({ ...target.spec, instanceId: id });
        inst.upstream = launch.upstream;
        inst.proc = spawnFor(launch, s.name, id, inst.deploymentId, target.healthPath, target.spec.port);
      }
      inst.preparedAt = clock.now();
      void inst.proc.exited.then(() => onExit(s, inst));
      await inst.proc.ready;
    })();
    inst.ready.then(
      () => becameReady(s, inst, target, clock.now(), standby !== null),
      (err: unknown) => {
        const coded = err instanceof CellhostError ? err : new CellhostError('ERR_APP_EXITED', `the app could not be started: ${describeError(err)}`, { cause: err });
        inst.death = coded;
        if (coded.code === 'ERR_APP_OOM') emit({ type: 'oom', service: s.name, instanceId: id, deploymentId: inst.deploymentId, limitMb: inst.memoryMb, message: coded.message });
        emit({ type: 'start_failed', service: s.name, instanceId: id, deploymentId: inst.deploymentId, code: coded.code, message: coded.message });
        opts.backoff.recordFailure(s, coded, inst.generation);
        remove(s, inst);
        opts.onLost(s);
      },
    );
    return inst;
  }

  function adopt(s: ServiceState, target: Target, checked: CheckedInstance): Instance {
    const inst = record(s, target, checked.id, checked.startedAt, true);
    inst.proc = checked.proc;
    inst.upstream = checked.upstream;
    inst.preparedAt = checked.spawnedAt;
    checked.route(output(s.name, inst.id, inst.deploymentId), (line) => opts.onControl?.(s.name, inst.id, line));
    // an app that exited since its check passed is seen here, as a crash
    void inst.proc.exited.then(() => onExit(s, inst));
    becameReady(s, inst, target, checked.readyAt, false);
    return inst;
  }

  async function onExit(s: ServiceState, inst: Instance) {
    if (inst.state === 'stopped' || inst.state === 'starting') return;
    // out of rotation at once: no request may be sent to it while the reason is read
    inst.exited = true;
    const death = await inst.proc.explainExit('serving');
    if ((inst.state as InstanceState) === 'stopped') return;
    opts.backoff.recordCrash(s, inst, death);
    logDeath(s, inst, death);
    remove(s, inst);
    opts.onLost(s);
  }

  /** the death in the service's log, once: by whichever sees it first, the exit or a lease's diagnose() */
  function logDeath(s: ServiceState, inst: Instance, death: CellhostError): void {
    inst.death = death;
    if (inst.deathLogged) return;
    inst.deathLogged = true;
    if (death.code === 'ERR_APP_OOM') emit({ type: 'oom', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, limitMb: inst.memoryMb, message: death.message });
    else emit({ type: 'crash', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId, code: death.code, message: death.message });
  }

  function remove(s: ServiceState, inst: Instance): void {
    if (inst.state === 'stopped') return;
    outputAt.delete(inst.id);
    const wasServing = inst.readyAt !== null;
    inst.state = 'stopped';
    if (wasServing) observer?.instanceStopped(inst.id);
    const i = s.instances.indexOf(inst);
    if (i >= 0) s.instances.splice(i, 1);
    observer?.instancesChanged?.(s.name, s.instances.length);
    closeUpstream(inst.connections);
    inst.connections = null;
    const uptimeMs = clock.now() - inst.startedAt;
    const p = (async () => {
      try {
        // a start still under way is let finish, failed or not: what it made is disposed below
        await inst.ready.catch(() => {});
        await opts.freezer.thawToStop(inst);
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

  function ensureMin(s: ServiceState): void {
    const t = s.target;
    if (!t || ctx.isClosing()) return;
    let live = s.instances.filter((i) => i.generation === t.generation).length;
    while (live < Math.min(t.minInstances, t.maxInstances)) {
      start(s, t);
      live++;
    }
  }

  return {
    start,
    adopt,
    remove,
    drain(s, inst) {
      if (inst.state === 'stopped' || inst.state === 'draining') return;
      inst.state = 'draining';
      emit({ type: 'drain', service: s.name, instanceId: inst.id, deploymentId: inst.deploymentId });
      if (inst.inflight === 0) remove(s, inst);
    },
    ensureMin,
    prepareStandby,
    discardStandby: (service) => standbys.discard(service),
    stopped: async (service) => {
      await Promise.all([...(stoppingFor.get(service) ?? [])]);
    },
    logDeath,
    lastOutputAt: (id) => outputAt.get(id) ?? null,
    async close() {
      await Promise.all([...stopping, standbys.close()]);
    },
  };
}
