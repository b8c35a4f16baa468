// The start check a deployment passes before it goes live: its version started once, as an
// instance would be (same launcher, limits, sandbox and port), outside the service's rotation,
// until it accepts connections on its port (and answers its health path, when the service has
// one). No request reaches it and it is not billed. A version that exits, listens on another
// port or never listens fails here, with its reason and last output, while the live version
// keeps serving.
//
// A version that passed is not started a second time to be prewarmed: when the pool wants a
// prewarmed instance of it (prewarming on for the service and the platform), the checked process
// is handed to the pool (`keep`), which freezes it and keeps it within the budget; it then serves
// the first request after the version goes live. Otherwise it is stopped.
import { CellhostError, describeError } from '../../core/errors.ts';
import type { InstanceProcess, OutputStream } from '../process.ts';
import { spawnInstance } from '../process.ts';
import { newInstanceId } from '../standby.ts';
import type { PoolContext } from './state.ts';
import type { PoolOptions, PrewarmOutcome, Target } from './types.ts';

/** the checked app never served a request: it gets this long to exit on SIGTERM */
const CHECK_STOP_GRACE_MS = 1000;

export type VerifyOutcome =
  | {
      ok: true;
      /** spawn to accepting connections (and a healthy answer), ms */
      startMs: number;
      /** where it was reached: the service's port, or $PORT's without network namespaces */
      port: number;
      /** kept as the service's prewarmed instance, or why not ('off': not wanted, stopped) */
      prewarm: PrewarmOutcome;
    }
  | { ok: false; error: CellhostError; lastLines: string[] };

export interface VerifyOptions {
  /** stops the check (the deployment was interrupted or its service deleted) */
  signal?: AbortSignal;
  /** the checked app's output, line by line (for the deployment's log) */
  onOutput?(stream: OutputStream, line: string): void;
}

/** a checked app that passed, handed to the pool with its process still running */
export interface CheckedInstance {
  id: string;
  proc: InstanceProcess;
  upstream: { host: string; port: number };
  /** when the check began (prepare), its process was spawned, and it passed */
  startedAt: number;
  spawnedAt: number;
  readyAt: number;
  /** from now on its output and control lines go to these (the check's own sinks are done) */
  route(output: (stream: OutputStream, line: string) => void, control: (line: string) => void): void;
}

export interface StartCheckKeeper {
  /** whether a version that passes would be kept (its start lines then go to the service's log too) */
  wants(service: string, target: Target): boolean;
  /** takes the checked instance over: it is the pool's to stop from now on, whatever comes of it */
  keep(service: string, target: Target, checked: CheckedInstance): Promise<PrewarmOutcome>;
}

export interface StartChecks {
  verify(service: string, target: Target, opts?: VerifyOptions): Promise<VerifyOutcome>;
  /** ends the service's checks; resolves once their processes are gone */
  stop(service: string): Promise<void>;
  /** ends every check; resolves once their processes are gone */
  close(): Promise<void>;
}

export interface StartCheckOptions extends Pick<PoolOptions, 'launcher' | 'startTimeoutMs' | 'onOutput'> {
  /** the pool's prewarmed instances: a checked app it wants is kept instead of stopped */
  keeper?: StartCheckKeeper;
}

export function createStartChecks(ctx: PoolContext, opts: StartCheckOptions): StartChecks {
  const running = new Map<string, { service: string; stop: AbortController; done: Promise<unknown> }>();

  async function check(service: string, id: string, target: Target, o: VerifyOptions, stop: AbortSignal): Promise<VerifyOutcome> {
    const startedAt = ctx.clock.now();
    let launch;
    try {
      launch = await opts.launcher.prepare({ ...target.spec, instanceId: id });
    } catch (err) {
      const error = err instanceof CellhostError ? err : new CellhostError('ERR_SANDBOX_SETUP', `the app could not be prepared: ${describeError(err)}`, { cause: err });
      return { ok: false, error, lastLines: [] };
    }
    // a version the pool would keep: its start lines are that instance's first lines in the
    // service's log as well as in the deployment's
    const keeper = opts.keeper?.wants(service, target) ? opts.keeper : null;
    const deploymentId = target.spec.deploymentId;
    let output = (stream: OutputStream, line: string) => {
      o.onOutput?.(stream, line);
      if (keeper) opts.onOutput?.(service, id, deploymentId, stream, line);
    };
    let control = (_line: string) => {};
    const spawnedAt = ctx.clock.now();
    const proc = spawnInstance(launch, {
      startTimeoutMs: opts.startTimeoutMs,
      healthPath: target.healthPath,
      servicePort: target.spec.port,
      onOutput: (stream, line) => output(stream, line),
      onControl: (line) => control(line),
    });
    const onStop = () => void proc.dispose(0);
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();
    let handedOver = false;
    let checkDone = false;
    try {
      await proc.ready;
      const readyAt = ctx.clock.now();
      const passed = { startMs: readyAt - spawnedAt, port: launch.upstream.port };
      if (!keeper || stop.aborted) return { ok: true, ...passed, prewarm: { kind: 'off', reason: 'no prewarmed instance is wanted' } };
      stop.removeEventListener('abort', onStop);
      handedOver = true;
      const prewarm = await keeper
        .keep(service, target, {
          id,
          proc,
          upstream: launch.upstream,
          startedAt,
          spawnedAt,
          readyAt,
          route(toOutput, toControl) {
            // until the pool has kept it (its last start lines come while it settles), the
            // deployment's log gets them too
            output = (stream, line) => {
              if (!checkDone) o.onOutput?.(stream, line);
              toOutput(stream, line);
            };
            control = toControl;
          },
        })
        .catch((err: unknown): PrewarmOutcome => ({ kind: 'failed', code: 'ERR_INTERNAL', message: describeError(err) }));
      checkDone = true;
      return { ok: true, ...passed, prewarm };
    } catch (err) {
      const error = err instanceof CellhostError ? err : new CellhostError('ERR_APP_EXITED', `the app could not be started: ${describeError(err)}`, { cause: err });
      return { ok: false, error, lastLines: proc.tail() };
    } finally {
      if (!handedOver) {
        stop.removeEventListener('abort', onStop);
        await proc.dispose(CHECK_STOP_GRACE_MS).catch((err) => ctx.log.error('start_check.dispose_failed', { service, instance: id, error: describeError(err) }));
      }
    }
  }

  const stopAll = async (which: (service: string) => boolean): Promise<void> => {
    const mine = [...running.values()].filter((r) => which(r.service));
    for (const r of mine) r.stop.abort();
    await Promise.all(mine.map((r) => r.done.catch(() => {})));
  };

  return {
    async verify(service, target, o = {}) {
      if (ctx.isClosing()) throw new CellhostError('ERR_SHUTTING_DOWN', 'the platform is shutting down');
      const id = newInstanceId();
      const stop = new AbortController();
      const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
      const done = check(service, id, target, o, signal);
      running.set(id, { service, stop, done });
      try {
        return await done;
      } finally {
        running.delete(id);
      }
    },
    stop: (service) => stopAll((s) => s === service),
    close: () => stopAll(() => true),
  };
}
