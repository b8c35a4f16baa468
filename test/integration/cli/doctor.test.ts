// `cellhost doctor` says what `serve` would enforce as the same user: on a host where a root
// cellhost already made the cgroup directories, an unprivileged user can see them but not
// create a group in them or write a limit, and doctor must say so (it probes by creating a
// group and writing a limit, not by looking at directories). Needs root (to make the
// directories and to switch to the unprivileged user) and cgroup v1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroupV1Driver, detectCgroupVersion, type CgroupDriver } from '../../../runtime/sandbox/cgroups/index.ts';
import { tempDir } from '../../helpers/server.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PREFIX = `cellhost-doctor-${process.pid}`;
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const version = await detectCgroupVersion('/sys/fs/cgroup').catch(() => null);
const canRun = isRoot && version === 1 && fs.existsSync('/usr/bin/setpriv');
if (!canRun && process.env.CI === 'true') throw new Error(`doctor's test needs root, cgroup v1 and setpriv (uid ${process.getuid?.()}, cgroup v${version})`);

function runDoctor(asUser: number | null, dataDir: string): Promise<{ code: number | null; out: string }> {
  const node = [process.execPath, '--import', 'tsx', path.join(ROOT, 'runtime/main.ts'), 'doctor', '--cgroup-prefix', PREFIX, '--data', dataDir];
  const argv = asUser === null ? node : ['/usr/bin/setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', ...node];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH, HOME: '/nonexistent', TMPDIR: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const line = (out: string, feature: string) => out.split('\n').find((l) => new RegExp(`^\\s+(ok|MISS)\\s+${feature}$`).test(l.trimEnd()))?.trim();

describe.skipIf(!canRun)('cellhost doctor as an unprivileged user', () => {
  let driver: CgroupDriver;
  let dataDir: string;

  beforeAll(async () => {
    // what a root cellhost leaves on the host: its prefix directory in every hierarchy
    driver = createCgroupV1Driver({ prefix: PREFIX });
    const probe = await driver.probe();
    expect(probe.enforced).toMatchObject({ cpu: true, memory: true, pids: true, freezer: true });
    dataDir = tempDir('cellhost-doctor-');
    fs.chmodSync(dataDir, 0o777);
  });

  afterAll(async () => {
    await driver?.dispose();
    for (const dir of driver?.parentDirs ?? []) expect(fs.existsSync(dir)).toBe(false);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('says MISS for every limit it cannot set, with the reason, and exits 1', async () => {
    for (const dir of driver.parentDirs.filter((d) => !d.includes('cpuset'))) expect(fs.existsSync(dir)).toBe(true);
    const r = await runDoctor(NOBODY, dataDir);
    for (const feature of ['cgroups', 'cpu', 'memory', 'pids', 'freezer']) expect(line(r.out, feature), r.out).toBe(`MISS ${feature}`);
    expect(r.out).toMatch(/memory: cannot create a group in \/sys\/fs\/cgroup\/memory\/cellhost-doctor-\d+ \(EACCES\)/);
    expect(r.code).toBe(1);
  });

  it('as root, the same directories pass, and the probe leaves no group behind', async () => {
    const r = await runDoctor(null, dataDir);
    for (const feature of ['cgroups', 'cpu', 'memory', 'pids', 'freezer']) expect(line(r.out, feature), r.out).toBe(`ok   ${feature}`);
    for (const dir of driver.parentDirs) {
      if (fs.existsSync(dir)) expect(fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)).toEqual([]);
    }
  });
});
