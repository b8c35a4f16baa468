// Standbys: a service just deployed, or scaled to zero, keeps its next instance prepared (cgroup,
// namespace, sandbox, a shell waiting on stdin), so its next cold start is only the app's own
// start. A standby must never serve a stale version, and must go with its service.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;

/** this server's standbys (the waiting shell) by service, from their cgroup and environment */
function standbys(): Map<string, number> {
  const found = new Map<string, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline[0] !== '/bin/sh' || cmdline[3] !== 'cellhost-standby') continue;
      const env = fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (!fs.readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(`/${server.cgroupPrefix}/`)) continue;
      const service = env.find((e) => e.startsWith('CELLHOST_SERVICE='))?.slice('CELLHOST_SERVICE='.length);
      if (service) found.set(service, Number(name));
    } catch {
      // gone while we looked
    }
  }
  return found;
}

const standbyOf = (service: string) => standbys().get(service);

async function coldStarts(service: string): Promise<boolean[]> {
  const entries = (await server.api('GET', `/api/v1/services/${service}/logs?stream=event&q=cold_start&limit=100`)).body.entries as any[];
  return entries.filter((e) => e.event === 'cold_start').map((e) => e.fields.standby);
}

async function scaledToZero(service: string): Promise<void> {
  await waitFor(async () => (await server.api('GET', `/api/v1/services/${service}`)).body.instances.length === 0, { what: `${service} scaled to zero` });
}

const deploy = (name: string) => server.deploy(name, path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 0.3 });

describe.skipIf(process.getuid?.() !== 0)('standbys', () => {
  beforeAll(async () => {
    // standbys alone: prewarmed instances (the app started and frozen ahead) have their own tests
    server = await startTestServer({ env: { CELLHOST_STANDBYS: '2', CELLHOST_PREWARM_MB: '0' } });
    await deploy('sb-a');
  });
  afterAll(async () => {
    await server?.close();
    // nothing of a standby outlives the platform
    expect(standbys().size).toBe(0);
  });

  it('a deploy and a scale to zero each leave a standby, and the next cold start uses it', async () => {
    await waitFor(() => standbyOf('sb-a') !== undefined, { what: 'a standby after the deploy' });
    const first = await server.app('sb-a', '/');
    expect(first.status).toBe(200);
    await scaledToZero('sb-a');
    await waitFor(() => standbyOf('sb-a') !== undefined, { what: 'a standby after the scale to zero' });
    const second = await server.app('sb-a', '/');
    expect(second.status).toBe(200);
    expect(second.json.hello).toBe('sb-a');
    expect(second.json.boot).not.toBe(first.json.boot);
    expect(await coldStarts('sb-a')).toEqual([true, true]);
  });

  it('an env change replaces the standby: the next start runs the new value', async () => {
    await scaledToZero('sb-a');
    await waitFor(() => standbyOf('sb-a') !== undefined, { what: 'a standby for sb-a' });
    const old = standbyOf('sb-a');
    expect((await server.api('PUT', '/api/v1/services/sb-a/env/GREETING', { value: 'changed' })).status).toBeLessThan(300);
    await waitFor(() => standbyOf('sb-a') !== undefined && standbyOf('sb-a') !== old, { what: 'a standby of the new version' });
    const res = await server.app('sb-a', '/');
    expect(res.status).toBe(200);
    expect(res.json.env).toBe('changed');
    expect((await coldStarts('sb-a')).at(-1)).toBe(true);
  });

  it('keeps at most the configured number, dropping the oldest', async () => {
    await scaledToZero('sb-a');
    await waitFor(() => standbyOf('sb-a') !== undefined, { what: 'a standby for sb-a' });
    await deploy('sb-b');
    await waitFor(() => standbyOf('sb-b') !== undefined, { what: 'a standby for sb-b' });
    await deploy('sb-c');
    await waitFor(() => standbyOf('sb-c') !== undefined, { what: 'a standby for sb-c' });
    await waitFor(() => standbyOf('sb-a') === undefined, { what: 'the oldest standby dropped' });
    expect([...standbys().keys()].sort()).toEqual(['sb-b', 'sb-c']);
    expect((await server.app('sb-a', '/')).status).toBe(200);
    expect((await coldStarts('sb-a')).at(-1)).toBe(false);
  });

  it('deleting a service removes its standby', async () => {
    expect(standbyOf('sb-c')).toBeDefined();
    expect((await server.api('DELETE', '/api/v1/services/sb-c')).status).toBeLessThan(300);
    await waitFor(() => standbyOf('sb-c') === undefined, { what: 'the deleted service\u2019s standby gone' });
    expect(standbyOf('sb-b')).toBeDefined();
  });
});
