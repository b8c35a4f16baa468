// Real sandboxes: setpriv + bubblewrap as a per-service uid, checked from inside (what the app can
// see and write) and from the host (/proc/PID/status of the app). Needs root and bubblewrap.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBindStage, type BindStage } from '../../../runtime/sandbox/bind-stage.ts';
import { baseSandboxEnv, buildSandboxCommand, findSandboxAppPid, probeSandbox, type SandboxSpec } from '../../../runtime/sandbox/bwrap.ts';
import { fdPipes, feedFds } from '../../../runtime/sandbox/run-command.ts';
import { findToolchain } from '../../../runtime/sandbox/toolchains.ts';
import { checkImageAccess, normalizeImageAccess } from '../../../runtime/sandbox/uids.ts';

const isCI = process.env.CI === 'true';
const probe = await probeSandbox();
const UID = 2_000_065_001; // top of the default range: no real service of a dev box holds it
const OTHER_UID = 2_000_065_002;
const SPAWN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

describe('sandbox prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, setpriv and user namespaces are present in CI', () => {
    expect(probe.reasons).toEqual([]);
  });
});

const children = new Set<ChildProcess>();

function startSandbox(spec: SandboxSpec): { child: ChildProcess; output: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const { argv, fds } = buildSandboxCommand(spec);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe', ...fdPipes(fds)], env: SPAWN_ENV });
  feedFds(child, fds);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const output = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, output };
}

async function runSandbox(spec: SandboxSpec): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { child, output } = startSandbox(spec);
  child.stdin!.end();
  return output;
}

// pids below `pid` on the host, found through the parent links in /proc/PID/stat
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parents.set(Number(name), ppid);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

describe.skipIf(!probe.available)('bubblewrap sandbox as a per-service uid', () => {
  let dataDir: string;
  let imageDir: string;
  let otherImage: string;
  let privateDir: string;
  let stageDir: string;
  let stage: BindStage;
  const nodeDirs = findToolchain('node').pathDirs;

  beforeAll(async () => {
    // laid out as the platform lays out its data dir: traversable, not listable, images 0755
    dataDir = await mkdtemp('/tmp/cellhost-sbx-data-');
    imageDir = path.join(dataDir, 'images', 'svc', 'd1');
    otherImage = path.join(dataDir, 'images', 'other', 'd1');
    for (const d of [imageDir, otherImage]) {
      await mkdir(d, { recursive: true });
      await writeFile(path.join(d, 'hello.txt'), 'hello from the image\n');
      await normalizeImageAccess(d);
    }
    for (const d of [dataDir, path.join(dataDir, 'images'), path.dirname(imageDir), path.dirname(otherImage)]) await chmod(d, 0o711);
    await writeFile(path.join(dataDir, 'master.key'), 'not for apps\n', { mode: 0o600 });
    // a "toolchain" under a 0700 dir, like rustup's under /root; not under /tmp, which the
    // sandbox's own /tmp hides
    privateDir = await mkdtemp('/var/tmp/cellhost-sbx-private-');
    await mkdir(path.join(privateDir, 'tool', 'bin'), { recursive: true });
    await writeFile(path.join(privateDir, 'tool', 'bin', 'hello-tool'), '#!/bin/sh\necho tool says hi\n', { mode: 0o755 });
    await chmod(path.join(privateDir, 'tool'), 0o755);
    await chmod(path.join(privateDir, 'tool', 'bin'), 0o755);
    await writeFile(path.join(privateDir, 'secret.txt'), 'secret\n');
    stageDir = await mkdtemp('/tmp/cellhost-sbx-stage-');
    await chmod(stageDir, 0o755);
    stage = createBindStage({ dir: stageDir });
  });

  afterEach(async () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  });

  afterAll(async () => {
    await stage?.close();
    for (const d of [dataDir, privateDir, stageDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  const spec = (argv: string[], extra: Partial<SandboxSpec> = {}): SandboxSpec => ({
    uid: UID,
    gid: UID,
    imageDir,
    tmpSizeBytes: 1024 * 1024,
    roBinds: [],
    env: { ...baseSandboxEnv(nodeDirs), PORT: '8080', CELLHOST_SERVICE: 'svc' },
    argv,
    ...extra,
  });

  it('the image is what the uid may read and not write', async () => {
    expect(await checkImageAccess(imageDir, UID)).toEqual([]);
    await chmod(path.join(imageDir, 'hello.txt'), 0o666);
    expect((await checkImageAccess(imageDir, UID)).join()).toMatch(/hello\.txt: writable by group or others/);
    await normalizeImageAccess(imageDir);
    expect(await checkImageAccess(imageDir, UID)).toEqual([]);
  });

  it('node runs as the service uid with a read-only world, a sized /tmp and only its env', async () => {
    const script = `
      const fs = require('fs');
      const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'ok'; } catch (e) { return e.code; } };
      const out = {
        uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), cwd: process.cwd(),
        image: fs.readFileSync('/app/hello.txt', 'utf8'),
        writes: { app: tryWrite('/app/x'), usr: tryWrite('/usr/x'), etc: tryWrite('/etc/x'), root: tryWrite('/x'),
                  dev: tryWrite('/dev/x'), tmp: tryWrite('/tmp/x') },
        tmpAgain: fs.readFileSync('/tmp/x', 'utf8'),
        exists: Object.fromEntries(${JSON.stringify(['/root', '/home', '/var', '/run', '/sys', dataDir, otherImage, imageDir])}
          .map((p) => [p, fs.existsSync(p)])),
        shadow: (() => { try { fs.readFileSync('/etc/shadow'); return 'read'; } catch (e) { return e.code; } })(),
        procs: fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)),
        env: process.env,
      };
      // 2 MiB into a 1 MiB /tmp
      try { fs.writeFileSync('/tmp/big', Buffer.alloc(2 * 1024 * 1024)); out.bigTmp = 'ok'; } catch (e) { out.bigTmp = e.code; }
      console.log(JSON.stringify(out));
      process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
    `;
    const { child, output } = startSandbox(spec(['node', '-e', script]));
    // wait for its report, then look at the app from the host while it is still running
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
      });
      child.on('close', () => reject(new Error('sandbox exited before reporting')));
    });
    const pids = await descendants(child.pid!);
    const comms = await Promise.all(pids.map(async (p) => [p, (await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')).trim()] as const));
    const appPid = comms.find(([, c]) => c === 'node')?.[0];
    expect(appPid).toBeDefined();
    const status = await readFile(`/proc/${appPid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, 'm'));
    expect(status).toMatch(new RegExp(`^Gid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, 'm'));
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    child.stdin!.end();
    const done = await output;
    expect(done.code).toBe(0);

    const r = JSON.parse(line);
    expect(r.uid).toBe(UID);
    expect(r.gid).toBe(UID);
    expect(r.groups).toEqual([UID]);
    expect(r.cwd).toBe('/app');
    expect(r.image).toBe('hello from the image\n');
    for (const where of ['app', 'usr', 'etc', 'root', 'dev']) expect(['EROFS', 'EACCES']).toContain(r.writes[where]);
    expect(r.writes.tmp).toBe('ok');
    expect(r.tmpAgain).toBe('x');
    expect(r.bigTmp).toBe('ENOSPC');
    for (const [p, exists] of Object.entries(r.exists)) expect({ p, exists }).toEqual({ p, exists: false });
    expect(r.shadow).toBe('EACCES');
    // bwrap's init and the app: nothing of the host
    expect(r.procs.length).toBeLessThanOrEqual(3);
    // PWD is bwrap's, from --chdir
    expect(Object.keys(r.env).sort()).toEqual(['CELLHOST_SERVICE', 'HOME', 'LANG', 'PATH', 'PORT', 'PWD', 'TMPDIR']);
    expect(r.env.HOME).toBe('/tmp');
  });

  it('/tmp is private to each sandbox and gone when it stops', async () => {
    const first = await runSandbox(spec(['sh', '-c', 'echo one > /tmp/mark && ls /tmp']));
    expect(first.stdout.trim()).toBe('mark');
    const second = await runSandbox(spec(['sh', '-c', 'ls -A /tmp; test ! -e /tmp/mark && echo clean']));
    expect(second.stdout.trim()).toBe('clean');
  });

  it('python3 -c runs as the uid and cannot write the image', async () => {
    const script = [
      'import os, json',
      'def w(p):',
      '    try:',
      '        open(p, "w").write("x"); return "ok"',
      '    except OSError as e:',
      '        import errno; return errno.errorcode[e.errno]',
      'print(json.dumps({"uid": os.getuid(), "app": w("/app/x"), "usr": w("/usr/x"), "tmp": w("/tmp/x"), "env": sorted(os.environ)}))',
    ].join('\n');
    const r = await runSandbox(spec(['/usr/bin/python3', '-c', script]));
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.uid).toBe(UID);
    expect(['EROFS', 'EACCES']).toContain(out.app);
    expect(['EROFS', 'EACCES']).toContain(out.usr);
    expect(out.tmp).toBe('ok');
    expect(out.env).toEqual(['CELLHOST_SERVICE', 'HOME', 'LANG', 'PATH', 'PORT', 'PWD', 'TMPDIR']);
  });

  it('a build binds its dir and its cache read-write, still as the uid', async () => {
    const buildDir = path.join(dataDir, 'builds-x');
    await mkdir(buildDir, { mode: 0o755 });
    await chown(buildDir, UID, UID);
    const cacheDir = path.join(dataDir, 'cache-x');
    await mkdir(cacheDir, { mode: 0o755 });
    await chown(cacheDir, UID, UID);
    const r = await runSandbox(
      spec(['sh', '-c', 'echo built > /app/out.txt && echo kept > /cache/dep && id -u'], {
        imageDir: buildDir,
        writableAppDir: true,
        rwBinds: [{ src: cacheDir, dest: '/cache' }],
      }),
    );
    expect(r.stdout.trim()).toBe(String(UID));
    expect(await readFile(path.join(buildDir, 'out.txt'), 'utf8')).toBe('built\n');
    expect(await readFile(path.join(cacheDir, 'dep'), 'utf8')).toBe('kept\n');
  });

  it('a toolchain under a 0700 dir is reachable only through the bind stage, and only that dir', async () => {
    const tool = path.join(privateDir, 'tool');
    const direct = await runSandbox(spec(['hello-tool'], { roBinds: [tool], env: { PATH: `${tool}/bin:/usr/bin` } }));
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/Permission denied/);

    const staged = await stage.expose(tool);
    expect(staged.startsWith(stageDir + '/')).toBe(true);
    expect(await stage.expose(tool)).toBe(staged);
    const r = await runSandbox(
      spec(['sh', '-c', `hello-tool; test -e ${privateDir}/secret.txt && echo LEAK; touch ${tool}/x 2>/dev/null || echo ro`], {
        roBinds: [{ src: staged, dest: tool }],
        env: { PATH: `${tool}/bin:/usr/bin` },
      }),
    );
    expect(r.stdout.trim().split('\n')).toEqual(['tool says hi', 'ro']);
    // the stage mount is read-only on the host side too
    await expect(writeFile(path.join(staged, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('SIGTERM to the app pid stops it gracefully; the sandbox exits with it', async () => {
    const script = `process.on('SIGTERM', () => { console.log('bye'); process.exit(3); }); console.log('up'); setInterval(() => {}, 1000);`;
    const { child, output } = startSandbox(spec(['node', '-e', script]));
    await new Promise((r) => child.stdout!.once('data', r));
    const app = await findSandboxAppPid(child.pid!);
    expect(app).toBeDefined();
    expect((await readFile(`/proc/${app}/comm`, 'utf8')).trim()).toBe('node');
    process.kill(app!, 'SIGTERM');
    const done = await output;
    expect(done.stdout).toBe('up\nbye\n');
    expect(done.code).toBe(3);
  });

  it('finds the toolchains of this host', () => {
    const node = findToolchain('node');
    expect(node.binary).toMatch(/\/node$/);
    expect(node.pathDirs.length).toBe(1);
    const python = findToolchain('python');
    // Debian's interpreter, where apt's flask and gunicorn live, not a pyenv shim
    if (python.binary?.startsWith('/usr/')) expect(python.binds).toEqual([]);
  });

  const rust = findToolchain('rust');
  it.skipIf(!rust.binary || rust.binds.length === 0)('the host rust toolchain (under /root) runs in the sandbox via the stage', async () => {
    const binds = await Promise.all(rust.binds.map(async (b) => ({ src: await stage.expose(b), dest: b })));
    const r = await runSandbox(spec(['sh', '-c', 'rustc --version && cargo --version && ls -A /root | wc -l'], { roBinds: binds, env: baseSandboxEnv(rust.pathDirs) }));
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^rustc \d/);
    expect(lines[1]).toMatch(/^cargo \d/);
    expect(lines[2]).toBe('1'); // /root holds only the bound toolchain's path
  });
});

describe('bind stage cleanup', () => {
  it.skipIf(!probe.available)('close() and reclaimLeftovers() leave no mount under the stage dir', async () => {
    const dir = await mkdtemp('/tmp/cellhost-sbx-stage2-');
    const priv = await mkdtemp('/tmp/cellhost-sbx-priv2-');
    try {
      await chmod(dir, 0o755);
      await mkdir(path.join(priv, 't'), { mode: 0o755 });
      const first = createBindStage({ dir });
      await first.expose(path.join(priv, 't'));
      // a crashed run: a new stage on the same dir reclaims what the first mounted
      await createBindStage({ dir }).reclaimLeftovers();
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(dir + '/');
      expect(await readdir(dir)).toEqual([]);
      const second = createBindStage({ dir });
      await second.expose(path.join(priv, 't'));
      await second.close();
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(dir + '/');
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(priv, { recursive: true, force: true });
    }
  });
});
