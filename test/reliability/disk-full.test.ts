// A full data disk: the platform runs as a child process with its data dir on a
// 64 MB tmpfs, which the test fills to ENOSPC around the live app's image. Live apps keep
// serving, deploys and writes are refused with a clear error, nothing is lost once space is
// back, and SQLite stays consistent (`PRAGMA integrity_check` after each fault).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { leftoverCgroups } from '../helpers/cgroups.ts';
import { createSmallDisk } from '../helpers/small-disk.ts';
import { adminApi, FIXTURES, isAlive, requestRouter, TOKEN, waitFor } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const ready = process.getuid?.() === 0;
if (!ready && process.env.CI === 'true') throw new Error('the disk-full tests need root (they mount a tmpfs) in CI');

const MOUNT_SIZE_MB = 64;
const disk = createSmallDisk('cellhost-diskfull-', MOUNT_SIZE_MB);
const { dataDir, filler } = disk;
const { freeBytes, integrityCheck } = disk;
const fillDisk = () => disk.fill();
const prefix = `cellhost-child-${process.pid}`;
let server: ChildServer;
let ports: { http: number; admin: number };
let archive: Uint8Array;
/** instance pids seen during the run: none may outlive the platform */
const seenPids = new Set<number>();
/** requests the router answered while the disk was full: usage must still count them */
let servedDuringFault = 0;

const api = adminApi(() => server.adminUrl);

const app = (service: string) => requestRouter(server.routerUrl, `${service}.localhost`, '/');
const deploy = (service: string) => api('POST', `/api/v1/services/${service}/deployments`, archive, { 'content-type': 'application/gzip' });

async function waitDeployment(id: string, timeoutMs = 30_000) {
  let last: any;
  await waitFor(
    async () => {
      last = (await api('GET', `/api/v1/deployments/${id}`)).body;
      return !['queued', 'building'].includes(last.status);
    },
    { timeoutMs, intervalMs: 100, what: `deployment ${id} to finish` },
  ).catch((err) => {
    throw new Error(`${(err as Error).message}: still ${last?.status}`);
  });
  return last;
}

async function recordInstancePids(service: string) {
  const { body } = await api('GET', `/api/v1/services/${service}`);
  for (const i of body.instances ?? []) if (i.pid > 0) seenPids.add(i.pid);
}

const isUp = async () => server.proc.exitCode === null && (await fetch(server.adminUrl + '/api/v1/health').then((r) => r.ok, () => false));

describe.skipIf(!ready)('full data disk', () => {
  beforeAll(async () => {
    disk.mount();
    ports = { http: await freePortSync(), admin: await freePortSync() };
    server = await spawnServer(dataDir, ports);
    archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')));
    for (const name of ['web', 'spare']) {
      await api('POST', '/api/v1/services', { name, runtime: 'node', startCommand: 'node app.js' });
      expect((await waitDeployment((await deploy(name)).body.id)).status).toBe('live');
    }
    expect((await app('web')).status).toBe(200);
  });

  afterAll(async () => {
    await stopServer(server);
    disk.dispose();
  });

  it('keeps serving live apps (cold starts too) and the read API while the disk is full', async () => {
    fillDisk();
    expect(freeBytes()).toBe(0);
    for (let i = 0; i < 20; i++) {
      const r = await app('web');
      expect(r.status).toBe(200);
      servedDuringFault++;
    }
    // never requested before the fault: its first instance starts on the full disk
    const cold = await app('spare');
    expect(cold.status).toBe(200);
    expect(cold.json.hello).toBe('spare');
    servedDuringFault++;
    await recordInstancePids('web');
    await recordInstancePids('spare');
    expect((await api('GET', '/api/v1/services')).status).toBe(200);
    expect((await api('GET', '/api/v1/services/web/logs?limit=10')).status).toBe(200);
    expect((await api('GET', '/api/v1/usage?from=1h')).status).toBe(200);
    // usage is flushed every second and logs every 100 ms: let both fail a few times
    await new Promise((r) => setTimeout(r, 2500));
    expect(await isUp()).toBe(true);
    expect((await app('web')).status).toBe(200);
    servedDuringFault++;
    expect(integrityCheck()).toBe('ok');
  });

  // SQLITE_FULL must come back as ERR_DISK_FULL, not the catch-all 500
  it('an env change on the full disk is refused with a coded error that names the full disk', async () => {
    expect(freeBytes()).toBe(0);
    const res = await api('PUT', '/api/v1/services/web/env/GREETING', { value: 'during-fault' });
    expect(res.status).not.toBe(500);
    expect(res.body.error.code).not.toBe('ERR_INTERNAL');
    expect(res.body.error.message).toMatch(/disk|space|storage/i);
  });

  it('once space is back, usage served during the fault is counted and writes work again', async () => {
    fs.rmSync(filler);
    expect(freeBytes()).toBeGreaterThan(32 * 1024 * 1024);
    // the meter keeps what it could not write and retries every second
    await waitFor(async () => (await api('GET', '/api/v1/usage?from=1h')).body.total.requests >= servedDuringFault + 1, {
      timeoutMs: 5000,
      what: 'usage of the requests served during the fault',
    });
    expect((await api('PUT', '/api/v1/services/web/env/GREETING', { value: 'after-fault' })).status).toBe(200);
    await waitFor(async () => (await app('web')).json?.env === 'after-fault', { timeoutMs: 10_000, what: 'the new env served' });
    await recordInstancePids('web');
    expect(integrityCheck()).toBe('ok');
  });

  // ENOSPC while the upload is written: a coded refusal, and `cellhost serve` stays up
  it('a deploy on the full disk is refused with a clear error and the platform stays up', async () => {
    fillDisk();
    expect(freeBytes()).toBe(0);
    const res = await deploy('web');
    if (res.status === 202) {
      const dep = await waitDeployment(res.body.id, 20_000);
      expect(dep.status).toBe('failed');
      expect(dep.error.message).toMatch(/disk|space|storage/i);
    } else {
      expect(res.body.error?.code).toBeTruthy();
      expect(res.body.error.code).not.toBe('ERR_INTERNAL');
      expect(res.body.error.message).toMatch(/disk|space|storage/i);
    }
    // a crash from an unhandled error comes a tick after the answer
    await new Promise((r) => setTimeout(r, 500));
    expect(await isUp()).toBe(true);
    expect((await app('web')).status).toBe(200);
  });

  it('after the space is freed, a deploy goes live again and the app serves it', async () => {
    if (fs.existsSync(filler)) fs.rmSync(filler);
    if (!(await isUp())) {
      // the test above records the crash; a restart on the same data dir also checks that a
      // crash on a full disk leaves a platform that starts and serves
      const code = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
      if (server.proc.exitCode === null) {
        server.proc.kill('SIGKILL');
        await server.exited;
      }
      console.warn(`the platform died during the full-disk deploy (exit: ${code}); restarting it`);
      server = await spawnServer(dataDir, ports);
    }
    const before = (await api('GET', '/api/v1/services/web')).body.liveDeploymentId;
    const res = await deploy('web');
    expect(res.status).toBe(202);
    const dep = await waitDeployment(res.body.id);
    expect(dep.status).toBe('live');
    expect(dep.id).not.toBe(before);
    const r = await app('web');
    expect(r.status).toBe(200);
    expect(r.json.env).toBe('after-fault');
    await recordInstancePids('web');
    expect(integrityCheck()).toBe('ok');
  });

  // the build's own ENOSPC fails it; its image is removed first, so the status write has room
  it('a build that fills the disk itself fails, frees its space and leaves the live app serving', async () => {
    await api('POST', '/api/v1/services', { name: 'hog', runtime: 'node', startCommand: 'node app.js', buildCommand: 'echo filling; head -c 200M /dev/zero > big' });
    const res = await deploy('hog');
    expect(res.status).toBe(202);
    try {
      const dep = await waitDeployment(res.body.id, 12_000);
      expect(dep.status).toBe('failed');
      // the reason reaches the user, in the deployment's error or its build log
      const log = (await api('GET', `/api/v1/deployments/${res.body.id}/logs`)).body;
      expect(`${dep.error?.message} ${log}`).toMatch(/no space|disk.*full/i);
      expect(freeBytes()).toBeGreaterThan(32 * 1024 * 1024);
    } finally {
      expect((await app('web')).status).toBe(200);
      expect(await isUp()).toBe(true);
    }
  });

  it('stops cleanly afterwards, leaving a consistent database and no process behind', async () => {
    await recordInstancePids('web');
    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    for (const pid of seenPids) expect(isAlive(pid), `instance pid ${pid}`).toBe(false);
    expect(await leftoverCgroups(prefix)).toEqual([]);
    expect(integrityCheck()).toBe('ok');
  });
});
