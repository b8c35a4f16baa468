// Standbys: a service scaled to zero keeps its next instance prepared (cgroup, namespace, sandbox,
// a shell waiting on stdin), so its next cold start is only the app's own start. A standby must
// never serve a stale version, and must go with its service.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;

/** pids of this server's standbys: the waiting shell, in one of the server's cgroups */
function standbyPids(): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline[0] !== '/bin/sh' || cmdline[3] !== 'cellhost-standby') continue;
      // each server's instances run in cgroups under its own prefix; without cgroups (not root),
      // the shell is this server's child
      const groups = fs.readFileSync(`/proc/${name}/cgroup`, 'utf8');
      if (groups.includes(`/${server.cgroupPrefix}/`) || !groups.includes('cellhost')) pids.push(Number(name));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

async function coldStarts(service: string): Promise<{ standby: boolean }[]> {
  const entries = (await server.api('GET', `/api/v1/services/${service}/logs?stream=event&q=cold_start&limit=100`)).body.entries as any[];
  return entries.filter((e) => e.event === 'cold_start').map((e) => e.fields);
}

async function scaledToZero(service: string): Promise<void> {
  await waitFor(async () => (await server.api('GET', `/api/v1/services/${service}`)).body.instances.length === 0, { what: `${service} scaled to zero` });
}

describe('standbys', () => {
  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_STANDBYS: '2' } });
    for (const name of ['sb-a', 'sb-b', 'sb-c']) {
      await server.deploy(name, path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 0.3 });
    }
  });
  afterAll(async () => {
    await server?.close();
    // nothing of a standby outlives the platform
    expect(standbyPids()).toEqual([]);
  });

  it('a service scaled to zero gets a standby, and its next cold start uses it', async () => {
    const first = await server.app('sb-a', '/');
    expect(first.status).toBe(200);
    await scaledToZero('sb-a');
    await waitFor(() => standbyPids().length === 1, { what: 'a standby for sb-a' });
    const second = await server.app('sb-a', '/');
    expect(second.status).toBe(200);
    expect(second.json.hello).toBe('sb-a');
    expect(second.json.boot).not.toBe(first.json.boot);
    const starts = await coldStarts('sb-a');
    expect(starts.map((s) => s.standby)).toEqual([false, true]);
  });

  it('an env change replaces the standby: the next start runs the new value', async () => {
    await scaledToZero('sb-a');
    await waitFor(() => standbyPids().length === 1, { what: 'a standby for sb-a' });
    const [old] = standbyPids();
    expect((await server.api('PUT', '/api/v1/services/sb-a/env/GREETING', { value: 'changed' })).status).toBeLessThan(300);
    await waitFor(() => !standbyPids().includes(old!), { what: 'the stale standby gone' });
    const res = await server.app('sb-a', '/');
    expect(res.status).toBe(200);
    expect(res.json.env).toBe('changed');
  });

  it('keeps at most the configured number, dropping the oldest', async () => {
    for (const name of ['sb-a', 'sb-b', 'sb-c']) {
      expect((await server.app(name, '/')).status).toBe(200);
      await scaledToZero(name);
      await waitFor(async () => (await server.api('GET', `/api/v1/services/${name}`)).body.instances.length === 0);
      // one service at a time, so which is oldest is known
      await new Promise((r) => setTimeout(r, 400));
    }
    await waitFor(() => standbyPids().length === 2, { what: 'two standbys' });
    // sb-a's was the oldest: its next start is a full one; sb-c's uses its standby
    expect((await server.app('sb-c', '/')).status).toBe(200);
    expect((await coldStarts('sb-c')).at(-1)!.standby).toBe(true);
    expect((await server.app('sb-a', '/')).status).toBe(200);
    expect((await coldStarts('sb-a')).at(-1)!.standby).toBe(false);
  });

  it('deleting a service removes its standby', async () => {
    await scaledToZero('sb-c');
    await scaledToZero('sb-a');
    await waitFor(() => standbyPids().length === 2, { what: 'standbys again' });
    expect((await server.api('DELETE', '/api/v1/services/sb-b')).status).toBeLessThan(300);
    expect((await server.api('DELETE', '/api/v1/services/sb-c')).status).toBeLessThan(300);
    await waitFor(() => standbyPids().length === 1, { what: 'the deleted services\u2019 standbys gone' });
  });
});
