// The limits layer: every instance and build in a cgroup of its own (memory with no swap, CPU
// by memory, pids, cpuset, the freezer), v1 or v2, whichever the host runs. Used only when
// memory, CPU and process limits can all be enforced: a partial set would look like limits
// without being them.
import os from 'node:os';
import { createIsolatedBuildLauncher } from '../../builder/launcher.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { createIsolatedLauncher } from '../instances/isolated-launcher.ts';
import { detectCgroupDriver } from '../sandbox/cgroups/detect.ts';
import type { CgroupDriver } from '../sandbox/cgroups/types.ts';
import type { IsolationLayer, LayerProbe } from './layer.ts';

export interface CgroupsLayerOptions {
  /** where the cgroup filesystems are mounted */
  root: string;
  /** the directory every group of this platform lives under */
  prefix: string;
  pidsMax: number;
  /** CPU cap while an instance starts (see createIsolatedLauncher) */
  startupBoost: number | null | 'off';
  /** a build's memory, instead of its plan's */
  buildMemoryMb?: number;
  log: Logger;
}

export function cgroupsLayer(opts: CgroupsLayerOptions): IsolationLayer {
  let probed: Promise<{ probe: LayerProbe; driver: CgroupDriver | null }> | null = null;
  const probeOnce = () => (probed ??= probeCgroups(opts));

  return {
    features: ['cgroups', 'cpu', 'memory', 'pids', 'freezer'],
    probe: async () => (await probeOnce()).probe,
    async start() {
      const { driver: cgroups } = await probeOnce();
      if (!cgroups) throw new Error('cgroups are not supported here');
      try {
        const { removed } = await cgroups.reclaimLeftovers();
        if (removed.length) opts.log.warn('cgroups.reclaimed', { count: removed.length });
      } catch (err) {
        throw new Error(`cgroups unusable: ${describeError(err)}`, { cause: err });
      }
      const hostCores = os.availableParallelism();
      return {
        wrap: (base) => createIsolatedLauncher({ base, cgroups, hostCores, pidsMax: opts.pidsMax, startupBoost: opts.startupBoost }),
        wrapBuild: (base) =>
          createIsolatedBuildLauncher({ base, cgroups, hostCores, hostMemoryMb: Math.floor(os.totalmem() / 1024 / 1024), memoryMb: opts.buildMemoryMb }),
        dispose: () => cgroups.dispose(),
      };
    },
  };
}

async function probeCgroups(opts: CgroupsLayerOptions): Promise<{ probe: LayerProbe; driver: CgroupDriver | null }> {
  try {
    const driver = await detectCgroupDriver({ root: opts.root, prefix: opts.prefix, log: opts.log });
    const { enforced, reasons } = await driver.probe();
    const limits = enforced.memory && enforced.cpu && enforced.pids;
    if (!limits) reasons.push(`cgroup v${driver.version} limits are not all available: memory, CPU and process limits are not enforced`);
    const features = { cgroups: limits, cpu: enforced.cpu, memory: enforced.memory, pids: enforced.pids, freezer: enforced.freezer };
    return { probe: { supported: limits, features, reasons }, driver: limits ? driver : null };
  } catch (err) {
    return { probe: { supported: false, features: {}, reasons: [`cgroups unusable: ${describeError(err)}`] }, driver: null };
  }
}
