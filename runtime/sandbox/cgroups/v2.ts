// cgroup v2: one tree. Controllers reach a group only when every ancestor enables them in
// cgroup.subtree_control, and processes may live only in leaves (our prefix dir holds none).
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

const WANTED = ['cpu', 'memory', 'pids', 'cpuset'] as const;
type Controller = (typeof WANTED)[number];

const FREEZE_SETTLE_MS = 1_000;

interface Setup {
  parent: string | null;
  enabled: Set<Controller>;
  hasFreeze: boolean;
  hasKill: boolean;
  hasSwap: boolean;
  parentCpus: string;
  reasons: string[];
}

function parseControllers(text: string | null): Set<string> {
  return new Set((text ?? '').split(/\s+/).map((t) => t.replace(/^\+/, '')).filter(Boolean));
}

export function createCgroupV2Driver(opts: CgroupDriverOptions = {}): CgroupDriver {
  const root = opts.root ?? '/sys/fs/cgroup';
  const prefix = opts.prefix ?? 'cellhost';
  const log = opts.log ?? silentLogger;
  const fs = opts.fs ?? nodeCgroupFs;
  assertGroupName(prefix, 'cgroup prefix');
  const parentDir = join(root, prefix);

  let setupPromise: Promise<Setup> | null = null;
  const ensureSetup = () =>
    (setupPromise ??= prepareParent(fs, root, parentDir).catch((err: unknown) => {
      setupPromise = null; // an unexpected failure (not a missing controller) may pass; try again next time
      throw err;
    }));

  async function listLeftovers(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let names: string[];
      try {
        names = await fs.listDirs(rel ? join(parentDir, rel) : parentDir);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return;
        throw toCgroupError('list', parentDir, err);
      }
      for (const n of names) {
        const child = rel ? `${rel}/${n}` : n;
        await walk(child);
        found.push(child); // after its children: leaf-first
      }
    };
    await walk('');
    return found;
  }

  const driver: CgroupDriver = {
    version: 2,
    parentDirs: [parentDir],

    async probe(): Promise<CgroupProbe> {
      const setup = await ensureSetup();
      const has = (c: Controller) => setup.parent !== null && setup.enabled.has(c);
      return {
        enforced: { cpu: has('cpu'), memory: has('memory'), pids: has('pids'), freezer: setup.parent !== null && setup.hasFreeze, cpuset: has('cpuset') },
        reasons: [...setup.reasons],
      };
    },

    async create(name: string, limits: CgroupLimits): Promise<Cgroup> {
      assertGroupName(name);
      const setup = await ensureSetup();
      if (setup.parent === null) {
        throw new CellhostError('ERR_CGROUP_FAILED', `no usable cgroup v2 tree at ${root}: ${setup.reasons.join('; ')}`, {
          details: { root, reasons: setup.reasons },
        });
      }
      const dir = join(setup.parent, name);
      try {
        await fs.mkdir(dir);
      } catch (err) {
        throw toCgroupError('create', dir, err);
      }
      try {
        await applyLimits(fs, dir, setup, limits);
      } catch (err) {
        await fs.rmdir(dir).catch(() => undefined);
        throw err;
      }
      log.debug('cgroup.created', { name, version: 2, memoryBytes: limits.memoryBytes, cpuQuota: limits.cpuQuota, pidsMax: limits.pidsMax });
      return openGroup(fs, name, dir, setup);
    },

    async reclaimLeftovers() {
      const setup = await ensureSetup();
      const removed: string[] = [];
      if (setup.parent === null) return { removed };
      for (const rel of await listLeftovers()) {
        const group = openGroup(fs, rel, join(setup.parent, rel), setup);
        const pids = await group.pids();
        await group.destroy();
        log.info('cgroup.leftover_reclaimed', { name: rel, killed: pids.length });
        removed.push(rel);
      }
      return { removed };
    },

    async dispose() {
      await driver.reclaimLeftovers();
      try {
        await fs.rmdir(parentDir);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw toCgroupError('remove', parentDir, err);
      }
      setupPromise = null;
    },
  };
  return driver;
}

/** enable what we need in `dir`'s cgroup.subtree_control, writing only what is missing */
async function enableControllers(fs: CgroupFs, dir: string, wanted: Controller[]): Promise<Set<string>> {
  const file = join(dir, 'cgroup.subtree_control');
  const current = parseControllers(await readOptional(fs, file));
  const missing = wanted.filter((c) => !current.has(c));
  if (missing.length > 0) await writeControl(fs, file, missing.map((c) => `+${c}`).join(' '));
  return parseControllers(await readOptional(fs, file));
}

async function prepareParent(fs: CgroupFs, root: string, parent: string): Promise<Setup> {
  const reasons: string[] = [];
  const none: Setup = { parent: null, enabled: new Set(), hasFreeze: false, hasKill: false, hasSwap: false, parentCpus: '', reasons };
  const available = parseControllers(await readOptional(fs, join(root, 'cgroup.controllers')));
  if (available.size === 0 && !(await fs.exists(join(root, 'cgroup.controllers')))) {
    reasons.push(`${root} is not a cgroup v2 mount`);
    return none;
  }
  for (const c of WANTED) if (!available.has(c)) reasons.push(`${c}: controller not offered at ${root}`);
  const wanted = WANTED.filter((c) => available.has(c));

  let atRoot: Set<string>;
  try {
    atRoot = await enableControllers(fs, root, wanted);
  } catch (err) {
    // EBUSY here means the root holds processes itself (a container's own cgroup): move them to a leaf first
    reasons.push(`cannot enable ${wanted.join(' ')} in ${root}/cgroup.subtree_control (${errnoOf(err) ?? String(err)})`);
    atRoot = parseControllers(await readOptional(fs, join(root, 'cgroup.subtree_control')));
  }
  try {
    await fs.mkdir(parent);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') {
      reasons.push(`cannot create ${parent} (${errnoOf(err) ?? String(err)}): not root, or the tree is read-only`);
      return none;
    }
  }
  const passable = wanted.filter((c) => atRoot.has(c));
  let enabled: Set<string>;
  try {
    enabled = await enableControllers(fs, parent, passable);
  } catch (err) {
    reasons.push(`cannot enable ${passable.join(' ')} in ${parent}/cgroup.subtree_control (${errnoOf(err) ?? String(err)})`);
    enabled = parseControllers(await readOptional(fs, join(parent, 'cgroup.subtree_control')));
  }
  for (const c of passable) if (!enabled.has(c)) reasons.push(`${c}: not enabled for groups under ${parent}`);

  let hasFreeze = await fs.exists(join(parent, 'cgroup.freeze'));
  const hasKill = await fs.exists(join(parent, 'cgroup.kill'));
  const hasSwap = await fs.exists(join(parent, 'memory.swap.max'));
  if (!hasFreeze) reasons.push('freezer: cgroup.freeze missing (kernel older than 5.2)');
  // a parent made by another user's (root's) run is there but not ours: try what groups need
  const probes: [string, [string, string][]][] = [
    ['memory', [['memory.max', String(256 * 1024 * 1024)]]],
    ['pids', [['pids.max', 'max']]],
    ['cpu', [['cpu.max', `max ${CFS_PERIOD_US}`]]],
    ['cpuset', []],
  ];
  for (const [c, limits] of probes) {
    if (!enabled.has(c)) continue;
    const refused = await probeGroup(fs, parent, probeGroupName(c), limits);
    if (refused) {
      enabled.delete(c);
      reasons.push(`${c}: ${refused}: this user may not make groups there (another user's cellhost made it, or not root)`);
    }
  }
  if (hasFreeze) {
    const refused = await probeGroup(fs, parent, probeGroupName('freezer'), [['cgroup.freeze', '0']]);
    if (refused) {
      hasFreeze = false;
      reasons.push(`freezer: ${refused}`);
    }
  }
  if (!hasKill) reasons.push('cgroup.kill missing (kernel older than 5.14): killing a group falls back to freeze and kill');
  if (enabled.has('memory') && !hasSwap) reasons.push('memory: memory.swap.max missing (swap accounting off): swap is not limited');
  const parentCpus = ((await readOptional(fs, join(parent, 'cpuset.cpus.effective'))) ?? '').trim();
  return {
    parent,
    enabled: new Set(WANTED.filter((c) => enabled.has(c))),
    hasFreeze,
    hasKill,
    hasSwap,
    parentCpus,
    reasons,
  };
}

async function applyLimits(fs: CgroupFs, dir: string, setup: Setup, limits: CgroupLimits): Promise<void> {
  if (setup.enabled.has('memory')) {
    await writeControl(fs, join(dir, 'memory.max'), String(limits.memoryBytes));
    if (setup.hasSwap) await writeControl(fs, join(dir, 'memory.swap.max'), '0');
    // an OOM kills the whole instance, not one process of it: the supervisor sees one clear death
    if (await fs.exists(join(dir, 'memory.oom.group'))) await writeControl(fs, join(dir, 'memory.oom.group'), '1');
  }
  if (setup.enabled.has('pids')) await writeControl(fs, join(dir, 'pids.max'), String(limits.pidsMax));
  if (setup.enabled.has('cpu')) await writeControl(fs, join(dir, 'cpu.max'), formatCpuMax(limits.cpuQuota));
  if (setup.enabled.has('cpuset') && limits.cpus) {
    const cpus = pickFirstCpus(setup.parentCpus, limits.cpus);
    if (cpus) await writeControl(fs, join(dir, 'cpuset.cpus'), cpus);
  }
}

function formatCpuMax(fraction: number | null): string {
  return `${toQuotaMicros(fraction) ?? 'max'} ${CFS_PERIOD_US}`;
}

function openGroup(fs: CgroupFs, name: string, dir: string, setup: Setup): Cgroup {
  let destroyed: Promise<void> | null = null;
  const file = (f: string) => join(dir, f);

  const listPids = async () => parsePids(await readOptional(fs, file('cgroup.procs')));

  async function tryFreeze(): Promise<boolean> {
    await writeControl(fs, file('cgroup.freeze'), '1');
    return waitUntil(async () => readKeyed(await readOptional(fs, file('cgroup.events')), 'frozen') === 1, FREEZE_SETTLE_MS);
  }
  async function thaw(): Promise<void> {
    if (setup.hasFreeze) await writeControl(fs, file('cgroup.freeze'), '0');
  }

  async function killAll(): Promise<void> {
    if ((await listPids()).length === 0) return;
    // a throttled task dies only when next scheduled, up to a CFS period away: uncap first
    if (setup.enabled.has('cpu')) await writeControl(fs, file('cpu.max'), formatCpuMax(null));
    const { remaining } = await emptyGroup(
      setup.hasKill
        ? { listPids, killByKernel: () => writeControl(fs, file('cgroup.kill'), '1') }
        : { listPids, freeze: setup.hasFreeze ? tryFreeze : undefined, thaw: setup.hasFreeze ? thaw : undefined },
    );
    if (remaining.length > 0) {
      throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: ${remaining.length} process(es) survived SIGKILL`, {
        details: { name, pids: remaining },
      });
    }
  }

  const removeDir = () => removeGroupDir(fs, dir, killAll);

  return {
    name,
    wrapArgv: (argv) => buildJoinArgv([file('cgroup.procs')], argv),

    async setCpuQuota(fraction) {
      if (!setup.enabled.has('cpu')) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: the cpu controller is not enabled`, { details: { name } });
      await writeControl(fs, file('cpu.max'), formatCpuMax(fraction));
    },

    async stats(): Promise<CgroupStats> {
      const [cpuStat, peak, current, events, pidsCurrent, pidsEvents] = await Promise.all(
        ['cpu.stat', 'memory.peak', 'memory.current', 'memory.events', 'pids.current', 'pids.events'].map((f) => readOptional(fs, file(f))),
      );
      return {
        // cpu.stat and its usage_usec exist in every v2 group, even without the cpu controller
        cpuUsageUs: readKeyed(cpuStat, 'usage_usec'),
        memoryPeakBytes: parseNumber(peak),
        memoryCurrentBytes: parseNumber(current),
        oomKills: readKeyed(events, 'oom_kill') ?? 0,
        pidsCurrent: parseNumber(pidsCurrent),
        pidsMaxHits: readKeyed(pidsEvents, 'max') ?? 0,
      };
    },

    pids: listPids,

    async freeze() {
      if (!setup.hasFreeze) throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: cgroup.freeze is not available`, { details: { name } });
      if (!(await tryFreeze())) {
        throw new CellhostError('ERR_CGROUP_FAILED', `cgroup ${name}: did not freeze within ${FREEZE_SETTLE_MS} ms`, { details: { name } });
      }
    },

    thaw,
    killAll,

    destroy() {
      destroyed ??= (async () => {
        await killAll();
        await removeDir();
      })();
      destroyed.catch(() => {
        destroyed = null;
      });
      return destroyed;
    },
  };
}
