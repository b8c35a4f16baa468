// cgroup v2: one tree. Controllers reach a group only when every ancestor enables them in
// cgroup.subtree_control (top-down), and a cgroup other than the root may not hold processes and
// enable controllers for its children at once (no internal processes): our prefix dir holds none,
// and a root that is itself a non-root cgroup (a container's, or a systemd unit's delegated to us)
// has its processes moved into a leaf beside the prefix first.
import { join } from 'node:path';
import type { Logger } from '../../core/log.ts';
import { CFS_PERIOD_US, toQuotaMicros } from './cpu.ts';
import { createCgroupDriver, driverContext, type GroupControls, type GroupDirs, type PickCpus, type VersionSetup } from './driver.ts';
import { errnoOf, parseNumber, parsePids, probeGroup, probeGroupName, readKeyed, readOptional, writeControl, type CgroupFs } from './fs.ts';
import type { CgroupDriver, CgroupDriverOptions, CgroupLimits, CgroupStats } from './types.ts';

const WANTED = ['cpu', 'memory', 'pids', 'cpuset'] as const;
type Controller = (typeof WANTED)[number];

interface Setup extends VersionSetup {
  enabled: Set<Controller>;
  hasFreeze: boolean;
  hasKill: boolean;
  hasSwap: boolean;
  parentCpus: string;
}

function parseControllers(text: string | null): Set<string> {
  return new Set((text ?? '').split(/\s+/).map((t) => t.replace(/^\+/, '')).filter(Boolean));
}

export function createCgroupV2Driver(opts: CgroupDriverOptions = {}): CgroupDriver {
  const ctx = driverContext(opts);
  const { fs, root, prefix, log } = ctx;
  return createCgroupDriver<Setup>(ctx, {
    version: 2,
    parentDirs: [join(root, prefix)],
    describeRoot: `cgroup v2 tree at ${root}`,
    prepare: () => prepareParent(fs, root, prefix, log),
    enforced(setup) {
      const has = (c: Controller) => setup.parents.length > 0 && setup.enabled.has(c);
      return { cpu: has('cpu'), memory: has('memory'), pids: has('pids'), freezer: setup.parents.length > 0 && setup.hasFreeze, cpuset: has('cpuset') };
    },
    dirsOf: (setup, name) => new Map([['unified', join(setup.parents[0]!, name)]]),
    applyLimits: (setup, dirs, limits, pickCpus) => applyLimits(fs, dirOf(dirs), setup, limits, pickCpus),
    controls: (setup, _name, dirs) => groupControls(fs, dirOf(dirs), setup),
  });
}

const dirOf = (dirs: GroupDirs) => dirs.get('unified')!;

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
  const none: Setup = { parents: [], enabled: new Set(), hasFreeze: false, hasKill: false, hasSwap: false, parentCpus: '', reasons };
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
    parents: [parent],
    enabled: new Set(WANTED.filter((c) => enabled.has(c))),
    hasFreeze,
    hasKill,
    hasSwap,
    parentCpus,
    reasons,
  };
}

async function applyLimits(fs: CgroupFs, dir: string, setup: Setup, limits: CgroupLimits, pickCpus: PickCpus): Promise<void> {
  if (setup.enabled.has('memory')) {
    await writeControl(fs, join(dir, 'memory.max'), String(limits.memoryBytes));
    if (setup.hasSwap) await writeControl(fs, join(dir, 'memory.swap.max'), '0');
    // an OOM kills the whole instance, not one process of it: the supervisor sees one clear death
    if (await fs.exists(join(dir, 'memory.oom.group'))) await writeControl(fs, join(dir, 'memory.oom.group'), '1');
  }
  if (setup.enabled.has('pids')) await writeControl(fs, join(dir, 'pids.max'), String(limits.pidsMax));
  if (setup.enabled.has('cpu')) await writeControl(fs, join(dir, 'cpu.max'), formatCpuMax(limits.cpuQuota));
  if (setup.enabled.has('cpuset') && limits.cpus) {
    const cpus = pickCpus(setup.parentCpus, limits.cpus);
    if (cpus) await writeControl(fs, join(dir, 'cpuset.cpus'), cpus);
  }
}

function formatCpuMax(fraction: number | null): string {
  return `${toQuotaMicros(fraction) ?? 'max'} ${CFS_PERIOD_US}`;
}

function groupControls(fs: CgroupFs, dir: string, setup: Setup): GroupControls {
  const file = (f: string) => join(dir, f);
  return {
    setCpuMax: setup.enabled.has('cpu') ? (fraction) => writeControl(fs, file('cpu.max'), formatCpuMax(fraction)) : undefined,
    freezer: setup.hasFreeze
      ? {
          request: () => writeControl(fs, file('cgroup.freeze'), '1'),
          isFrozen: async () => readKeyed(await readOptional(fs, file('cgroup.events')), 'frozen') === 1,
          thaw: () => writeControl(fs, file('cgroup.freeze'), '0'),
        }
      : undefined,
    killByKernel: setup.hasKill ? () => writeControl(fs, file('cgroup.kill'), '1') : undefined,

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

    lacking: { cpu: 'the cpu controller is not enabled', freezer: 'cgroup.freeze is not available' },
  };
}
