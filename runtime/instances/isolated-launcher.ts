// The launcher with limits: every instance in its own cgroup (memory = its size, no swap; CPU
// = memory/1769 of a core; pids), started uncapped (startup boost) and capped once ready. An
// exit with the group's OOM counter raised is reported as out of memory.
import { cpuForMemory } from '../core/cpu-for-memory.ts';
import type { CgroupDriver } from '../sandbox/cgroups/types.ts';
import type { InstanceSpec, Launch, Launcher } from './launcher.ts';

export interface IsolatedLauncherOptions {
  /** what runs the app without limits (the direct launcher, or the sandboxed one) */
  base: Launcher;
  cgroups: CgroupDriver;
  hostCores: number;
  pidsMax: number;
  /** CPU cap while starting: null = uncapped, a number = that fraction of a core, 'off' = the normal cap */
  startupBoost: number | null | 'off';
}

export function limitsFor(memoryMb: number, hostCores: number, pidsMax: number) {
  const cpu = cpuForMemory(memoryMb, hostCores);
  return { memoryBytes: memoryMb * 1024 * 1024, cpuQuota: cpu.quota, cpus: cpu.cores, pidsMax };
}

export function createIsolatedLauncher(opts: IsolatedLauncherOptions): Launcher {
  return {
    async prepare(spec: InstanceSpec): Promise<Launch> {
      const limits = limitsFor(spec.memoryMb, opts.hostCores, opts.pidsMax);
      const boost = opts.startupBoost === 'off' ? limits.cpuQuota : opts.startupBoost;
      // both are on the cold-start path and independent: prepare them at the same time
      const [innerResult, groupResult] = await Promise.allSettled([
        opts.base.prepare(spec),
        opts.cgroups.create(spec.instanceId, { ...limits, cpuQuota: boost }),
      ]);
      if (innerResult.status === 'rejected' || groupResult.status === 'rejected') {
        if (innerResult.status === 'fulfilled') await innerResult.value.release();
        if (groupResult.status === 'fulfilled') await groupResult.value.destroy();
        throw innerResult.status === 'rejected' ? innerResult.reason : (groupResult as PromiseRejectedResult).reason;
      }
      const inner = innerResult.value;
      const group = groupResult.value;
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
        memoryBytes: async () => (await group.stats()).memoryCurrentBytes,
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
  };
}
