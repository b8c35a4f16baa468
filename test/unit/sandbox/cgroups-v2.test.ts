// The v2 driver against a temp dir laid out like a cgroup2 mount. The fake does what the kernel
// does to the tree (Documentation/admin-guide/cgroup-v2.rst): mkdir fills a group with the core
// files and the interface files of the controllers its parent enables; cgroup.subtree_control
// merges "+c" into what is enabled, refuses a controller the parent does not pass down (ENOENT),
// refuses to enable any while a non-root group holds processes (EBUSY), and applies a write
// all or nothing; a pid written to cgroup.procs leaves its old group; cgroup.kill empties the
// group and its descendants; cgroup.freeze shows in cgroup.events; rmdir refuses a group with
// processes or children. Pids above PID_MAX_LIMIT (2^22) stand in for processes, so no real
// process is ever signalled.
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CellhostError } from '../../../runtime/core/errors.ts';
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, nodeCgroupFs, type CgroupFs } from '../../../runtime/sandbox/cgroups/fs.ts';
import { createCgroupV2Driver, detectCgroupDriver } from '../../../runtime/sandbox/cgroups/index.ts';

const FAKE_PID = 2 ** 22 + 1000;
const ORDER = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];

const ROOT_FILES: Record<string, string> = {
  'cgroup.controllers': `${ORDER.join(' ')}\n`,
  'cgroup.subtree_control': '\n',
  'cgroup.procs': '1\n',
  'cpuset.cpus.effective': '0-3\n',
  'cpu.stat': 'usage_usec 0\n',
};

const CORE_FILES: Record<string, string> = {
  'cgroup.type': 'domain\n',
  'cgroup.subtree_control': '\n',
  'cgroup.procs': '',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.freeze': '0\n',
  'cgroup.kill': '',
  'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
};

/** interface files a group gets when its parent enables the controller */
const CONTROLLER_FILES: Record<string, Record<string, string>> = {
  cpu: { 'cpu.max': 'max 100000\n' },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.cpus.effective': '0-3\n', 'cpuset.mems': '\n' },
  memory: {
    'memory.max': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.current': '0\n',
    'memory.peak': '0\n',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
    'memory.oom.group': '0\n',
  },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n', 'pids.events': 'max 0\n' },
};

interface FakeOptions {
  /** files this kernel does not have (an older one, or a feature turned off) */
  omit?: string[];
  refuseMkdir?: boolean;
  /** controllers this kernel refuses to enable, and with what */
  refuse?: Record<string, string>;
  /** cgroup.kill leaves these processes where they are */
  immortal?: boolean;
  /** cgroup.freeze never reaches frozen 1 (a task stuck in the kernel) */
  neverFrozen?: boolean;
  /** reading this file fails with EIO once */
  failReadOnce?: string;
  /** every write into a group of this name is refused (EACCES) */
  refuseWritesIn?: string;
}

function errno(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

const setOf = (text: string) => new Set(text.split(/\s+/).filter(Boolean));

function createFakeCgroup2Fs(opts: FakeOptions = {}): CgroupFs & { kills: string[]; writes: [string, string][] } {
  const kills: string[] = [];
  const writes: [string, string][] = [];
  let failRead = opts.failReadOnce;
  const has = (p: string) => access(p).then(() => true, () => false);
  const procsOf = async (dir: string) => (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
  const childDirs = async (dir: string) => (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  async function* walk(dir: string): AsyncGenerator<string> {
    yield dir;
    for (const c of await childDirs(dir)) yield* walk(c);
  }
  async function addControllerFiles(dir: string, controllers: Iterable<string>) {
    for (const c of controllers) for (const [f, v] of Object.entries(CONTROLLER_FILES[c] ?? {})) if (!opts.omit?.includes(f) && !(await has(join(dir, f)))) await writeFile(join(dir, f), v);
  }

  async function writeSubtreeControl(dir: string, value: string) {
    const file = join(dir, 'cgroup.subtree_control');
    const enabled = setOf(await readFile(file, 'utf8'));
    const offered = setOf(await readFile(join(dir, 'cgroup.controllers'), 'utf8'));
    const ops = value.trim().split(/\s+/);
    for (const op of ops) {
      const c = op.slice(1);
      if (op.startsWith('+') && opts.refuse?.[c]) throw errno(opts.refuse[c]!, file);
      if (op.startsWith('+') && !offered.has(c)) throw errno('ENOENT', file);
    }
    if (ops.some((op) => op.startsWith('+')) && (await has(join(dir, 'cgroup.type'))) && (await procsOf(dir)).length > 0) throw errno('EBUSY', file);
    for (const op of ops) op.startsWith('+') ? enabled.add(op.slice(1)) : enabled.delete(op.slice(1));
    const list = ORDER.filter((c) => enabled.has(c)).join(' ');
    await writeFile(file, `${list}\n`);
    for (const child of await childDirs(dir)) {
      await writeFile(join(child, 'cgroup.controllers'), `${list}\n`);
      await addControllerFiles(child, enabled);
    }
  }

  async function writeProcs(dir: string, value: string, root: string) {
    const file = join(dir, 'cgroup.procs');
    if ((await has(join(dir, 'cgroup.type'))) && setOf(await readFile(join(dir, 'cgroup.subtree_control'), 'utf8')).size > 0) throw errno('EBUSY', file);
    const pid = value.trim();
    let found = false;
    for await (const d of walk(root)) {
      const procs = await procsOf(d);
      if (!procs.includes(pid)) continue;
      found = true;
      await writeFile(join(d, 'cgroup.procs'), procs.filter((p) => p !== pid).map((p) => `${p}\n`).join(''));
    }
    if (!found) throw errno('ESRCH', file);
    await writeFile(file, `${(await procsOf(dir)).map((p) => `${p}\n`).join('')}${pid}\n`);
  }

  return {
    ...nodeCgroupFs,
    kills,
    writes,
    statfsType: async () => CGROUP2_SUPER_MAGIC,
    async readText(path) {
      if (failRead && path.endsWith(failRead)) {
        failRead = undefined;
        throw errno('EIO', path);
      }
      return nodeCgroupFs.readText(path);
    },
    async writeText(path, value) {
      await access(path); // a control file the kernel does not show cannot be written
      if (opts.refuseWritesIn && basename(dirname(path)) === opts.refuseWritesIn) throw errno('EACCES', path);
      writes.push([path, value]);
      const dir = dirname(path);
      switch (basename(path)) {
        case 'cgroup.subtree_control':
          return writeSubtreeControl(dir, value);
        case 'cgroup.procs':
          return writeProcs(dir, value, root);
        case 'cgroup.kill':
          kills.push(dir);
          if (!opts.immortal) for await (const d of walk(dir)) await writeFile(join(d, 'cgroup.procs'), '');
          return;
        case 'cgroup.freeze':
          await writeFile(path, value);
          if (!opts.neverFrozen) await writeFile(join(dir, 'cgroup.events'), `populated 0\nfrozen ${value.trim()}\n`);
          return;
        default:
          return writeFile(path, value);
      }
    },
    async mkdir(path) {
      if (opts.refuseMkdir) throw errno('EACCES', path);
      await nodeCgroupFs.mkdir(path);
      const enabled = await readFile(join(dirname(path), 'cgroup.subtree_control'), 'utf8');
      for (const [f, v] of Object.entries(CORE_FILES)) if (!opts.omit?.includes(f)) await writeFile(join(path, f), v);
      await writeFile(join(path, 'cgroup.controllers'), enabled);
      await addControllerFiles(path, setOf(enabled));
    },
    async rmdir(path) {
      if ((await childDirs(path)).length > 0) throw errno('EBUSY', path);
      if ((await procsOf(path)).length > 0) throw errno('EBUSY', path);
      await rm(path, { recursive: true });
    },
  };
}

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cellhost-cg2-'));
  for (const [f, v] of Object.entries(ROOT_FILES)) await writeFile(join(root, f), v);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = (...parts: string[]) => readFile(join(root, ...parts), 'utf8');
const exists = (...parts: string[]) =>
  access(join(root, ...parts)).then(
    () => true,
    () => false,
  );
const LIMITS = { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 };
const EVERYTHING = { cpu: true, memory: true, pids: true, freezer: true, cpuset: true };

describe('cgroup v2 driver: setting up its parent', () => {
  it('is picked when the root is a cgroup2 mount', async () => {
    const fs = createFakeCgroup2Fs();
    expect((await detectCgroupDriver({ root, fs })).version).toBe(2);
    expect((await detectCgroupDriver({ root, fs: { ...fs, statfsType: async () => CGROUP_SUPER_MAGIC } })).version).toBe(1);
  });

  it('enables cpu, memory, pids and cpuset on the root and the prefix in one write each, and reports everything enforced', async () => {
    const fs = createFakeCgroup2Fs();
    const driver = createCgroupV2Driver({ root, prefix: 'cellhost', fs });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual(EVERYTHING);
    expect(probe.reasons).toEqual([]);
    expect(setOf(await read('cgroup.subtree_control'))).toEqual(new Set(['cpu', 'memory', 'pids', 'cpuset']));
    expect(setOf(await read('cellhost', 'cgroup.subtree_control'))).toEqual(new Set(['cpu', 'memory', 'pids', 'cpuset']));
    expect(fs.writes.filter(([p]) => p.endsWith('cgroup.subtree_control'))).toEqual([
      [join(root, 'cgroup.subtree_control'), '+cpu +memory +pids +cpuset'],
      [join(root, 'cellhost', 'cgroup.subtree_control'), '+cpu +memory +pids +cpuset'],
    ]);
    expect(driver.parentDirs).toEqual([join(root, 'cellhost')]);
  });

  it('writes only the controllers that are not enabled yet', async () => {
    await writeFile(join(root, 'cgroup.subtree_control'), 'cpu memory\n');
    const fs = createFakeCgroup2Fs();
    await createCgroupV2Driver({ root, fs }).probe();
    expect(fs.writes[0]).toEqual([join(root, 'cgroup.subtree_control'), '+pids +cpuset']);
  });

  it('a controller the kernel refuses costs only itself: the others are enabled one by one', async () => {
    // cpu, with a realtime task in a non-root cgroup on a kernel with RT group scheduling
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ refuse: { cpu: 'EINVAL' } }) });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual({ ...EVERYTHING, cpu: false });
    expect(probe.reasons).toContain(`cannot enable cpu (EINVAL) in ${root}/cgroup.subtree_control`);
    const cg = await driver.create('no-cpu', LIMITS);
    expect(await exists('cellhost', 'no-cpu', 'cpu.max')).toBe(false);
    expect(await read('cellhost', 'no-cpu', 'memory.max')).toBe(String(LIMITS.memoryBytes));
    await expect(cg.setCpuQuota(0.5)).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('cpu controller is not enabled') });
  });

  it('names a controller the root does not offer and enforces the rest', async () => {
    await writeFile(join(root, 'cgroup.controllers'), 'cpu io memory pids\n');
    const probe = await createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() }).probe();
    expect(probe.enforced).toEqual({ ...EVERYTHING, cpuset: false });
    expect(probe.reasons).toEqual([`cpuset: controller not offered at ${root}`]);
  });

  it('refuses a root that is not a cgroup2 mount', async () => {
    await rm(join(root, 'cgroup.controllers'));
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    expect((await driver.probe()).reasons).toEqual([`${root} is not a cgroup v2 mount`]);
    await expect(driver.create('x', LIMITS)).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('no usable cgroup v2 tree') });
    expect((await driver.reclaimLeftovers()).removed).toEqual([]);
  });

  it('says why nothing is enforced when the tree cannot be written', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ refuseMkdir: true }) });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual({ cpu: false, memory: false, pids: false, freezer: false, cpuset: false });
    expect(probe.reasons.join('\n')).toMatch(/cannot create .*cellhost \(EACCES\)/);
    await expect(driver.create('x', LIMITS)).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED' });
  });

  it('names what is missing on an older kernel, and kills without cgroup.kill', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ omit: ['cgroup.kill', 'memory.swap.max', 'memory.oom.group', 'cgroup.freeze'] }) });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual({ ...EVERYTHING, freezer: false });
    expect(probe.reasons.some((r) => r.includes('cgroup.kill missing'))).toBe(true);
    expect(probe.reasons.some((r) => r.includes('cgroup.freeze missing'))).toBe(true);
    expect(probe.reasons.some((r) => r.includes('swap is not limited'))).toBe(true);
    const cg = await driver.create('old-kernel', LIMITS);
    expect(await read('cellhost', 'old-kernel', 'memory.max')).toBe(String(LIMITS.memoryBytes));
    await expect(cg.freeze()).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('cgroup.freeze is not available') });
    await cg.thaw(); // nothing to thaw: no error
    await cg.destroy();
    expect(await exists('cellhost', 'old-kernel')).toBe(false);
  });

  it('an unexpected read error fails the probe, and the next call tries again', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ failReadOnce: 'cgroup.controllers' }) });
    await expect(driver.probe()).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('EIO') });
    expect((await driver.probe()).enforced).toEqual(EVERYTHING);
  });
});

describe('cgroup v2 driver: a root that is not the tree\'s root (a container\'s, or a systemd unit delegated to it)', () => {
  beforeEach(async () => {
    await writeFile(join(root, 'cgroup.type'), 'domain\n');
    await writeFile(join(root, 'cgroup.procs'), `${FAKE_PID}\n${FAKE_PID + 1}\n`);
  });

  it('moves the root\'s processes into a leaf beside the prefix, then enables the controllers', async () => {
    const driver = createCgroupV2Driver({ root, prefix: 'cellhost', fs: createFakeCgroup2Fs() });
    const probe = await driver.probe();
    expect(probe.reasons).toEqual([]);
    expect(probe.enforced).toEqual(EVERYTHING);
    expect(await read('cgroup.procs')).toBe('');
    expect(await read('_cellhost-platform', 'cgroup.procs')).toBe(`${FAKE_PID}\n${FAKE_PID + 1}\n`);
    await driver.create('i-1', LIMITS);
    expect(await read('cellhost', 'i-1', 'pids.max')).toBe('16');
    // the leaf holding the platform is not a group of the prefix: reclaiming leaves it
    expect((await driver.reclaimLeftovers()).removed).toEqual(['i-1']);
    expect(await exists('_cellhost-platform')).toBe(true);
  });

  it('without moving them, the kernel refuses every controller (the rule the move is for)', async () => {
    const fs = createFakeCgroup2Fs();
    await expect(fs.writeText(join(root, 'cgroup.subtree_control'), '+memory')).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('says so when they cannot be moved, and what is then not enforced', async () => {
    // the leaf already exists and has controllers enabled: the kernel refuses processes in it
    const fs = createFakeCgroup2Fs();
    await fs.mkdir(join(root, '_cellhost-platform'));
    await writeFile(join(root, '_cellhost-platform', 'cgroup.subtree_control'), 'pids\n');
    const probe = await createCgroupV2Driver({ root, prefix: 'cellhost', fs }).probe();
    expect(probe.reasons[0]).toBe(`${root} holds processes that cannot be moved to ${join(root, '_cellhost-platform')} (pid ${FAKE_PID}: EBUSY)`);
    expect(probe.reasons[1]).toMatch(/^cannot enable cpu \(EBUSY\), memory \(EBUSY\), pids \(EBUSY\), cpuset \(EBUSY\) in /);
    expect(probe.enforced).toEqual({ cpu: false, memory: false, pids: false, freezer: true, cpuset: false });
  });

  it('leaves the real root alone: it may hold processes', async () => {
    await rm(join(root, 'cgroup.type'));
    const fs = createFakeCgroup2Fs();
    expect((await createCgroupV2Driver({ root, fs }).probe()).enforced).toEqual(EVERYTHING);
    expect(await exists('_cellhost-platform')).toBe(false);
    expect(await read('cgroup.procs')).toBe(`${FAKE_PID}\n${FAKE_PID + 1}\n`);
  });
});

describe('cgroup v2 driver: groups', () => {
  it('writes the limits a group asks for', async () => {
    const driver = createCgroupV2Driver({ root, prefix: 'cellhost', fs: createFakeCgroup2Fs() });
    await driver.create('svc-a-1', { memoryBytes: 192 * 2 ** 20, cpuQuota: 192 / 1769, pidsMax: 256, cpus: 2 });
    const group = (f: string) => read('cellhost', 'svc-a-1', f);
    expect(await group('cpu.max')).toBe('10854 100000');
    expect(await group('memory.max')).toBe(String(192 * 2 ** 20));
    expect(await group('memory.swap.max')).toBe('0');
    expect(await group('memory.oom.group')).toBe('1');
    expect(await group('pids.max')).toBe('256');
    expect(await group('cpuset.cpus')).toBe('0-1');
  });

  it("pins groups to the cpus holding the fewest groups, and gives a removed group's back", async () => {
    const driver = createCgroupV2Driver({ root, prefix: 'cellhost', fs: createFakeCgroup2Fs() });
    const limits = { memoryBytes: 128 * 2 ** 20, cpuQuota: 0.1, pidsMax: 16, cpus: 1 };
    const a = await driver.create('one', limits);
    await driver.create('two', limits);
    await driver.create('pair', { ...limits, cpus: 2 });
    expect(await read('cellhost', 'one', 'cpuset.cpus')).toBe('0');
    expect(await read('cellhost', 'two', 'cpuset.cpus')).toBe('1');
    expect(await read('cellhost', 'pair', 'cpuset.cpus')).toBe('2-3');
    await a.destroy();
    await driver.create('three', limits);
    expect(await read('cellhost', 'three', 'cpuset.cpus')).toBe('0');
  });

  it('leaves cpu.max uncapped for a null quota, and changes it on a running group', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('boost', { memoryBytes: 885 * 2 ** 20, cpuQuota: null, pidsMax: 64 });
    expect(await read('cellhost', 'boost', 'cpu.max')).toBe('max 100000');
    expect(await read('cellhost', 'boost', 'cpuset.cpus')).toBe('\n'); // no cpus asked: inherit
    await cg.setCpuQuota(0.5);
    expect(await read('cellhost', 'boost', 'cpu.max')).toBe('50000 100000');
    await cg.setCpuQuota(null);
    expect(await read('cellhost', 'boost', 'cpu.max')).toBe('max 100000');
  });

  it('leaves cpuset.cpus alone when the parent has no cpus to pick from', async () => {
    const fs = createFakeCgroup2Fs();
    const driver = createCgroupV2Driver({ root, fs });
    await driver.probe();
    await writeFile(join(root, 'cellhost', 'cpuset.cpus.effective'), '\n');
    const cg = await createCgroupV2Driver({ root, fs }).create('nocpus', { ...LIMITS, cpus: 2 });
    expect(await read('cellhost', 'nocpus', 'cpuset.cpus')).toBe('\n');
    await cg.destroy();
  });

  it('wraps argv so the process joins the group before exec', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('w', LIMITS);
    expect(cg.wrapArgv(['node', 'app.js'])).toEqual([
      '/bin/sh',
      '-c',
      `echo $$ > '${join(root, 'cellhost', 'w', 'cgroup.procs')}' && exec "$@"`,
      'cellhost-cg',
      'node',
      'app.js',
    ]);
  });

  it('reads stats from cpu.stat, memory.peak/current, memory.events and pids', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('s', LIMITS);
    const dir = join(root, 'cellhost', 's');
    await writeFile(join(dir, 'cpu.stat'), 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n');
    await writeFile(join(dir, 'memory.peak'), '134217728\n');
    await writeFile(join(dir, 'memory.current'), '1048576\n');
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n');
    await writeFile(join(dir, 'pids.current'), '16\n');
    await writeFile(join(dir, 'pids.events'), 'max 40\n');
    expect(await cg.stats()).toEqual({ cpuUsageUs: 123456, memoryPeakBytes: 134217728, memoryCurrentBytes: 1048576, oomKills: 1, pidsCurrent: 16, pidsMaxHits: 40 });
  });

  it('reads what an older kernel has: no memory.peak (before 5.19) is null, not an error', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ omit: ['memory.peak'] }) });
    const cg = await driver.create('s', LIMITS);
    expect(await cg.stats()).toMatchObject({ memoryPeakBytes: null, memoryCurrentBytes: 0, oomKills: 0 });
  });

  it('freezes and thaws through cgroup.freeze, and says when the group does not settle frozen', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('f', LIMITS);
    await cg.freeze();
    expect(await read('cellhost', 'f', 'cgroup.freeze')).toBe('1');
    await cg.thaw();
    expect(await read('cellhost', 'f', 'cgroup.freeze')).toBe('0');

    const stuck = await createCgroupV2Driver({ root, prefix: 'stuck', fs: createFakeCgroup2Fs({ neverFrozen: true }) }).create('f', LIMITS);
    await expect(stuck.freeze()).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('did not freeze within') });
  });

  it('destroy kills through cgroup.kill after lifting the CPU cap, removes the dir, and is idempotent', async () => {
    const fs = createFakeCgroup2Fs();
    const driver = createCgroupV2Driver({ root, fs });
    const cg = await driver.create('d', LIMITS);
    await writeFile(join(root, 'cellhost', 'd', 'cgroup.procs'), `${FAKE_PID}\n${FAKE_PID + 1}\n`);
    expect(await cg.pids()).toEqual([FAKE_PID, FAKE_PID + 1]);
    await cg.destroy();
    expect(fs.kills).toEqual([join(root, 'cellhost', 'd')]);
    // a throttled task dies only when next scheduled: the cap goes first
    const writes = fs.writes.map(([p, v]) => `${basename(p)}=${v}`);
    expect(writes.slice(writes.lastIndexOf('cpu.max=10000 100000') + 1)).toEqual(['cpu.max=max 100000', 'cgroup.kill=1']);
    expect(await exists('cellhost', 'd')).toBe(false);
    await cg.destroy();
    expect(await exists('cellhost')).toBe(true);
  });

  it('an empty group is removed without a kill', async () => {
    const fs = createFakeCgroup2Fs();
    const cg = await createCgroupV2Driver({ root, fs }).create('empty', LIMITS);
    await cg.destroy();
    expect(fs.kills).toEqual([]);
  });

  it('a group whose processes survive the kill is reported, and can be destroyed once they are gone', async () => {
    const fs = createFakeCgroup2Fs({ immortal: true });
    const cg = await createCgroupV2Driver({ root, fs }).create('stubborn', LIMITS);
    await writeFile(join(root, 'cellhost', 'stubborn', 'cgroup.procs'), `${FAKE_PID}\n`);
    await expect(cg.destroy()).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('1 process(es) survived SIGKILL') });
    await writeFile(join(root, 'cellhost', 'stubborn', 'cgroup.procs'), '');
    await cg.destroy();
    expect(await exists('cellhost', 'stubborn')).toBe(false);
  }, 15_000);

  it('reclaims leftovers leaf-first, then dispose removes the prefix', async () => {
    const fs = createFakeCgroup2Fs();
    const first = createCgroupV2Driver({ root, prefix: 'cellhost', fs });
    await first.create('old-1', LIMITS);
    await first.create('old-2', LIMITS);
    await fs.mkdir(join(root, 'cellhost', 'old-2', 'nested'));
    await writeFile(join(root, 'cellhost', 'old-1', 'cgroup.procs'), `${FAKE_PID}\n`);

    const next = createCgroupV2Driver({ root, prefix: 'cellhost', fs });
    const { removed } = await next.reclaimLeftovers();
    expect([...removed].sort()).toEqual(['old-1', 'old-2', 'old-2/nested']);
    expect(removed.indexOf('old-2/nested')).toBeLessThan(removed.indexOf('old-2'));
    expect(await readdir(join(root, 'cellhost'), { withFileTypes: true }).then((es) => es.filter((e) => e.isDirectory()))).toEqual([]);
    await next.dispose();
    expect(await exists('cellhost')).toBe(false);
    await next.dispose(); // the prefix already gone: nothing to do
  });

  it('removes a half-made group when a limit cannot be written, and refuses a name twice', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ refuseWritesIn: 'broken' }) });
    await expect(driver.create('broken', LIMITS)).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED' });
    expect(await exists('cellhost', 'broken')).toBe(false);
    const ok = createCgroupV2Driver({ root, prefix: 'other', fs: createFakeCgroup2Fs() });
    await ok.create('twice', LIMITS);
    await expect(ok.create('twice', LIMITS)).rejects.toMatchObject({ code: 'ERR_CGROUP_FAILED', message: expect.stringContaining('(EEXIST)') });
  });

  it('probes by making a group and writing a limit: a limit the groups cannot take is not enforced, and says why', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ omit: ['pids.max'] }) });
    const probe = await driver.probe();
    expect(probe.enforced).toMatchObject({ memory: true, cpu: true, pids: false, freezer: true });
    expect(probe.reasons.join('\n')).toMatch(/^pids: cannot set pids\.max in a group under .*\/cellhost \(ENOENT\)/m);
    // the probe groups are gone
    expect(await readdir(join(root, 'cellhost'), { withFileTypes: true }).then((es) => es.filter((e) => e.isDirectory()))).toEqual([]);
  });

  it('refuses names that are not one path segment', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    for (const name of ['../escape', 'a/b', '', '.hidden', '_platform']) {
      await expect(driver.create(name, LIMITS)).rejects.toBeInstanceOf(CellhostError);
    }
    expect(() => createCgroupV2Driver({ root, prefix: '../x' })).toThrow(CellhostError);
    expect(() => createCgroupV2Driver({ root, prefix: '_x' })).toThrow(CellhostError);
  });
});
