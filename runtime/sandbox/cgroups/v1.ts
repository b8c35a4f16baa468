// cgroup v1: one hierarchy per controller, each group a directory in every one of them.
import { join } from 'node:path';
import { CellhostError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { CFS_PERIOD_US, pickFirstCpus, toQuotaMicros } from './cpu.ts';
import {
  errnoOf,
  nodeCgroupFs,
  parseNumber,
  parsePids,
  probeGroup,
  probeGroupName,
  readKeyed,
  readOptional,
  toCgroupError,
  writeControl,
  type CgroupFs,
} from './fs.ts';
import { assertGroupName, buildJoinArgv, emptyGroup, removeGroupDir, sleep, waitUntil } from './procs.ts';
import type { Cgroup, CgroupDriver, CgroupDriverOptions, CgroupLimits, CgroupProbe, CgroupStats } from './types.ts';

// Join order: freezer first, so a freeze during killAll also holds a wrapper that is mid-join.
const CONTROLLERS = ['freezer', 'pids', 'memory', 'cpu', 'cpuacct', 'cpuset'] as const;
type Controller = (typeof CONTROLLERS)[number];

// A file that exists in a non-root group only when the controller is really there.
const MARKER: Record<Controller, string> = {
  freezer: 'freezer.state',
  pids: 'pids.max',
  memory: 'memory.limit_in_bytes',
  cpu: 'cpu.cfs_quota_us',
  cpuacct: 'cpuacct.usage',
  cpuset: 'cpuset.cpus',
};

const FREEZE_SETTLE_MS = 1_000;

/** what a probe group writes per controller: the kind of write the platform makes to each */
function probeLimits(c: Controller, cpusetCpus: string, cpusetMems: string): [string, string][] {
  switch (c) {
    case 'freezer':
      return [['freezer.state', 'THAWED']];
    case 'pids':
      return [['pids.max', 'max']];
    case 'memory':
      return [['memory.limit_in_bytes', String(256 * 1024 * 1024)]];
    case 'cpu':
      return [['cpu.cfs_quota_us', String(CFS_PERIOD_US)]];
    case 'cpuacct':
      return [];
    case 'cpuset':
      return [
        ['cpuset.mems', cpusetMems],
        ['cpuset.cpus', cpusetCpus],
      ];
  }
}

interface Setup {
  /** controller → the prefix directory in its hierarchy */
  parents: Map<Controller, string>;
  reasons: string[];
  hasMemsw: boolean;
  /** what the prefix's cpuset holds, copied to each group (a v1 cpuset group starts empty) */
  cpusetCpus: string;
  cpusetMems: string;
}

export function createCgroupV1Driver(opts: CgroupDriverOptions = {}): CgroupDriver {
  const root = opts.root ?? '/sys/fs/cgroup';
  const prefix = opts.prefix ?? 'cellhost';
  const log = opts.log ?? silentLogger;
  const fs = opts.fs ?? nodeCgroupFs;
  assertGroupName(prefix, 'cgroup prefix');

  let setupPromise: Promise<Setup> | null = null;
  const ensureSetup = () =>
    (setupPromise ??= prepareParents(fs, root, prefix).catch((err: unknown) => {
      setupPromise = null; // an unexpected failure (not a missing controller) may pass; try again next time
      throw err;
    }));

  function uniqueDirs(dirs: Map<Controller, string>): string[] {
    return [...new Set(dirs.values())];
  }

  async function listLeftovers(setup: Setup): Promise<string[]> {
    // leaf-first relative paths, in any hierarchy (a crash can leave a group in some of them only)
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
    for (const parent of uniqueDirs(setup.parents)) await walk(parent, '');
    return [...found].sort((a, b) => b.split('/').length - a.split('/').length);
  }

  const driver: CgroupDriver = {
    version: 1,
    get parentDirs() {
      return CONTROLLERS.map((c) => join(root, c, prefix));
    },

    async probe(): Promise<CgroupProbe> {
      const setup = await ensureSetup();
      const has = (c: Controller) => setup.parents.has(c);
      return {
        enforced: { cpu: has('cpu'), memory: has('memory'), pids: has('pids'), freezer: has('freezer'), cpuset: has('cpuset') },
        reasons: [...setup.reasons],
      };
    },

    async create(name: string, limits: CgroupLimits): Promise<Cgroup> {
      assertGroupName(name);
      const setup = await ensureSetup();
      if (setup.parents.size === 0) {
        throw new CellhostError('ERR_CGROUP_FAILED', `no usable cgroup v1 hierarchy under ${root}: ${setup.reasons.join('; ')}`, {
          details: { root, reasons: setup.reasons },
        });
      }
      const dirs = new Map<Controller, string>();
      for (const [c, parent] of setup.parents) dirs.set(c, join(parent, name));
      const made: string[] = [];
      try {
        // hierarchies are independent: make and limit them concurrently (this is on the cold-start path)
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
        await applyLimits(fs, dirs, setup, limits);
      } catch (err) {
        for (const dir of made.reverse()) await fs.rmdir(dir).catch(() => undefined);
        throw err;
      }
      log.debug('cgroup.created', { name, version: 1, memoryBytes: limits.memoryBytes, cpuQuota: limits.cpuQuota, pidsMax: limits.pidsMax });
      return openGroup(fs, name, dirs);
    },

    async reclaimLeftovers() {
      const setup = await ensureSetup();
      const removed: string[] = [];
      for (const rel of await listLeftovers(setup)) {
        const dirs = new Map<Controller, string>();
        for (const [c, parent] of setup.parents) {
          const dir = join(parent, rel);
          if (await fs.exists(dir)) dirs.set(c, dir);
        }
        if (dirs.size === 0) continue;
        const group = openGroup(fs, rel, dirs);
        const pids = await group.pids();
        await group.destroy();
        log.info('cgroup.leftover_reclaimed', { name: rel, killed: pids.length });
        removed.push(rel);
      }
      return { removed };
    },

    async dispose() {
      const setup = await ensureSetup();
      await driver.reclaimLeftovers();
      for (const parent of uniqueDirs(setup.parents)) {
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

async function prepareParents(fs: CgroupFs, root: string, prefix: string): Promise<Setup> {
  const parents = new Map<Controller, string>();
  const reasons: string[] = [];
  let cpusetCpus = '';
  let cpusetMems = '';
  for (const c of CONTROLLERS) {
    const mount = join(root, c);
    if (!(await fs.exists(join(mount, 'cgroup.procs')))) {
      reasons.push(`${c}: no cgroup v1 hierarchy at ${mount}`);
      continue;
    }
    // cpu and cpuacct are often co-mounted (cpu → cpu,cpuacct): one directory serves both
    const parent = join(await fs.realpath(mount), prefix);
    try {
      await fs.mkdir(parent);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== 'EEXIST') {
        reasons.push(`${c}: cannot create ${parent} (${errno ?? String(err)}): not root, or the hierarchy is read-only`);
        continue;
      }
    }
    if (!(await fs.exists(join(parent, MARKER[c])))) {
      reasons.push(`${c}: ${MARKER[c]} missing in ${parent}: controller not available`);
      continue;
    }
    if (c === 'cpuset') {
      try {
        // a v1 cpuset group starts with no cpus and no mems, and no task may join it until both are set
        cpusetCpus = (await fs.readText(join(parent, 'cpuset.cpus'))).trim();
        cpusetMems = (await fs.readText(join(parent, 'cpuset.mems'))).trim();
        if (!cpusetCpus || !cpusetMems) {
          cpusetCpus = (await fs.readText(join(mount, 'cpuset.cpus'))).trim();
          cpusetMems = (await fs.readText(join(mount, 'cpuset.mems'))).trim();
          await fs.writeText(join(parent, 'cpuset.cpus'), cpusetCpus);
          await fs.writeText(join(parent, 'cpuset.mems'), cpusetMems);
        }
      } catch (err) {
        reasons.push(`cpuset: cannot give ${parent} cpus and mems (${errnoOf(err) ?? String(err)})`);
        continue;
      }
    }
    const refused = await probeGroup(fs, parent, probeGroupName(c), probeLimits(c, cpusetCpus, cpusetMems));
    if (refused) {
      reasons.push(`${c}: ${refused}: this user may not make groups there (another user's cellhost made it, or not root)`);
      continue;
    }
    parents.set(c, parent);
  }
  const memory = parents.get('memory');
  const hasMemsw = memory ? await fs.exists(join(memory, 'memory.memsw.limit_in_bytes')) : false;
  if (memory && !hasMemsw) reasons.push('memory: memory.memsw.limit_in_bytes missing (swap accounting off): swap is not limited');
  if (!parents.has('cpuacct')) reasons.push('cpuacct unavailable: CPU usage is not measured');
  return { parents, reasons, hasMemsw, cpusetCpus, cpusetMems };
}

async function applyLimits(fs: CgroupFs, dirs: Map<Controller, string>, setup: Setup, limits: CgroupLimits): Promise<void> {
  const memory = dirs.get('memory');
  const pids = dirs.get('pids');
  const cpu = dirs.get('cpu');
  const cpuset = dirs.get('cpuset');
  const results = await Promise.allSettled([
    memory && setMemoryLimit(fs, memory, limits.memoryBytes, setup.hasMemsw),
    pids && writeControl(fs, join(pids, 'pids.max'), String(limits.pidsMax)),
    cpu &&
      (async () => {
        await writeControl(fs, join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
        await writeControl(fs, join(cpu, 'cpu.cfs_quota_us'), String(toQuotaMicros(limits.cpuQuota) ?? -1));
      })(),
    cpuset &&
      (async () => {
        const cpus = limits.cpus ? pickFirstCpus(setup.cpusetCpus, limits.cpus) : null;
        await writeControl(fs, join(cpuset, 'cpuset.mems'), setup.cpusetMems);
        await writeControl(fs, join(cpuset, 'cpuset.cpus'), cpus ?? setup.cpusetCpus);
      })(),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

// The kernel keeps memory.limit_in_bytes ≤ memory.memsw.limit_in_bytes at every step, so the
// order depends on direction: lowering moves the limit first, raising moves memsw first.
async function setMemoryLimit(fs: CgroupFs, dir: string, bytes: number, hasMemsw: boolean): Promise<void> {
  const limitFile = join(dir, 'memory.limit_in_bytes');
  const memswFile = join(dir, 'memory.memsw.limit_in_bytes');
  if (!hasMemsw) return writeControl(fs, limitFile, String(bytes));
  const memsw = parseNumber(await readOptional(fs, memswFile)) ?? Number.POSITIVE_INFINITY;
  if (bytes <= memsw) {
    await writeControl(fs, limitFile, String(bytes));
    await writeControl(fs, memswFile, String(bytes));
  } else {
    await writeControl(fs, memswFile, String(bytes));
    await writeControl(fs, limitFile, String(bytes));
  }
}

function openGroup(fs: CgroupFs, name: string, dirs: Map<Controller, string>): Cgroup {
  const joinDirs = [...new Set(dirs.values())];
  const freezer = dirs.get('freezer');
  let destroyed: Promise<void> | null = null;

  async function listPids(): Promise<number[]> {
    const lists = await Promise.all(joinDirs.map((dir) => readOptional(fs, join(dir, 'cgroup.procs'))));
    return [...new Set(lists.flatMap(parsePids))];
  }

  async function readFreezerState(): Promise<string | null> {
    return freezer ? ((await readOptional(fs, join(freezer, 'freezer.state')))?.trim() ?? null) : null;
  }

  async function tryFreeze(): Promise<boolean> {
    if (!freezer) return false;
    await writeControl(fs, join(freezer, 'freezer.state'), 'FROZEN');
    // FREEZING can persist while a task sleeps uninterruptibly; callers decide what that means
    return waitUntil(async () => (await readFreezerState()) === 'FROZEN', FREEZE_SETTLE_MS);
  }

  async function thaw(): Promise<void> {
    if (freezer) await writeControl(fs, join(freezer, 'freezer.state'), 'THAWED');
  }

  async function killAll(): Promise<void> {
    if ((await listPids()).length === 0) return;
    // a throttled task freezes and dies only when next scheduled, up to a CFS period away: uncap first
    const cpu = dirs.get('cpu');
    if (cpu) await writeControl(fs, join(cpu, 'cpu.cfs_quota_us'), '-1');
    const { remaining } = await emptyGroup({ listPids, freeze: freezer ? tryFreeze : undefined, thaw: freezer ? thaw : undefined });
    if (remaining.length > 0) {
      throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: ${remaining.length} process(es) survived SIGKILL`, {
        details: { name, pids: remaining },
      });
    }
  }

  async function removeDirs(): Promise<void> {
    await Promise.all(joinDirs.map(removeDir));
  }

  const removeDir = (dir: string) => removeGroupDir(fs, dir, killAll);

  return {
    name,
    wrapArgv: (argv) => buildJoinArgv(joinDirs.map((d) => join(d, 'cgroup.procs')), argv),

    async setCpuQuota(fraction) {
      const cpu = dirs.get('cpu');
      if (!cpu) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: the cpu controller is not available`, { details: { name } });
      await writeControl(fs, join(cpu, 'cpu.cfs_quota_us'), String(toQuotaMicros(fraction) ?? -1));
    },

    async stats(): Promise<CgroupStats> {
      const cpuacct = dirs.get('cpuacct');
      const memory = dirs.get('memory');
      const pids = dirs.get('pids');
      const read = (dir: string | undefined, file: string) => (dir ? readOptional(fs, join(dir, file)) : Promise.resolve(null));
      const [usage, peak, current, oom, pidsCurrent, pidsEvents] = await Promise.all([
        read(cpuacct, 'cpuacct.usage'),
        read(memory, 'memory.max_usage_in_bytes'),
        read(memory, 'memory.usage_in_bytes'),
        read(memory, 'memory.oom_control'),
        read(pids, 'pids.current'),
        read(pids, 'pids.events'),
      ]);
      const usageNs = parseNumber(usage);
      return {
        cpuUsageUs: usageNs === null ? null : Math.round(usageNs / 1000),
        memoryPeakBytes: parseNumber(peak),
        memoryCurrentBytes: parseNumber(current),
        oomKills: readKeyed(oom, 'oom_kill') ?? 0,
        pidsCurrent: parseNumber(pidsCurrent),
        pidsMaxHits: readKeyed(pidsEvents, 'max') ?? 0,
      };
    },

    pids: listPids,

    async freeze() {
      if (!freezer) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: the freezer controller is not available`, { details: { name } });
      if (!(await tryFreeze())) {
        throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: did not freeze within ${FREEZE_SETTLE_MS} ms`, {
          details: { name, state: await readFreezerState() },
        });
      }
    },

    thaw,
    killAll,

    destroy() {
      destroyed ??= (async () => {
        await killAll();
        await removeDirs();
      })();
      // a failed destroy may be retried
      destroyed.catch(() => {
        destroyed = null;
      });
      return destroyed;
    },
  };
}
