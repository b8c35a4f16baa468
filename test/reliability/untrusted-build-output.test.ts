// What builds leave behind, touched by the platform as root: a build (its command, or any
// dependency's install script) controls every file of its image and its cache. Each test plays
// one such build against the real sandbox and checks that the platform neither hangs on it,
// nor reads through it, nor lets it grow without bound, nor hands it to a later service.
// The platform runs as a child process, so a stalled main thread shows as a slow health answer
// instead of stalling the test.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { adminApi, FIXTURES, isAlive, requestRouter, startTestServer, waitFor, waitForBuildLine } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available;

describe('untrusted build output prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, iproute2 and a NAT backend are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
  });
});

const IMAGE_LIMIT_MB = 40;
const CACHE_LIMIT_MB = 40;
const LOG_LIMIT_KB = 256;

describe.skipIf(!ready)('build output the platform touches as root', () => {
  let server: ChildServer;
  let dataDir: string;
  /** a root-only directory holding files the builds must never get at */
  let secretDir: string;
  let helloArchive: Uint8Array;
  let depArchive: Uint8Array;
  const api = adminApi(() => server.adminUrl);
  const app = (service: string, headers: Record<string, string> = {}) => requestRouter(server.routerUrl, `${service}.localhost`, '/', { headers });

  async function create(name: string, settings: Record<string, unknown>) {
    const r = await api('POST', '/api/v1/services', { name, runtime: 'node', idleTimeoutS: 30, ...settings });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }
  async function upload(service: string, archive: Uint8Array): Promise<string> {
    const r = await api('POST', `/api/v1/services/${service}/deployments`, archive, { 'content-type': 'application/gzip' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return r.body.id;
  }
  async function finished(id: string, timeoutMs = 60_000) {
    let last: any;
    await waitFor(
      async () => {
        last = (await api('GET', `/api/v1/deployments/${id}`)).body;
        return !['queued', 'building'].includes(last.status);
      },
      { timeoutMs, intervalMs: 100, what: `deployment ${id}` },
    );
    return last;
  }
  const buildLog = async (id: string) => (await api('GET', `/api/v1/deployments/${id}/logs`)).body as string;
  const serviceLogs = async (name: string) => JSON.stringify((await api('GET', `/api/v1/services/${name}/logs?limit=10000`)).body);

  beforeAll(async () => {
    // outside /tmp, so what a build sees of it is the sandbox's doing
    dataDir = fs.mkdtempSync('/var/tmp/cellhost-untrusted-');
    secretDir = fs.mkdtempSync('/var/tmp/cellhost-root-only-');
    fs.chmodSync(secretDir, 0o700);
    helloArchive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')));
    depArchive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-dep')));
    server = await start();
  });

  const start = async () =>
    spawnServer(dataDir, { http: await freePortSync(), admin: await freePortSync() }, {
      CELLHOST_BUILD_MAX_IMAGE_MB: String(IMAGE_LIMIT_MB),
      CELLHOST_BUILD_MAX_CACHE_MB: String(CACHE_LIMIT_MB),
      CELLHOST_BUILD_MAX_LOG_MB: String(LOG_LIMIT_KB / 1024),
      CELLHOST_BUILD_TIMEOUT_S: '90',
    });

  // a platform that died during a test: say how, with what it printed, and start a new one so
  // the tests after it are not failed by the same death
  afterEach(async () => {
    const { exitCode, signalCode } = server.proc;
    if (exitCode === null && signalCode === null) return;
    console.error(`the platform exited (code ${exitCode}, signal ${signalCode}); its output:\n${server.output().slice(-20_000)}`);
    server = await start();
  });

  afterAll(async () => {
    await stopServer(server);
    for (const dir of [dataDir, secretDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a build that turns package.json into a FIFO does not stall the platform', async () => {
    await create('fifo', { buildCommand: 'rm -f package.json && mkfifo package.json' });
    const id = await upload('fifo', helloArchive);
    const fifo = path.join(dataDir, 'images', id, 'package.json');
    let slowest = 0;
    let stalled = false;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const t0 = Date.now();
      const ok = await fetch(server.adminUrl + '/api/v1/health', { signal: AbortSignal.timeout(3000) }).then(
        (r) => r.ok,
        () => false,
      );
      slowest = Math.max(slowest, Date.now() - t0);
      if (!ok) {
        // the platform is stuck opening the FIFO: open its other end, so the test can end
        stalled = true;
        try {
          const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
          fs.writeSync(fd, '{}');
          fs.closeSync(fd);
        } catch {
          // no reader yet
        }
      }
      const dep = (await api('GET', `/api/v1/deployments/${id}`)).body;
      if (!['queued', 'building'].includes(dep.status) && !stalled) break;
      if (stalled && Date.now() > deadline) break;
      if (stalled && ok) break;
      if (Date.now() > deadline) throw new Error(`deployment still ${dep.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stalled, 'the admin API stopped answering').toBe(false);
    expect(slowest).toBeLessThan(1000);
    const dep = await finished(id);
    const log = await buildLog(id);
    // the special file is gone from the image, and the log says so; the start falls back to a file that is there
    expect(log).toMatch(/package\.json \(FIFO\)/);
    expect(fs.existsSync(fifo)).toBe(false);
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    const r = await app('fifo');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('fifo');
  });

  it("a package.json symlinked to a root-only file does not leak that file's main field", async () => {
    const secret = `SECRET-main-${Math.random().toString(36).slice(2)}`;
    const target = path.join(secretDir, 'package.json');
    fs.writeFileSync(target, JSON.stringify({ name: 'x', main: secret }), { mode: 0o600 });
    await create('leak', { buildCommand: `rm -f package.json && ln -s ${target} package.json` });
    const id = await upload('leak', helloArchive);
    const dep = await finished(id);
    const page = await app('leak', { accept: 'text/html' });
    const json = await app('leak');
    const seen = [JSON.stringify(dep), await buildLog(id), page.text, json.text, await serviceLogs('leak'), JSON.stringify((await api('GET', '/api/v1/services/leak')).body), server.output()];
    for (const text of seen) expect(text).not.toContain(secret);
    // the link is refused, not followed: the default start falls back to the app's own file
    expect(json.status, json.text).toBe(200);
  });

  it("dependency reuse is no oracle on a root-only file, even when the guess is right", async () => {
    // the guess: the file holds exactly the lockfile the next deploy brings
    const target = path.join(secretDir, 'lock.json');
    fs.copyFileSync(path.join(FIXTURES, 'node-dep', 'package-lock.json'), target);
    fs.chmodSync(target, 0o600);
    await create('oracle', { buildCommand: `npm ci && rm package-lock.json && ln -s ${target} package-lock.json` });
    const first = await finished(await upload('oracle', depArchive));
    expect(first.status, JSON.stringify(first)).toBe('live');
    expect((await api('PATCH', '/api/v1/services/oracle', { buildCommand: 'npm ci' })).status).toBe(200);
    const second = await finished(await upload('oracle', depArchive));
    expect(second.status, JSON.stringify(second)).toBe('live');
    expect(await buildLog(second.id)).not.toContain('Reusing node_modules');
    expect((await app('oracle')).json.hour).toBe(3_600_000);
  });

  it('a build that writes past the image limit fails with ERR_BUILD_TOO_LARGE while it runs, and the previous version keeps serving', async () => {
    await create('big', {});
    const good = await finished(await upload('big', helloArchive));
    expect(good.status).toBe('live');
    expect((await api('PATCH', '/api/v1/services/big', { buildCommand: `head -c ${IMAGE_LIMIT_MB + 20}M /dev/zero > big.bin; echo written; sleep 80` })).status).toBe(200);
    const t0 = Date.now();
    const dep = await finished(await upload('big', helloArchive));
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_BUILD_TOO_LARGE');
    expect(dep.error.message).toContain(`${IMAGE_LIMIT_MB} MB`);
    expect(dep.error.message).toMatch(/image/);
    // stopped while it ran, not at its time limit
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(fs.existsSync(path.join(dataDir, 'images', dep.id))).toBe(false);
    const r = await app('big');
    expect(r.status).toBe(200);
    expect((await api('GET', '/api/v1/services/big')).body.liveDeploymentId).toBe(good.id);
  });

  it('a build that fills its dependency cache past the limit fails with ERR_BUILD_TOO_LARGE, and the cache is emptied', async () => {
    await create('bigcache', { buildCommand: `head -c ${CACHE_LIMIT_MB + 20}M /dev/zero > /cache/junk.bin; sleep 80` });
    const dep = await finished(await upload('bigcache', helloArchive));
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_BUILD_TOO_LARGE');
    expect(dep.error.message).toMatch(/cache/);
    expect(dep.error.message).toContain(`${CACHE_LIMIT_MB} MB`);
    expect(fs.existsSync(path.join(dataDir, 'cache', 'bigcache', 'junk.bin'))).toBe(false);
  });

  it('a build log flood is cut at its limit with a clear last line of output', async () => {
    await create('flood', { buildCommand: `head -c 3M /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo flood-done` });
    const dep = await finished(await upload('flood', helloArchive));
    const log = await buildLog(dep.id);
    expect(Buffer.byteLength(log)).toBeLessThan(LOG_LIMIT_KB * 1024 + 4096);
    // the command's last line of output (the command line itself, in the log's header, names it too)
    expect(log).not.toMatch(/^flood-done/m);
    expect(log).toMatch(/build output past 256 KB is not kept/i);
    const stored = fs.readFileSync(path.join(dataDir, 'logs', 'builds', `${dep.id}.log`));
    expect(stored.length).toBeLessThan(LOG_LIMIT_KB * 1024 + 4096);
    expect(dep.status).toBe('live');
  });

  it("a re-created service of the same name gets a new uid and none of the deleted one's files", async () => {
    const before = await create('reborn', { buildCommand: 'echo left-behind > /cache/left-behind' });
    const first = await finished(await upload('reborn', helloArchive));
    expect(first.status).toBe('live');
    expect((await app('reborn')).status).toBe(200);
    const pids = ((await api('GET', '/api/v1/services/reborn')).body.instances as { pid: number }[]).map((i) => i.pid);
    expect(pids.length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dataDir, 'cache', 'reborn', 'left-behind'))).toBe(true);
    expect((await api('DELETE', '/api/v1/services/reborn')).status).toBe(204);
    // its files went after its instances did
    for (const pid of pids) expect(isAlive(pid), `instance ${pid}`).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'cache', 'reborn'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'images', first.id))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'logs', 'builds', `${first.id}.log`))).toBe(false);

    const after = await create('reborn', { buildCommand: 'ls -A /cache; test ! -e /cache/left-behind' });
    expect(after.uid).not.toBe(before.uid);
    const second = await finished(await upload('reborn', helloArchive));
    expect(second.status, await buildLog(second.id)).toBe('live');
  });

  it('deleting a service while its build runs stops the build and leaves none of its files', async () => {
    await create('midbuild', { buildCommand: 'echo started; echo x > /cache/x; sleep 60' });
    const id = await upload('midbuild', helloArchive);
    await waitForBuildLine(api, id, 'started');
    const t0 = Date.now();
    expect((await api('DELETE', '/api/v1/services/midbuild')).status).toBe(204);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(fs.existsSync(path.join(dataDir, 'images', id))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'cache', 'midbuild'))).toBe(false);
    expect(fs.readdirSync(path.join(dataDir, 'cache')).filter((n) => n.includes('midbuild'))).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'logs', 'builds', `${id}.log`))).toBe(false);
  });

  it('an image an older version left with a FIFO, writable by its service, is sealed at the next start', async () => {
    await create('legacy', {});
    const dep = await finished(await upload('legacy', helloArchive));
    expect(dep.status).toBe('live');
    const uid = (await api('GET', '/api/v1/services/legacy')).body.uid as number;
    server.proc.kill('SIGTERM');
    await server.exited;
    // what a build under the old code left: its seal gave up on the FIFO, no start command kept
    const image = path.join(dataDir, 'images', dep.id);
    execFileSync('mkfifo', [path.join(image, 'package.json.fifo')]);
    execFileSync('chown', ['-R', `${uid}:${uid}`, image]);
    const db = new Database(path.join(dataDir, 'cellhost.db'));
    db.prepare('UPDATE deployments SET default_start = NULL, runtime = NULL WHERE id = ?').run(dep.id);
    db.close();

    server = await start();
    expect(fs.existsSync(path.join(image, 'package.json.fifo'))).toBe(false);
    for (const name of ['', 'app.js', 'package.json']) expect(fs.lstatSync(path.join(image, name)).uid, name).toBe(0);
    const r = await app('legacy');
    expect(r.status, r.text).toBe(200);
    expect(r.json.hello).toBe('legacy');
  });
});

describe.skipIf(!ready)('free space on the data disk', () => {
  it('a build is refused with ERR_DISK_LOW when the disk has less free space than the floor, and nothing is left behind', async () => {
    // a floor no disk here has: 1 TB
    const server = await startTestServer({ env: { CELLHOST_BUILD_MIN_FREE_MB: String(1024 * 1024) } });
    try {
      const dep = await server.deploy('lowdisk', path.join(FIXTURES, 'node-hello'));
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_DISK_LOW');
      expect(dep.error.message).toMatch(/free, less than the 1024 GB/);
      expect(fs.readdirSync(path.join(server.dataDir, 'images'))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
