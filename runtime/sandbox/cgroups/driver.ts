// What the two cgroup drivers share: setting up once (and again after an unexpected failure),
// creating a group in every hierarchy with a rollback, reclaiming what a crashed run left (leaf
// first), and a group's life: joining it, freezing, killing everything in it, removing it. A
// version (v1.ts, v2.ts) says only what differs: where a group's directories are, how its limits
// are written, and how its CPU cap, freezer, kill and statistics are read and written.
import { join } from 'node:path';
import { CellhostError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { errnoOf, nodeCgroupFs, parsePids, readOptional, toCgroupError, type CgroupFs } from './fs.ts';
import { createCpuPlacer, type CpuPlacement } from './cpu.ts';
import { assertGroupName, buildJoinArgv, emptyGroup, removeGroupDir, waitUntil } from './procs.ts';
import type { Cgroup, CgroupDriver, CgroupDriverOptions, CgroupEnforcement, CgroupLimits, CgroupProbe, CgroupStats } from './types.ts';

const FREEZE_SETTLE_MS = 1_000;

/** the driver's options with their defaults */
export interface DriverContext {
  root: string;
  prefix: string;
  log: Logger;
  fs: CgroupFs;
}

export function driverContext(opts: CgroupDriverOptions): DriverContext {
  const ctx = { root: opts.root ?? '/sys/fs/cgroup', prefix: opts.prefix ?? 'cellhost', log: opts.log ?? silentLogger, fs: opts.fs ?? nodeCgroupFs };
  assertGroupName(ctx.prefix, 'cgroup prefix');
  return ctx;
}

/** what a version found when it prepared the prefix's directories */
export interface VersionSetup {
  /** the directories groups live under, one per hierarchy; empty when none is usable */
  parents: readonly string[];
  /** one sentence per thing that is not enforced or only partly */
  reasons: string[];
}

/** a group's directory in each hierarchy (v1: per controller, co-mounted ones sharing one; v2: one) */
export type GroupDirs = ReadonlyMap<string, string>;

export interface GroupFreezer {
  /** ask the kernel to freeze the group; it settles a moment later */
  request(): Promise<void>;
  isFrozen(): Promise<boolean>;
  thaw(): Promise<void>;
  /** what the error of a freeze that did not settle adds to its details */
  details?(): Promise<Record<string, unknown>>;
}

/** how one version reads and writes a group's controls; absent members are not available there */
export interface GroupControls {
  /** the CPU cap as a fraction of a core; null uncaps */
  setCpuMax?(fraction: number | null): Promise<void>;
  freezer?: GroupFreezer;
  /** the kernel kills every process in the group, including ones forked meanwhile */
  killByKernel?(): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** the words of the error when setCpuQuota or freeze finds its control missing */
  lacking: { cpu: string; freezer: string };
}

export interface CgroupVersion<S extends VersionSetup> {
  version: 1 | 2;
  parentDirs: readonly string[];
  /** names the hierarchy in the error of a create without one: "cgroup v2 tree at /sys/fs/cgroup" */
  describeRoot: string;
  /** make the prefix's directories and find what works; failures of a controller are reasons */
  prepare(): Promise<S>;
  enforced(setup: S): CgroupEnforcement;
  dirsOf(setup: S, name: string): GroupDirs;
  /** `pickCpus` gives the cpus to pin the group to, of those the parent has (a cpuset list) */
  applyLimits(setup: S, dirs: GroupDirs, limits: CgroupLimits, pickCpus: PickCpus): Promise<void>;
  controls(setup: S, name: string, dirs: GroupDirs): GroupControls;
  /** what the version made for itself beside the groups, undone on a clean stop before the groups go */
  release?(setup: S): Promise<void>;
}

/** `count` cpus of the `available` cpuset list for a group; null when there are none */
export type PickCpus = (available: string, count: number) => string | null;

const uniqueDirs = (dirs: GroupDirs) => [...new Set(dirs.values())];

export function createCgroupDriver<S extends VersionSetup>(ctx: DriverContext, v: CgroupVersion<S>): CgroupDriver {
  const { fs, log } = ctx;
  const placer = createCpuPlacer();
  let setupPromise: Promise<S> | null = null;
  const ensureSetup = () =>
    (setupPromise ??= v.prepare().catch((err: unknown) => {
      setupPromise = null; // an unexpected failure (not a missing controller) may pass; try again next time
      throw err;
    }));

  /** relative paths of every group under the parents, in any hierarchy (a crash can leave a group in some of them only), deepest first */
  async function listLeftovers(parents: readonly string[]): Promise<string[]> {
    const found = new Set<string>();
    const walk = async (base: string, rel: string): Promise<void> => {
      let names: string[];
      try {
        names = await fs.listDirs(rel ? join(base, rel) : base);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return;
        throw toCgroupError('list', base, err);
      }
      for (const n of names) {
        const child = rel ? `${rel}/${n}` : n;
        await walk(base, child);
        found.add(child);
      }
    };
    for (const parent of parents) await walk(parent, '');
    return [...found].sort((a, b) => b.split('/').length - a.split('/').length);
  }

  async function existingDirs(dirs: GroupDirs): Promise<GroupDirs> {
    const kept = new Map<string, string>();
    for (const [key, dir] of dirs) if (await fs.exists(dir)) kept.set(key, dir);
    return kept;
  }

  const driver: CgroupDriver = {
    version: v.version,
    parentDirs: v.parentDirs,

    async probe(): Promise<CgroupProbe> {
      const setup = await ensureSetup();
      return { enforced: v.enforced(setup), reasons: [...setup.reasons] };
    },

    async create(name: string, limits: CgroupLimits): Promise<Cgroup> {
      assertGroupName(name);
      const setup = await ensureSetup();
      if (setup.parents.length === 0) {
        throw new CellhostError('ERR_CGROUP_FAILED', `no usable ${v.describeRoot}: ${setup.reasons.join('; ')}`, {
          details: { root: ctx.root, reasons: setup.reasons },
        });
      }
      const dirs = v.dirsOf(setup, name);
      const made: string[] = [];
      // the version asks for its cpus while it writes the limits (v1: of the prefix's cpuset)
      const held = { placement: null as CpuPlacement | null };
      const pickCpus: PickCpus = (available, count) => {
        held.placement?.release();
        held.placement = placer.take(available, count);
        return held.placement?.cpus ?? null;
      };
      try {
        // hierarchies are independent: make them concurrently (this is on the cold-start path)
        const results = await Promise.allSettled(
          uniqueDirs(dirs).map(async (dir) => {
            try {
              await fs.mkdir(dir);
            } catch (err) {
              throw toCgroupError('create', dir, err);
            }
            made.push(dir);
          }),
        );
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        await v.applyLimits(setup, dirs, limits, pickCpus);
      } catch (err) {
        held.placement?.release();
        for (const dir of made.reverse()) await fs.rmdir(dir).catch(() => undefined);
        throw err;
      }
      log.debug('cgroup.created', { name, version: v.version, memoryBytes: limits.memoryBytes, cpuQuota: limits.cpuQuota, pidsMax: limits.pidsMax, cpus: held.placement?.cpus });
      return openGroup(fs, name, dirs, v.controls(setup, name, dirs), held.placement);
    },

    async reclaimLeftovers() {
      const setup = await ensureSetup();
      const removed: string[] = [];
      for (const rel of await listLeftovers(setup.parents)) {
        const dirs = await existingDirs(v.dirsOf(setup, rel));
        if (dirs.size === 0) continue;
        const group = openGroup(fs, rel, dirs, v.controls(setup, rel, dirs));
        const pids = await group.pids();
        await group.destroy();
        log.info('cgroup.leftover_reclaimed', { name: rel, killed: pids.length });
        removed.push(rel);
      }
      return { removed };
    },

    async dispose() {
      const setup = await ensureSetup();
      await v.release?.(setup);
      await driver.reclaimLeftovers();
      for (const parent of setup.parents) {
        try {
          await fs.rmdir(parent);
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT') throw toCgroupError('remove', parent, err);
        }
      }
      setupPromise = null;
    },
  };
  return driver;
}

/** `placement`: its cpus, given back to the placer once the group is gone */
function openGroup(fs: CgroupFs, name: string, dirs: GroupDirs, controls: GroupControls, placement: CpuPlacement | null = null): Cgroup {
  const joinDirs = uniqueDirs(dirs);
  const { freezer } = controls;
  let destroyed: Promise<void> | null = null;

  async function listPids(): Promise<number[]> {
    const lists = await Promise.all(joinDirs.map((dir) => readOptional(fs, join(dir, 'cgroup.procs'))));
    return [...new Set(lists.flatMap(parsePids))];
  }

  async function tryFreeze(): Promise<boolean> {
    if (!freezer) return false;
    await freezer.request();
    // freezing can persist while a task sleeps uninterruptibly; callers decide what that means
    return waitUntil(() => freezer.isFrozen(), FREEZE_SETTLE_MS);
  }

  async function thaw(): Promise<void> {
    await freezer?.thaw();
  }

  async function killAll(): Promise<void> {
    if ((await listPids()).length === 0) return;
    // a throttled task freezes and dies only when next scheduled, up to a CFS period away: uncap first
    await controls.setCpuMax?.(null);
    const { remaining } = await emptyGroup(
      controls.killByKernel
        ? { listPids, killByKernel: controls.killByKernel }
        : { listPids, freeze: freezer ? tryFreeze : undefined, thaw: freezer ? thaw : undefined },
    );
    if (remaining.length > 0) {
      throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: ${remaining.length} process(es) survived SIGKILL`, {
        details: { name, pids: remaining },
      });
    }
  }

  return {
    name,
    wrapArgv: (argv) => buildJoinArgv(joinDirs.map((d) => join(d, 'cgroup.procs')), argv),

    async setCpuQuota(fraction) {
      if (!controls.setCpuMax) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: ${controls.lacking.cpu}`, { details: { name } });
      await controls.setCpuMax(fraction);
    },

    stats: () => controls.stats(),
    pids: listPids,

    async freeze() {
      if (!freezer) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: ${controls.lacking.freezer}`, { details: { name } });
      if (!(await tryFreeze())) {
        throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: did not freeze within ${FREEZE_SETTLE_MS} ms`, {
          details: { name, ...(await freezer.details?.()) },
        });
      }
    },

    thaw,
    killAll,

    destroy() {
      destroyed ??= (async () => {
        await killAll();
        await Promise.all(joinDirs.map((dir) => removeGroupDir(fs, dir, killAll)));
        placement?.release();
      })();
      // a failed destroy may be retried
      destroyed.catch(() => {
        destroyed = null;
      });
      return destroyed;
    },
  };
}
