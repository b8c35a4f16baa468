// System layers at the sandbox level: a build's root in its own user namespace over the host's
// /usr, /etc and /var (idmapped, masked, overlaid), what it can and cannot do, the seal, and the
// read-only views instances get. Real mounts, real bubblewrap; needs root. The apt-get cases run
// through the whole platform in test/integration/system-layer.test.ts.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, SUBUID_BLOCK } from '../../../runtime/core/config.ts';
import { baseSandboxEnv, buildSandboxCommand, probeSandbox, type SandboxSpec } from '../../../runtime/sandbox/bwrap.ts';
import { fdPipes, feedFds } from '../../../runtime/sandbox/run-command.ts';
import { createSystemLayers, parseMountsUnder, probeSystemLayers, sealSystemLayer, type SystemLayers } from '../../../runtime/sandbox/system-layer.ts';

const isCI = process.env.CI === 'true';
const sandbox = await probeSandbox();
const range = loadConfig({ env: {}, cwd: '/tmp' }).subuidRange;
// a block near the top of the default range, per test process: no dev box's service holds it
const BLOCK = { first: range.first + (1500 + (process.pid % 500)) * SUBUID_BLOCK, count: SUBUID_BLOCK };
const OTHER_BLOCK = { first: BLOCK.first - SUBUID_BLOCK, count: SUBUID_BLOCK };
const SERVICE_UID = 2_000_065_011;
const RUN_DIR = `/run/cellhost-test-layer-${process.pid}`;
const SPAWN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

// as `cellhost serve` runs: nothing the sandbox uids must reach may depend on a loose umask
const umask = process.umask(0o077);
let dataDir: string;
let probe: Awaited<ReturnType<typeof probeSystemLayers>> = { available: false, reason: 'not probed' };
beforeAll(async () => {
  dataDir = await mkdtemp('/tmp/cellhost-layer-');
  await chmod(dataDir, 0o711);
  // as the platform makes its host run dir: others may walk through it
  await mkdir(RUN_DIR, { recursive: true });
  await chmod(RUN_DIR, 0o755);
  if (sandbox.available) probe = await probeSystemLayers({ dir: path.join(RUN_DIR, 'layers'), upperRoot: dataDir, block: BLOCK, seccomp: !!sandbox.hardening.seccomp });
});
afterAll(async () => {
  process.umask(umask);
  const left = parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR);
  for (const m of left) spawn('umount', ['-l', m.mountPoint]);
  await rm(RUN_DIR, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

describe('system layer prerequisites', () => {
  it.runIf(isCI)('idmapped overlays work on this host in CI', () => {
    expect(probe).toEqual({ available: true });
  });
});

function run(spec: SandboxSpec): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { argv, fds } = buildSandboxCommand(spec);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', ...fdPipes(fds)], env: SPAWN_ENV });
  feedFds(child, fds);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function hashTree(file: string): Promise<string> {
  return crypto.createHash('sha256').update(await readFile(file)).digest('hex');
}

describe.runIf(sandbox.available)('a build as root of its own namespace over the host system', () => {
  let layers: SystemLayers;
  let layerDir: string;
  let appDir: string;
  let secretDir: string;

  beforeAll(async () => {
    if (!probe.available) return;
    // a root-only dir inside the data dir, and the data dir itself: hidden from the build
    secretDir = path.join(dataDir, 'images');
    await mkdir(secretDir);
    await chmod(secretDir, 0o711);
    await writeFile(path.join(secretDir, 'other-service-secret'), 'SECRET', { mode: 0o644 });
    layers = createSystemLayers({ dir: path.join(RUN_DIR, 'layers'), hidden: [dataDir, RUN_DIR] });
    await layers.reclaimLeftovers();
    layerDir = path.join(dataDir, 'd-test.layer');
    appDir = path.join(dataDir, 'build');
    await mkdir(appDir);
    await chmod(appDir, 0o755);
    await fs.promises.chown(appDir, BLOCK.first, BLOCK.first);
  });
  afterAll(async () => {
    await layers?.close();
  });

  const spec = (root: { usr: string; etc: string; var: string }, script: string): SandboxSpec => ({
    uid: SERVICE_UID,
    gid: SERVICE_UID,
    imageDir: appDir,
    writableAppDir: true,
    tmpSizeBytes: 64 << 20,
    roBinds: [],
    env: baseSandboxEnv(),
    // as the build launcher runs a layer build: the platform's umask 077 is not the build's
    argv: ['bash', '-c', `umask 022\n${script}`],
    rangeRoot: BLOCK,
    systemDirs: { ...root, writable: true },
  });

  it('is root inside, its changes land in the layer owned by its block, and the host is untouched', async () => {
    expect(probe.reason).toBeUndefined();
    const before = { passwd: await hashTree('/etc/passwd'), status: await hashTree('/var/lib/dpkg/status'), tac: await hashTree('/usr/bin/tac') };
    const root = await layers.mountBuildRoot({ id: 'd-test', layerDir, block: BLOCK });
    try {
      const r = await run(
        spec(
          root,
          [
            'id -u; id -g',
            'grep -c . /proc/self/uid_map; cat /proc/self/uid_map',
            // dpkg-like work: a new file in /usr, a host file replaced, a host file removed, an owner set
            'echo hi > /usr/lib/cellhost-probe && chown 42:42 /usr/lib/cellhost-probe',
            'echo "probe:x:4242:4242::/nonexistent:/usr/sbin/nologin" >> /etc/passwd',
            'rm /usr/bin/tac && echo removed-tac',
            'install -m 4755 /dev/null /usr/bin/setuid-probe',
            // what it cannot do
            'chown 70000 /usr/lib/cellhost-probe 2>&1 || echo chown-outside-refused',
            'cat /etc/shadow 2>&1 || echo shadow-hidden',
            `ls ${secretDir} 2>&1 || echo data-dir-hidden`,
            'unshare -U true 2>&1 || echo userns-refused',
            'mount -t tmpfs none /mnt 2>&1 || echo mount-refused',
            'ls /var | tr "\\n" " "; echo',
            'test -d /var/log/apt && test -w /tmp && echo var-log-and-tmp',
          ].join('\n'),
        ),
      );
      expect(r.stderr).toBe('');
      const out = r.stdout.split('\n');
      expect(out.slice(0, 2)).toEqual(['0', '0']);
      expect(out[3]!.trim().split(/\s+/)).toEqual(['0', String(BLOCK.first), String(BLOCK.count)]);
      for (const word of ['removed-tac', 'chown-outside-refused', 'shadow-hidden', 'data-dir-hidden', 'userns-refused', 'mount-refused', 'var-log-and-tmp']) expect(r.stdout).toContain(word);
      expect(r.stdout).not.toContain('root:');
      expect(r.stdout).not.toContain('SECRET');
      const varTop = out.find((l) => l.includes('lib') && l.includes('cache'))!.trim().split(' ');
      expect(varTop.sort()).toEqual(expect.arrayContaining(['cache', 'lib', 'log', 'tmp']));
      expect(varTop).not.toContain('mail');
      expect(varTop).not.toContain('spool');
    } finally {
      await root.release();
    }
    expect(parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR)).toEqual([]);
    // the host's own files, byte for byte
    expect({ passwd: await hashTree('/etc/passwd'), status: await hashTree('/var/lib/dpkg/status'), tac: await hashTree('/usr/bin/tac') }).toEqual(before);
    expect(fs.existsSync('/usr/lib/cellhost-probe')).toBe(false);

    // the layer holds the changes, owned by ids of the block, never by host root
    const probeFile = await stat(path.join(layerDir, 'usr/lib/cellhost-probe'));
    expect([probeFile.uid, probeFile.gid]).toEqual([BLOCK.first + 42, BLOCK.first + 42]);
    const passwd = await stat(path.join(layerDir, 'etc/passwd'));
    expect(passwd.uid).toBe(BLOCK.first);
    expect(await readFile(path.join(layerDir, 'etc/passwd'), 'utf8')).toContain('probe:x:4242');

    const seal = await sealSystemLayer(layerDir, BLOCK);
    expect(seal.empty).toBe(false);
    expect(seal.setuidCleared).toEqual(['usr/bin/setuid-probe']);
    expect((await stat(path.join(layerDir, 'usr/bin/setuid-probe'))).mode & 0o7777).toBe(0o755);
    // the removed host file is a whiteout, handed to the block like everything else
    const whiteout = await stat(path.join(layerDir, 'usr/bin/tac'));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    const owners = await ownersIn(layerDir);
    expect([...owners].every((id) => id >= BLOCK.first && id < BLOCK.first + BLOCK.count)).toBe(true);
    expect(fs.existsSync(path.join(layerDir, '.work'))).toBe(false);
    expect(fs.readdirSync(path.join(layerDir, 'var'))).toEqual(expect.not.arrayContaining(['log', 'tmp', 'cache']));
    expect((await stat(layerDir)).mode & 0o777).toBe(0o700);
  });

  it('instances see the sealed layer read-only over the host, as the service uid, the data dir hidden', async () => {
    const view = await layers.viewForInstances('d-test', layerDir);
    expect(view.usr).not.toBe('/usr');
    const r = await run({
      uid: SERVICE_UID,
      gid: SERVICE_UID,
      imageDir: appDir,
      tmpSizeBytes: 1 << 20,
      roBinds: [],
      env: baseSandboxEnv(),
      argv: ['bash', '-c', ['id -u', 'cat /usr/lib/cellhost-probe', 'grep -c "^probe:" /etc/passwd', 'test -e /usr/bin/tac || echo tac-removed-by-layer', 'echo x > /usr/lib/cellhost-probe 2>&1 || echo layer-read-only', 'touch /etc/x 2>&1 || echo etc-read-only', 'test -d /var/lib/dpkg && echo var-lib-there', `ls ${dataDir} 2>&1 || echo data-dir-hidden`].join('\n')],
      systemDirs: view,
    });
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([String(SERVICE_UID), 'hi', '1']);
    for (const word of ['tac-removed-by-layer', 'layer-read-only', 'etc-read-only', 'var-lib-there', 'data-dir-hidden']) expect(r.stdout).toContain(word);
    // mounted once per deployment
    expect(await layers.viewForInstances('d-test', layerDir)).toEqual(view);
    await layers.forget('d-test');
    expect(parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR)).toEqual([]);
  });

  it('a deployment whose layer is missing gets no view of the host in its place: the instance fails, saying so', async () => {
    const missing = path.join(dataDir, 'images', 'd-gone.layer');
    await expect(layers.viewForInstances('d-gone', missing)).rejects.toThrow(/the system layer of deployment d-gone is missing/);
    expect(parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR)).toEqual([]);
  });

  it('two builds of different services at once keep their layers apart', async () => {
    const dirA = path.join(dataDir, 'd-a.layer');
    const dirB = path.join(dataDir, 'd-b.layer');
    const [a, b] = await Promise.all([
      layers.mountBuildRoot({ id: 'd-a', layerDir: dirA, block: BLOCK }),
      layers.mountBuildRoot({ id: 'd-b', layerDir: dirB, block: OTHER_BLOCK }),
    ]);
    try {
      const script = (name: string) => `echo ${name} > /usr/lib/only-${name}; sleep 0.3; ls /usr/lib | grep only- | tr "\\n" " "`;
      const [ra, rb] = await Promise.all([run(spec(a, script('a'))), run({ ...spec(b, script('b')), rangeRoot: OTHER_BLOCK })]);
      expect(ra.stdout.trim()).toBe('only-a');
      expect(rb.stdout.trim()).toBe('only-b');
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
    expect((await stat(path.join(dirA, 'usr/lib/only-a'))).uid).toBe(BLOCK.first);
    expect((await stat(path.join(dirB, 'usr/lib/only-b'))).uid).toBe(OTHER_BLOCK.first);
    expect(fs.existsSync(path.join(dirA, 'usr/lib/only-b'))).toBe(false);
  });

  it('mounts a crashed platform left are reclaimed at the next start', async () => {
    const crashed = createSystemLayers({ dir: path.join(RUN_DIR, 'layers'), hidden: [dataDir, RUN_DIR] });
    await crashed.mountBuildRoot({ id: 'd-crash', layerDir: path.join(dataDir, 'd-crash.layer'), block: BLOCK });
    await crashed.viewForInstances('d-test', layerDir);
    expect(parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR).length).toBeGreaterThanOrEqual(7);
    // no close(): the next platform's start finds them
    await createSystemLayers({ dir: path.join(RUN_DIR, 'layers'), hidden: [] }).reclaimLeftovers();
    expect(parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), RUN_DIR)).toEqual([]);
    expect(fs.existsSync(path.join(RUN_DIR, 'layers'))).toBe(false);
  });
});

async function ownersIn(dir: string): Promise<Set<number>> {
  const ids = new Set<number>();
  const walk = async (p: string) => {
    for (const e of await fs.promises.readdir(p, { withFileTypes: true })) {
      const full = path.join(p, e.name);
      const st = await fs.promises.lstat(full);
      ids.add(st.uid);
      ids.add(st.gid);
      if (e.isDirectory()) await walk(full);
    }
  };
  await walk(dir);
  return ids;
}
