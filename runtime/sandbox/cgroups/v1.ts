// cgroup v1: one hierarchy per controller, each group a directory in every one of them. What is
// the same in v2 (creating, reclaiming, freezing, killing, removing a group) is in driver.ts.
import { join } from 'node:path';
import { CFS_PERIOD_US, toQuotaMicros } from './cpu.ts';
import { createCgroupDriver, driverContext, type GroupControls, type PickCpus, type VersionSetup } from './driver.ts';
import { errnoOf, parseNumber, probeGroup, probeGroupName, readKeyed, readOptional, writeControl, type CgroupFs } from './fs.ts';
import type { Logger } from '../../core/log.ts';
import type { CgroupDriver, CgroupDriverOptions, CgroupLimits, CgroupStats } from './types.ts';

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

// The kernel counts the freezing conditions in effect with one static key (freezer_active, since
// Linux 6.1): when the count goes from 0 to 1 or back, it rewrites its own code at every place the
// key is tested. That is what a freeze or a thaw costs when no other group is frozen: measured
// on a 2-core AMD EPYC VM with Linux 6.18, 2.4 ms of CPU per write of freezer.state (perf: all of
// it in the text patching), against 0.2 ms while another group stays frozen. So the first freeze
// makes one empty group, frozen for as long as the platform runs: the count never drops to 0, and
// every later freeze and thaw only counts. cgroup v2's freezer keeps no such key.
const FREEZER_PIN = 'freezer-pin';

interface Setup extends VersionSetup {
  /** controller → the prefix directory in its hierarchy */
  byController: Map<Controller, string>;
  hasMemsw: boolean;
  /** what the prefix's cpuset holds, copied to each group (a v1 cpuset group starts empty) */
  cpusetCpus: string;
  cpusetMems: string;
  /** makes the frozen pin group once (FREEZER_PIN); a failure only costs the speed */
  pinFreezer(): Promise<void>;
  /** thaws and removes it (a clean stop) */
  unpinFreezer(): Promise<void>;
}

export function createCgroupV1Driver(opts: CgroupDriverOptions = {}): CgroupDriver {
  const ctx = driverContext(opts);
  const { fs, root, prefix } = ctx;
  return createCgroupDriver<Setup>(ctx, {
    version: 1,
    parentDirs: CONTROLLERS.map((c) => join(root, c, prefix)),
    describeRoot: `cgroup v1 hierarchy under ${root}`,
    prepare: () => prepareParents(fs, root, prefix, ctx.log),
    enforced(setup) {
      const has = (c: Controller) => setup.byController.has(c);
      return { cpu: has('cpu'), memory: has('memory'), pids: has('pids'), freezer: has('freezer'), cpuset: has('cpuset') };
    },
    dirsOf(setup, name) {
      const dirs = new Map<Controller, string>();
      for (const [c, parent] of setup.byController) dirs.set(c, join(parent, name));
      return dirs;
    },
    applyLimits: (setup, dirs, limits, pickCpus) => applyLimits(fs, dirs as Map<Controller, string>, setup, limits, pickCpus),
    controls: (setup, _name, dirs) => groupControls(fs, dirs as Map<Controller, string>, setup),
    release: (setup) => setup.unpinFreezer(),
  });
}

/** the frozen pin group's pin and unpin (FREEZER_PIN) under the freezer hierarchy's prefix dir */
function freezerPin(fs: CgroupFs, parent: string | undefined, log: Logger): Pick<Setup, 'pinFreezer' | 'unpinFreezer'> {
  let pinned: Promise<void> | null = null;
  const dir = parent ? join(parent, FREEZER_PIN) : null;
  return {
    pinFreezer() {
      if (!dir) return Promise.resolve();
      pinned ??= (async () => {
        try {
          await fs.mkdir(dir);
        } catch (err) {
          if (errnoOf(err) !== 'EEXIST') throw err;
        }
        await fs.writeText(join(dir, 'freezer.state'), 'FROZEN');
      })().catch((err: unknown) => {
        log.warn('cgroup.freezer_pin_failed', { dir, error: errnoOf(err) ?? String(err) });
      });
      return pinned;
    },
    async unpinFreezer() {
      if (!dir || !pinned) return;
      await pinned;
      pinned = null;
      try {
        await fs.writeText(join(dir, 'freezer.state'), 'THAWED');
        await fs.rmdir(dir);
      } catch (err) {
        // reclaimLeftovers removes it next
        if (errnoOf(err) !== 'ENOENT') log.warn('cgroup.freezer_unpin_failed', { dir, error: errnoOf(err) ?? String(err) });
      }
    },
  };
}

async function prepareParents(fs: CgroupFs, root: string, prefix: string, log: Logger): Promise<Setup> {
  const byController = new Map<Controller, string>();
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
    byController.set(c, parent);
  }
  const memory = byController.get('memory');
  const hasMemsw = memory ? await fs.exists(join(memory, 'memory.memsw.limit_in_bytes')) : false;
  if (memory && !hasMemsw) reasons.push('memory: memory.memsw.limit_in_bytes missing (swap accounting off): swap is not limited');
  if (!byController.has('cpuacct')) reasons.push('cpuacct unavailable: CPU usage is not measured');
  return { parents: [...new Set(byController.values())], byController, reasons, hasMemsw, cpusetCpus, cpusetMems, ...freezerPin(fs, byController.get('freezer'), log) };
}

async function applyLimits(fs: CgroupFs, dirs: Map<Controller, string>, setup: Setup, limits: CgroupLimits, pickCpus: PickCpus): Promise<void> {
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
        const cpus = limits.cpus ? pickCpus(setup.cpusetCpus, limits.cpus) : null;
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

function groupControls(fs: CgroupFs, dirs: Map<Controller, string>, setup: Setup): GroupControls {
  const cpu = dirs.get('cpu');
  const freezer = dirs.get('freezer');
  const readFreezerState = async () => (freezer ? ((await readOptional(fs, join(freezer, 'freezer.state')))?.trim() ?? null) : null);
  return {
    setCpuMax: cpu ? (fraction) => writeControl(fs, join(cpu, 'cpu.cfs_quota_us'), String(toQuotaMicros(fraction) ?? -1)) : undefined,
    freezer: freezer
      ? {
          request: async () => {
            await setup.pinFreezer();
            await writeControl(fs, join(freezer, 'freezer.state'), 'FROZEN');
          },
          isFrozen: async () => (await readFreezerState()) === 'FROZEN',
          thaw: () => writeControl(fs, join(freezer, 'freezer.state'), 'THAWED'),
          details: async () => ({ state: await readFreezerState() }),
        }
      : undefined,

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

    lacking: { cpu: 'the cpu controller is not available', freezer: 'the freezer controller is not available' },
  };
}
