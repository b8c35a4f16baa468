// What this host can enforce, found once at start (and by `cellhost doctor`): each feature is
// used when it works and otherwise named with the reason, never silently dropped.
import os from 'node:os';
import { createDirectBuildLauncher, createIsolatedBuildLauncher, type BuildLauncher } from '../builder/launcher.ts';
import type { Config } from './core/config.ts';
import { describeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { createDirectLauncher, type IsolationReport, type Launcher } from './instances/launcher.ts';
import { createIsolatedLauncher } from './instances/isolated-launcher.ts';
import { detectCgroupDriver } from './sandbox/cgroups/detect.ts';
import type { CgroupDriver } from './sandbox/cgroups/types.ts';

export interface Isolation {
  launcher: Launcher;
  buildLauncher: BuildLauncher;
  cgroups: CgroupDriver | null;
  report: IsolationReport;
  /** remove what isolation set up on the host (cgroup parents); clean stop */
  dispose(): Promise<void>;
}

export async function setUpIsolation(config: Config, log: Logger, opts: { reclaim: boolean }): Promise<Isolation> {
  const reasons: string[] = [];
  const features: Record<string, boolean> = { cgroups: false, cpu: false, memory: false, pids: false, freezer: false, sandbox: false, netns: false };
  let cgroups: CgroupDriver | null = null;

  if (config.isolation === 'off') {
    reasons.push('isolation is off (CELLHOST_ISOLATION=off): apps run as plain children of the platform, without limits');
  } else {
    try {
      const driver = await detectCgroupDriver({ root: config.cgroupRoot, prefix: config.cgroupPrefix, log });
      const probe = await driver.probe();
      Object.assign(features, { cpu: probe.enforced.cpu, memory: probe.enforced.memory, pids: probe.enforced.pids, freezer: probe.enforced.freezer });
      reasons.push(...probe.reasons);
      if (probe.enforced.memory && probe.enforced.cpu && probe.enforced.pids) {
        cgroups = driver;
        features.cgroups = true;
        if (opts.reclaim) {
          const { removed } = await driver.reclaimLeftovers();
          if (removed.length) log.warn('cgroups.reclaimed', { count: removed.length });
        }
      } else {
        reasons.push(`cgroup v${driver.version} limits are not all available: memory, CPU and process limits are not enforced`);
      }
    } catch (err) {
      reasons.push(`cgroups unusable: ${describeError(err)}`);
    }
    reasons.push('filesystem sandbox and network namespaces are not enabled yet: apps run as the platform user on loopback ports with $PORT injected');
  }

  const report: IsolationReport = { features, reasons };
  const base = createDirectLauncher({ runDir: config.paths.run, reasons });
  const launcher = cgroups
    ? createIsolatedLauncher({ base, cgroups, hostCores: os.availableParallelism(), pidsMax: config.pidsMax, startupBoost: config.startupBoost, report })
    : { ...base, report: () => report };
  const baseBuild = createDirectBuildLauncher({ runDir: config.paths.run });
  const buildLauncher = cgroups
    ? createIsolatedBuildLauncher({ base: baseBuild, cgroups, hostCores: os.availableParallelism(), hostMemoryMb: Math.floor(os.totalmem() / 1024 / 1024) })
    : baseBuild;
  return {
    launcher,
    buildLauncher,
    cgroups,
    report,
    dispose: async () => {
      await cgroups?.dispose();
    },
  };
}
