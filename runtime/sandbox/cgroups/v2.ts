// cgroup v2: one tree. Controllers reach a group only when every ancestor enables them in
// cgroup.subtree_control (top-down), and a cgroup other than the root may not hold processes and
// enable controllers for its children at once (no internal processes): our prefix dir holds none,
// and a root that is itself a non-root cgroup (a container's, or a systemd unit's delegated to us)
// has its processes moved into a leaf beside the prefix first.
import { join } from 'node:path';
import { CellhostError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
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
    (setupPromise ??= prepareParent(fs, root, prefix, log).catch((err: unknown) => {
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

/**
 * Enable what we need in `dir`'s cgroup.subtree_control, writing only what is missing. One write
 * enables all of its controllers or none, so after a refusal each is tried alone: a controller the
 * kernel will not enable here (cpu, while a realtime task sits in a non-root cgroup on a kernel
 * with RT group scheduling) must not cost the others. Returns what is enabled, and why not the rest.
 */
async function enableControllers(fs: CgroupFs, dir: string, wanted: Controller[]): Promise<{ enabled: Set<string>; refused: string[] }> {
  const file = join(dir, 'cgroup.subtree_control');
  const current = parseControllers(await readOptional(fs, file));
  const missing = wanted.filter((c) => !current.has(c));
  const refused: string[] = [];
  if (missing.length > 0) {
    try {
      await fs.writeText(file, missing.map((c) => `+${c}`).join(' '));
    } catch {
      for (const c of missing) {
        try {
          await fs.writeText(file, `+${c}`);
        } catch (err) {
          refused.push(`${c} (${errnoOf(err) ?? String(err)})`);
        }
      }
    }
  }
  return { enabled: parseControllers(await readOptional(fs, file)), refused };
}

/** how often the processes of a non-root root are moved before giving up (they may fork meanwhile) */
const VACATE_ROUNDS = 20;

/**
 * A root that is not the tree's root (it has cgroup.type, which the real root lacks) may not enable
 * controllers for its children while it holds processes: move them all into `leaf`. The real root
 * is exempt, and is left alone. Returns why it could not, or null.
 */
async function vacateRoot(fs: CgroupFs, root: string, leaf: string, log: Logger): Promise<string | null> {
  if (!(await fs.exists(join(root, 'cgroup.type')))) return null;
  const procsFile = join(root, 'cgroup.procs');
  let pids = parsePids(await readOptional(fs, procsFile));
  if (pids.length === 0) return null;
  try {
    await fs.mkdir(leaf);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') return `${root} holds processes and ${leaf} cannot be created for them (${errnoOf(err) ?? String(err)})`;
  }
  for (let round = 0; round < VACATE_ROUNDS && pids.length > 0; round++) {
    for (const pid of pids) {
      try {
        await fs.writeText(join(leaf, 'cgroup.procs'), String(pid));
      } catch (err) {
        // a process that exited meanwhile is gone from the root anyway
        if (errnoOf(err) !== 'ESRCH') return `${root} holds processes that cannot be moved to ${leaf} (pid ${pid}: ${errnoOf(err) ?? String(err)})`;
      }
    }
    log.info('cgroup.root_vacated', { root, leaf, moved: pids.length });
    pids = parsePids(await readOptional(fs, procsFile));
  }
  return pids.length > 0 ? `${root} still holds processes after moving them to ${leaf} ${VACATE_ROUNDS} times (a fork storm?)` : null;
}

async function prepareParent(fs: CgroupFs, root: string, prefix: string, log: Logger): Promise<Setup> {
  const parent = join(root, prefix);
  const reasons: string[] = [];
  const none: Setup = { parent: null, enabled: new Set(), hasFreeze: false, hasKill: false, hasSwap: false, parentCpus: '', reasons };
  const available = parseControllers(await readOptional(fs, join(root, 'cgroup.controllers')));
  if (available.size === 0 && !(await fs.exists(join(root, 'cgroup.controllers')))) {
    reasons.push(`${root} is not a cgroup v2 mount`);
    return none;
  }
  for (const c of WANTED) if (!available.has(c)) reasons.push(`${c}: controller not offered at ${root}`);
  const wanted = WANTED.filter((c) => available.has(c));

  // the leaf's name starts with "_", which no prefix may (assertGroupName) and no interface file does
  const vacated = await vacateRoot(fs, root, join(root, `_${prefix}-platform`), log);
  if (vacated) reasons.push(vacated);
  const atRoot = await enableControllers(fs, root, wanted);
  if (atRoot.refused.length > 0) reasons.push(`cannot enable ${atRoot.refused.join(', ')} in ${root}/cgroup.subtree_control`);
  try {
    await fs.mkdir(parent);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') {
      reasons.push(`cannot create ${parent} (${errnoOf(err) ?? String(err)}): not root, or the tree is read-only`);
      return none;
    }
  }
  const passable = wanted.filter((c) => atRoot.enabled.has(c));
  const { enabled, refused } = await enableControllers(fs, parent, passable);
  if (refused.length > 0) reasons.push(`cannot enable ${refused.join(', ')} in ${parent}/cgroup.subtree_control`);
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
