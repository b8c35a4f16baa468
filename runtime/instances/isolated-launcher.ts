// The launcher with limits: every instance in its own cgroup (memory = its size, no swap; CPU
// = memory/1769 of a core; pids), started uncapped (startup boost) and capped once ready. An
// exit with the group's OOM counter raised is reported as out of memory.
import { cpuForMemory } from '../sandbox/cgroups/cpu.ts';
import type { CgroupDriver } from '../sandbox/cgroups/types.ts';
import type { InstanceSpec, IsolationReport, Launch, Launcher } from './launcher.ts';

export interface IsolatedLauncherOptions {
  /** what runs the app without limits (the direct launcher, or the sandboxed one) */
  base: Launcher;
  cgroups: CgroupDriver | null;
  hostCores: number;
  pidsMax: number;
  /** CPU cap while starting: null = uncapped, a number = that fraction of a core, 'off' = the normal cap */
  startupBoost: number | null | 'off';
  report: IsolationReport;
}

export function limitsFor(memoryMb: number, hostCores: number, pidsMax: number) {
  const cpu = cpuForMemory(memoryMb, hostCores);
  return { memoryBytes: memoryMb * 1024 * 1024, cpuQuota: cpu.quota, cpus: cpu.cores, pidsMax };
}

export function createIsolatedLauncher(opts: IsolatedLauncherOptions): Launcher {
  return {
    async prepare(spec: InstanceSpec): Promise<Launch> {
      const inner = await opts.base.prepare(spec);
      if (!opts.cgroups) return inner;
      const limits = limitsFor(spec.memoryMb, opts.hostCores, opts.pidsMax);
      const boost = opts.startupBoost === 'off' ? limits.cpuQuota : opts.startupBoost;
      let cg;
      try {
        cg = await opts.cgroups.create(spec.instanceId, { ...limits, cpuQuota: boost });
      } catch (err) {
        await inner.release();
        throw err;
      }
      const group = cg;
      return {
        ...inner,
        argv: group.wrapArgv(inner.argv),
        async onReady() {
          await inner.onReady?.();
          if (boost !== limits.cpuQuota) await group.setCpuQuota(limits.cpuQuota);
        },
        // a frozen group cannot see SIGTERM, and the pool thaws before it stops one anyway
        freeze: () => group.freeze(),
        thaw: () => group.thaw(),
        async killAll() {
          await group.killAll();
          await inner.killAll?.();
        },
        async diagnose() {
          const stats = await group.stats().catch(() => null);
          if (stats && stats.oomKills > 0) {
            return { code: 'ERR_APP_OOM', message: `the app ran out of memory (limit ${spec.memoryMb} MB) and was killed` };
          }
          return (await inner.diagnose?.()) ?? null;
        },
        async release() {
          await group.destroy();
          await inner.release();
        },
      };
    },
    report: () => opts.report,
  };
}
