// The start check a deployment passes before it goes live: its version started once, as an
// instance would be (same launcher, limits, sandbox and port), outside the service's rotation,
// until it accepts connections on its port (and answers its health path, when the service has
// one), then stopped. No request reaches it and it is not billed. A version that exits, listens
// on another port or never listens fails here, with its reason and last output, while the live
// version keeps serving.
//
// The checked instance is stopped afterwards. It could instead become the service's first
// instance, or its frozen standby: verify() returning the started process is where that would go.
import { CellhostError, describeError } from '../../core/errors.ts';
import type { OutputStream } from '../process.ts';
import { spawnInstance } from '../process.ts';
import { newInstanceId } from '../standby.ts';
import type { PoolContext } from './state.ts';
import type { PoolOptions, Target } from './types.ts';

/** the checked app never served a request: it gets this long to exit on SIGTERM */
const CHECK_STOP_GRACE_MS = 1000;

export type VerifyOutcome =
  | {
      ok: true;
      /** spawn to accepting connections (and a healthy answer), ms */
      startMs: number;
      /** where it was reached: the service's port, or $PORT's without network namespaces */
      port: number;
    }
  | { ok: false; error: CellhostError; lastLines: string[] };

export interface VerifyOptions {
  /** stops the check (the deployment was interrupted or its service deleted) */
  signal?: AbortSignal;
  /** the checked app's output, line by line (for the deployment's log) */
  onOutput?(stream: OutputStream, line: string): void;
}

export interface StartChecks {
  verify(service: string, target: Target, opts?: VerifyOptions): Promise<VerifyOutcome>;
  /** ends the service's checks; resolves once their processes are gone */
  stop(service: string): Promise<void>;
  /** ends every check; resolves once their processes are gone */
  close(): Promise<void>;
}

export function createStartChecks(ctx: PoolContext, opts: Pick<PoolOptions, 'launcher' | 'startTimeoutMs'>): StartChecks {
  const running = new Map<string, { service: string; stop: AbortController; done: Promise<unknown> }>();

  async function check(service: string, id: string, target: Target, o: VerifyOptions, stop: AbortSignal): Promise<VerifyOutcome> {
    let launch;
    try {
      launch = await opts.launcher.prepare({ ...target.spec, instanceId: id });
    } catch (err) {
      const error = err instanceof CellhostError ? err : new CellhostError('ERR_SANDBOX_SETUP', `the app could not be prepared: ${describeError(err)}`, { cause: err });
      return { ok: false, error, lastLines: [] };
    }
    const spawnedAt = ctx.clock.now();
    const proc = spawnInstance(launch, {
      startTimeoutMs: opts.startTimeoutMs,
      healthPath: target.healthPath,
      servicePort: target.spec.port,
      onOutput: o.onOutput,
    });
    const onStop = () => void proc.dispose(0);
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();
    try {
      await proc.ready;
      return { ok: true, startMs: ctx.clock.now() - spawnedAt, port: launch.upstream.port };
    } catch (err) {
      const error = err instanceof CellhostError ? err : new CellhostError('ERR_APP_EXITED', `the app could not be started: ${describeError(err)}`, { cause: err });
      return { ok: false, error, lastLines: proc.tail() };
    } finally {
      stop.removeEventListener('abort', onStop);
      await proc.dispose(CHECK_STOP_GRACE_MS).catch((err) => ctx.log.error('start_check.dispose_failed', { service, instance: id, error: describeError(err) }));
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
