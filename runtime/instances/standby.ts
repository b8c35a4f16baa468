// Standbys: for a service scaled to zero, its next instance prepared ahead of the request. The
// cgroup, the network namespace and the sandbox are set up and a shell inside waits on stdin
// (InstanceSpec.held); a cold start then only writes a line and the app's own start is all
// that is left. Without one, the exec chain alone (cgroup join, nsenter, setpriv, bwrap, bash)
// costs ~11 ms and the preparation 3–12 ms more on the request's path (docs/benchmarks.md).
//
// A standby holds a namespace, a cgroup and two small processes but no CPU and is not billed
// (no app runs). Only the most recently idle services keep one (`max`, oldest dropped first).
import crypto from 'node:crypto';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { InstanceSpec, Launch, Launcher } from './launcher.ts';
import type { InstanceProcess } from './process.ts';

export interface Standby {
  id: string;
  service: string;
  generation: string;
  launch: Launch;
  proc: InstanceProcess;
}

export interface StandbySet {
  /** prepare one for this service's generation unless it has one (in the background) */
  prepare(service: string, generation: string, spec: Omit<InstanceSpec, 'instanceId'>): void;
  /** the service's standby for this generation, still alive, taken out of the set; else null */
  take(service: string, generation: string): Standby | null;
  /** drop the service's standby (deleted, new version, or it keeps instances now); resolves once
   *  it (and one being prepared) has exited */
  discard(service: string): Promise<void>;
  size(): number;
  close(): Promise<void>;
}

export interface StandbyOptions {
  max: number;
  launcher: Launcher;
  /** spawn the held launch the way the pool spawns an instance (its output and timeouts) */
  spawn(launch: Launch, service: string, instanceId: string, deploymentId: string): InstanceProcess;
  log: Logger;
}

export function newInstanceId(): string {
  return 'i-' + crypto.randomBytes(5).toString('hex');
}

export function createStandbySet(opts: StandbyOptions): StandbySet {
  // insertion order = age: the first entry is the one dropped when the set is full
  const ready = new Map<string, Standby>();
  const preparing = new Map<string, string>();
  const disposing = new Set<Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  const inFlightFor = new Map<string, Promise<void>>();
  let closed = false;

  const dispose = (sb: Standby): Promise<void> => {
    const p = sb.proc.dispose(0).catch((err) => opts.log.warn('standby.dispose_failed', { service: sb.service, error: describeError(err) }));
    disposing.add(p);
    void p.finally(() => disposing.delete(p));
    return p;
  };

  const drop = async (service: string): Promise<void> => {
    const sb = ready.get(service);
    if (!sb) return;
    ready.delete(service);
    await dispose(sb);
  };

  return {
    prepare(service, generation, spec) {
      if (closed || opts.max <= 0) return;
      if (ready.get(service)?.generation === generation || preparing.get(service) === generation) return;
      preparing.set(service, generation);
      const id = newInstanceId();
      const p = (async () => {
        try {
          const launch = await opts.launcher.prepare({ ...spec, instanceId: id, held: true });
          const proc = opts.spawn(launch, service, id, spec.deploymentId);
          const sb: Standby = { id, service, generation, launch, proc };
          // superseded while it was prepared (a newer version, a delete, the pool closing)
          if (closed || preparing.get(service) !== generation) {
            await dispose(sb);
            return;
          }
          preparing.delete(service);
          void drop(service);
          ready.set(service, sb);
          while (ready.size > opts.max) void drop(ready.keys().next().value!);
          void proc.exited.then(() => {
            if (ready.get(service) !== sb) return;
            ready.delete(service);
            opts.log.warn('standby.exited', { service, lastLines: proc.tail() });
            void dispose(sb);
          });
        } catch (err) {
          if (preparing.get(service) === generation) preparing.delete(service);
          opts.log.warn('standby.prepare_failed', { service, error: describeError(err) });
        }
      })();
      inFlight.add(p);
      inFlightFor.set(service, p);
      void p.finally(() => {
        inFlight.delete(p);
        if (inFlightFor.get(service) === p) inFlightFor.delete(service);
      });
    },

    take(service, generation) {
      const sb = ready.get(service);
      if (!sb) return null;
      ready.delete(service);
      if (sb.generation !== generation || sb.proc.isExited()) {
        void dispose(sb);
        return null;
      }
      return sb;
    },

    async discard(service) {
      preparing.delete(service);
      await Promise.all([inFlightFor.get(service), drop(service)]);
    },

    size: () => ready.size,

    async close() {
      closed = true;
      preparing.clear();
      await Promise.all([...inFlight]);
      for (const service of [...ready.keys()]) void drop(service);
      await Promise.all([...disposing]);
    },
  };
}
