// The v2 driver against a temp dir laid out like a cgroup2 mount. The fake only does what the
// kernel does to the tree: mkdir fills a group with its interface files, rmdir takes them away
// (refusing a group that still has processes or children), cgroup.kill empties cgroup.procs
// and cgroup.freeze is reflected in cgroup.events.
import { mkdtemp, readFile, rm, writeFile, access, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CellhostError } from '../../../runtime/core/errors.ts';
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, nodeCgroupFs, type CgroupFs } from '../../../runtime/sandbox/cgroups/fs.ts';
import { createCgroupV2Driver, detectCgroupDriver } from '../../../runtime/sandbox/cgroups/index.ts';

const ROOT_FILES: Record<string, string> = {
  'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
  'cgroup.subtree_control': '',
  'cgroup.procs': '1\n',
  'cpuset.cpus.effective': '0-3\n',
  'cpu.stat': 'usage_usec 0\n',
};

const GROUP_FILES: Record<string, string> = {
  'cgroup.controllers': '',
  'cgroup.subtree_control': '',
  'cgroup.procs': '',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.freeze': '0\n',
  'cgroup.kill': '',
  'cpu.max': 'max 100000\n',
  'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
  'cpuset.cpus': '\n',
  'cpuset.cpus.effective': '0-3\n',
  'cpuset.mems': '\n',
  'memory.max': 'max\n',
  'memory.swap.max': 'max\n',
  'memory.current': '0\n',
  'memory.peak': '0\n',
  'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
  'memory.oom.group': '0\n',
  'pids.max': 'max\n',
  'pids.current': '0\n',
  'pids.events': 'max 0\n',
};

function errno(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

function createFakeCgroup2Fs(opts: { omit?: string[]; refuseMkdir?: boolean; refuseWritesIn?: string } = {}): CgroupFs & { kills: string[] } {
  const kills: string[] = [];
  return {
    ...nodeCgroupFs,
    kills,
    statfsType: async () => CGROUP2_SUPER_MAGIC,
    async writeText(path, value) {
      await access(path); // a control file the kernel does not show cannot be written
      if (opts.refuseWritesIn && basename(dirname(path)) === opts.refuseWritesIn) throw errno('EACCES', path);
      await writeFile(path, value);
      if (basename(path) === 'cgroup.kill' && value === '1') {
        kills.push(dirname(path));
        await writeFile(join(dirname(path), 'cgroup.procs'), '');
      }
      if (basename(path) === 'cgroup.freeze') {
        await writeFile(join(dirname(path), 'cgroup.events'), `populated 0\nfrozen ${value.trim()}\n`);
      }
    },
    async mkdir(path) {
      if (opts.refuseMkdir) throw errno('EACCES', path);
      await nodeCgroupFs.mkdir(path);
      for (const [f, v] of Object.entries(GROUP_FILES)) if (!opts.omit?.includes(f)) await writeFile(join(path, f), v);
    },
    async rmdir(path) {
      const entries = await readdir(path, { withFileTypes: true });
      if (entries.some((e) => e.isDirectory())) throw errno('EBUSY', path);
      if ((await readFile(join(path, 'cgroup.procs'), 'utf8')).trim() !== '') throw errno('EBUSY', path);
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

describe('cgroup v2 driver', () => {
  it('is picked when the root is a cgroup2 mount', async () => {
    const fs = createFakeCgroup2Fs();
    expect((await detectCgroupDriver({ root, fs })).version).toBe(2);
    expect((await detectCgroupDriver({ root, fs: { ...fs, statfsType: async () => CGROUP_SUPER_MAGIC } })).version).toBe(1);
  });

  it('enables +cpu +memory +pids (+cpuset) on the root and the prefix, and reports everything enforced', async () => {
    const driver = createCgroupV2Driver({ root, prefix: 'cellhost', fs: createFakeCgroup2Fs() });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual({ cpu: true, memory: true, pids: true, freezer: true, cpuset: true });
    expect(probe.reasons).toEqual([]);
    expect(await read('cgroup.subtree_control')).toBe('+cpu +memory +pids +cpuset');
    expect(await read('cellhost', 'cgroup.subtree_control')).toBe('+cpu +memory +pids +cpuset');
    expect(driver.parentDirs).toEqual([join(root, 'cellhost')]);
  });

  it('writes only the controllers that are not enabled yet', async () => {
    await writeFile(join(root, 'cgroup.subtree_control'), 'cpu memory\n');
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    await driver.probe();
    expect(await read('cgroup.subtree_control')).toBe('+pids +cpuset');
  });

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

  it('wraps argv so the process joins the group before exec', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('w', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
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
    const cg = await driver.create('s', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    const dir = join(root, 'cellhost', 's');
    await writeFile(join(dir, 'cpu.stat'), 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n');
    await writeFile(join(dir, 'memory.peak'), '134217728\n');
    await writeFile(join(dir, 'memory.current'), '1048576\n');
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n');
    await writeFile(join(dir, 'pids.current'), '16\n');
    await writeFile(join(dir, 'pids.events'), 'max 40\n');
    expect(await cg.stats()).toEqual({
      cpuUsageUs: 123456,
      memoryPeakBytes: 134217728,
      memoryCurrentBytes: 1048576,
      oomKills: 1,
      pidsCurrent: 16,
      pidsMaxHits: 40,
    });
  });

  it('freezes and thaws through cgroup.freeze', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs() });
    const cg = await driver.create('f', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    await cg.freeze();
    expect(await read('cellhost', 'f', 'cgroup.freeze')).toBe('1');
    await cg.thaw();
    expect(await read('cellhost', 'f', 'cgroup.freeze')).toBe('0');
  });

  it('destroy kills through cgroup.kill, removes the dir, and is idempotent', async () => {
    const fs = createFakeCgroup2Fs();
    const driver = createCgroupV2Driver({ root, fs });
    const cg = await driver.create('d', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    // pids the kernel would list; cgroup.kill is the only way they are killed, so no real process is touched
    await writeFile(join(root, 'cellhost', 'd', 'cgroup.procs'), '999991\n999992\n');
    expect(await cg.pids()).toEqual([999991, 999992]);
    await cg.destroy();
    expect(fs.kills).toEqual([join(root, 'cellhost', 'd')]);
    expect(await exists('cellhost', 'd')).toBe(false);
    await cg.destroy();
    expect(await exists('cellhost')).toBe(true);
  });

  it('reclaims leftovers leaf-first, then dispose removes the prefix', async () => {
    const fs = createFakeCgroup2Fs();
    const first = createCgroupV2Driver({ root, prefix: 'cellhost', fs });
    await first.create('old-1', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    await first.create('old-2', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    await fs.mkdir(join(root, 'cellhost', 'old-2', 'nested'));
    await writeFile(join(root, 'cellhost', 'old-1', 'cgroup.procs'), '999993\n');

    const next = createCgroupV2Driver({ root, prefix: 'cellhost', fs });
    const { removed } = await next.reclaimLeftovers();
    expect([...removed].sort()).toEqual(['old-1', 'old-2', 'old-2/nested']);
    expect(removed.indexOf('old-2/nested')).toBeLessThan(removed.indexOf('old-2'));
    expect(await readdir(join(root, 'cellhost'), { withFileTypes: true }).then((es) => es.filter((e) => e.isDirectory()))).toEqual([]);
    await next.dispose();
    expect(await exists('cellhost')).toBe(false);
  });

  it('removes a half-made group when a limit cannot be written', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ refuseWritesIn: 'broken' }) });
    await expect(driver.create('broken', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 })).rejects.toMatchObject({
      code: 'ERR_CGROUP_FAILED',
    });
    expect(await exists('cellhost', 'broken')).toBe(false);
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
    for (const name of ['../escape', 'a/b', '', '.hidden']) {
      await expect(driver.create(name, { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 })).rejects.toBeInstanceOf(CellhostError);
    }
    expect(() => createCgroupV2Driver({ root, prefix: '../x' })).toThrow(CellhostError);
  });

  it('says why nothing is enforced when the tree cannot be written', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ refuseMkdir: true }) });
    const probe = await driver.probe();
    expect(probe.enforced).toEqual({ cpu: false, memory: false, pids: false, freezer: false, cpuset: false });
    expect(probe.reasons.join('\n')).toMatch(/cannot create .*cellhost \(EACCES\)/);
    await expect(driver.create('x', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 })).rejects.toMatchObject({
      code: 'ERR_CGROUP_FAILED',
    });
  });

  it('names what is missing on an older kernel', async () => {
    const driver = createCgroupV2Driver({ root, fs: createFakeCgroup2Fs({ omit: ['cgroup.kill', 'memory.swap.max'] }) });
    const probe = await driver.probe();
    expect(probe.enforced.memory).toBe(true);
    expect(probe.reasons.some((r) => r.includes('cgroup.kill missing'))).toBe(true);
    expect(probe.reasons.some((r) => r.includes('swap is not limited'))).toBe(true);
    // without cgroup.kill, destroy falls back to freeze + kill + thaw; an empty group needs no signal
    const cg = await driver.create('old-kernel', { memoryBytes: 2 ** 27, cpuQuota: 0.1, pidsMax: 16 });
    expect(await exists('cellhost', 'old-kernel', 'memory.swap.max')).toBe(false);
    await cg.destroy();
    expect(await exists('cellhost', 'old-kernel')).toBe(false);
  });
});
