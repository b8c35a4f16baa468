// The one shape both cgroup drivers (v1 and v2) present to the rest of the platform.
import type { Logger } from '../../core/log.ts';
import type { CgroupFs } from './fs.ts';

export interface CgroupLimits {
  /** hard memory limit in bytes; swap is never allowed on top of it */
  memoryBytes: number;
  /** fraction of one core (0.108 = 10.8 %, 2 = two cores); null = uncapped */
  cpuQuota: number | null;
  /** most processes and threads the group may hold at once */
  pidsMax: number;
  /** allocated cores: pinned to the N cpus holding the fewest groups when the cpuset controller is usable, else ignored */
  cpus?: number;
}

export interface CgroupStats {
  /** CPU time used by every process ever in the group; null when no controller accounts it */
  cpuUsageUs: number | null;
  memoryPeakBytes: number | null;
  memoryCurrentBytes: number | null;
  /** processes the kernel killed because the group hit its memory limit */
  oomKills: number;
  pidsCurrent: number | null;
  /** forks refused because the group was at pids.max (a fork bomb shows here) */
  pidsMaxHits: number;
}

export interface Cgroup {
  readonly name: string;
  /**
   * argv that first moves itself into every hierarchy of this group, then execs `argv`,
   * so the app and everything it forks are inside from their first instruction.
   */
  wrapArgv(argv: string[]): string[];
  /** change the CPU cap of a running group (startup boost: start uncapped, cap when ready) */
  setCpuQuota(fraction: number | null): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** pids of the processes in the group (any hierarchy) */
  pids(): Promise<number[]>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** SIGKILL every process in the group and wait until it is empty */
  killAll(): Promise<void>;
  /** killAll, then remove the group from every hierarchy; safe to call twice */
  destroy(): Promise<void>;
}

export interface CgroupEnforcement {
  cpu: boolean;
  memory: boolean;
  pids: boolean;
  freezer: boolean;
  cpuset: boolean;
}

export interface CgroupProbe {
  enforced: CgroupEnforcement;
  /** one sentence per thing that is not enforced or only partly (for doctor, the start log, the UI) */
  reasons: string[];
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** the parent every group lives under, per hierarchy (for doctor and logs) */
  readonly parentDirs: readonly string[];
  probe(): Promise<CgroupProbe>;
  create(name: string, limits: CgroupLimits): Promise<Cgroup>;
  /** kill and remove every group under the prefix (what a crashed run left behind) */
  reclaimLeftovers(): Promise<{ removed: string[] }>;
  /** reclaimLeftovers, then remove the prefix's own directories (clean stop) */
  dispose(): Promise<void>;
}

export interface CgroupDriverOptions {
  /** where the cgroup filesystems are mounted; default /sys/fs/cgroup */
  root?: string;
  /** name of the parent directory all groups live under; default "cellhost" */
  prefix?: string;
  log?: Logger;
  /** file operations; tests pass one that behaves like cgroupfs over a temp dir */
  fs?: CgroupFs;
}
