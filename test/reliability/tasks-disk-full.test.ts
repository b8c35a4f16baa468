// A full data disk and the task intake: the platform runs as a child process with its data dir on
// a 64 MB tmpfs that the test fills to ENOSPC. A task is then refused with 507 before it is
// accepted (nothing half-stored, nothing answered 202 and lost); once space is back, tasks are
// accepted and delivered again, and SQLite is consistent.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { createSmallDisk } from '../helpers/small-disk.ts';
import { adminApi, FIXTURES, requestRouter, waitFor } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const ready = process.getuid?.() === 0;
if (!ready && process.env.CI === 'true') throw new Error('the task disk-full tests need root (they mount a tmpfs) in CI');

const disk = createSmallDisk('cellhost-tasks-diskfull-', 64);
const { dataDir, filler } = disk;
const { freeBytes, integrityCheck } = disk;
const fillDisk = () => disk.fill();
let server: ChildServer;
let token: string;

const api = adminApi(() => server.adminUrl);
const send = (body: string | Buffer) =>
  requestRouter(server.routerUrl, 'localhost', '/tasks/q/work', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });

const settled = (id: string) => waitFor(async () => (await api('GET', `/api/v1/tasks/${id}`)).body.status === 'done', { timeoutMs: 20_000, what: `task ${id} done` });

describe.skipIf(!ready)('async tasks on a full data disk', () => {
  beforeAll(async () => {
    disk.mount();
    server = await spawnServer(dataDir, { http: await freePortSync(), admin: await freePortSync() });
    await api('POST', '/api/v1/services', { name: 'q', runtime: 'node', startCommand: 'node app.js' });
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-queue')));
    const dep = await api('POST', '/api/v1/services/q/deployments', archive, { 'content-type': 'application/gzip' });
    await waitFor(async () => (await api('GET', `/api/v1/deployments/${dep.body.id}`)).body.status === 'live', { timeoutMs: 30_000, what: 'the app live' });
    token = (await api('GET', '/api/v1/services/q/task-token')).body.token;
  }, 60_000);

  afterAll(async () => {
    await stopServer(server);
    disk.dispose();
  });

  it('refuses a task with 507 while the disk is full, stores nothing of it, and takes tasks again once space is back', async () => {
    const first = await send('before');
    expect(first.status).toBe(202);
    await settled(first.json.id);
    const countBefore = (await api('GET', '/api/v1/services/q/task-queue')).body.counts;

    fillDisk();
    expect(freeBytes()).toBe(0);
    for (const body of ['small', Buffer.alloc(1024 * 1024, 0x61)]) {
      const res = await send(body);
      expect(res.status).toBe(507);
      expect(res.json.error.code).toBe('ERR_DISK_FULL');
      expect(res.json.error.message).toMatch(/disk is full/);
    }
    // nothing of the refused tasks is in the queue (the read API works on the full disk)
    expect((await api('GET', '/api/v1/services/q/task-queue')).body.counts).toEqual(countBefore);
    expect(integrityCheck()).toBe('ok');

    fs.rmSync(filler);
    expect(freeBytes()).toBeGreaterThan(32 * 1024 * 1024);
    const after = await send('after');
    expect(after.status).toBe(202);
    await settled(after.json.id);
    expect((await api('GET', '/api/v1/services/q/task-queue')).body.counts.done).toBe(countBefore.done + 1);
    expect(integrityCheck()).toBe('ok');
    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(integrityCheck()).toBe('ok');
  }, 60_000);
});
