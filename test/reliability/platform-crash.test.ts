// kill -9 of `cellhost serve` during traffic and during a build, then a restart: nothing lost,
// nothing left behind, traffic served again.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { leftoverCgroups } from '../helpers/cgroups.ts';
import { adminApi, FIXTURES, isAlive, requestRouter, tempDir, TOKEN, waitFor, waitForBuildLine } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const dataDir = tempDir('cellhost-crash-');
let server: ChildServer | null = null;
const prefix = `cellhost-child-${process.pid}`;

afterAll(async () => {
  await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const api = adminApi(() => server!.adminUrl);

describe('platform crash', () => {
  it('after kill -9 during traffic and a build, a restart keeps everything and cleans up', async () => {
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    server = await spawnServer(dataDir, ports);
    await api('POST', '/api/v1/services', { name: 'web', runtime: 'node', startCommand: 'node app.js' });
    await api('PUT', '/api/v1/services/web/env/GREETING', { value: 'persisted' });
    const tok = await api('POST', '/api/v1/tokens', { name: 'ci' });
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')));
    const first = await api('POST', '/api/v1/services/web/deployments', archive, { 'content-type': 'application/gzip' });
    await waitFor(async () => (await api('GET', `/api/v1/deployments/${first.body.id}`)).body.status === 'live', { timeoutMs: 30_000 });
    const hit = await requestRouter(server.routerUrl, 'web.localhost', '/');
    expect(hit.json.env).toBe('persisted');
    const appPid = (await api('GET', '/api/v1/services/web')).body.instances[0].pid as number;
    for (let i = 0; i < 20; i++) await requestRouter(server.routerUrl, 'web.localhost', '/');
    await new Promise((r) => setTimeout(r, 1200)); // usage is flushed every second

    await api('PATCH', '/api/v1/services/web', { buildCommand: 'echo building; sleep 60' });
    const building = await api('POST', '/api/v1/services/web/deployments', archive, { 'content-type': 'application/gzip' });
    await waitForBuildLine(api, building.body.id, 'building');
    const usageBefore = (await api('GET', '/api/v1/usage?from=1h')).body.total;

    // traffic in flight while the platform dies
    const inflight = Array.from({ length: 5 }, () => requestRouter(server!.routerUrl, 'web.localhost', '/').catch(() => null));
    server.proc.kill('SIGKILL');
    await server.exited;
    await Promise.all(inflight);
    // the sandbox dies with the platform (--die-with-parent); without it the app is orphaned in
    // its cgroup. Either way the restart must leave nothing of it.

    server = await spawnServer(dataDir, ports);
    expect(isAlive(appPid)).toBe(false);
    expect(await leftoverCgroups(prefix)).toEqual([]);

    const svc = (await api('GET', '/api/v1/services/web')).body;
    expect(svc.liveDeploymentId).toBe(first.body.id);
    const interrupted = (await api('GET', `/api/v1/deployments/${building.body.id}`)).body;
    expect(interrupted.status).toBe('interrupted');
    expect(interrupted.error.code).toBe('ERR_BUILD_INTERRUPTED');
    expect((await api('GET', '/api/v1/services/web/env?reveal=1')).body.vars[0]).toMatchObject({ name: 'GREETING', value: 'persisted' });
    const tokens = (await api('GET', '/api/v1/tokens')).body.tokens.map((t: any) => t.name);
    expect(tokens).toEqual(expect.arrayContaining(['admin', 'ci']));
    expect(tok.status).toBe(201);
    const logs = (await api('GET', '/api/v1/services/web/logs?limit=5000')).body.entries;
    expect(logs.some((e: any) => e.event === 'cold_start')).toBe(true);
    const usageAfter = (await api('GET', '/api/v1/usage?from=1h')).body.total;
    expect(usageAfter.requests).toBeGreaterThanOrEqual(usageBefore.requests);

    const again = await requestRouter(server.routerUrl, 'web.localhost', '/');
    expect(again.status).toBe(200);
    const againPid = (await api('GET', '/api/v1/services/web')).body.instances[0].pid as number;
    expect(again.json.env).toBe('persisted');

    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    await waitFor(() => !isAlive(againPid), { what: 'instance stopped on clean shutdown' });
  }, 120_000);
});
