// kill -9 of `cellhost serve` while a build with a system layer runs and a deployment with one
// serves: the restart unmounts what the dead platform left (the build's overlays and idmapped
// views, the instances' views), drops the interrupted build's layer, and serves the live layer
// again; a clean stop leaves no mount. Needs root; no network (dpkg alone makes a layer).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { parseMountsUnder } from '../../runtime/sandbox/system-layer.ts';
import { adminApi, FIXTURES, requestRouter, tempDir, waitFor, waitForBuildLine } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const dataDir = tempDir('cellhost-layer-crash-');
const runDir = `/run/cellhost-child-${process.pid}`;
let server: ChildServer | null = null;
const api = adminApi(() => server!.adminUrl);
const mountsLeft = () => parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), runDir);

afterAll(async () => {
  await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('system layers across a platform crash', () => {
  it('after kill -9 during a layer build, the restart reclaims every mount; a clean stop leaves none', async () => {
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    server = await spawnServer(dataDir, ports);
    const features = (await api('GET', '/api/v1/health')).body.isolation.features;
    expect(features.systemLayers).toBe(true);
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'python-layer')));
    await api('POST', '/api/v1/services', { name: 'layered', runtime: 'python', buildCommand: 'dpkg --version >/dev/null\necho from-the-layer > /usr/lib/cellhost-crash-probe' });
    const live = await api('POST', '/api/v1/services/layered/deployments', archive, { 'content-type': 'application/gzip' });
    const first = await waitFor(
      async () => {
        const { body } = await api('GET', `/api/v1/deployments/${live.body.id}`);
        return !['queued', 'building'].includes(body.status) && body;
      },
      { timeoutMs: 60_000, what: 'the first deployment' },
    );
    expect(first.error).toBeUndefined();
    expect(first.status).toBe('live');
    expect((await requestRouter(server.routerUrl, 'layered.localhost', '/')).status).toBe(200);

    await api('PATCH', '/api/v1/services/layered', { buildCommand: 'dpkg --version >/dev/null\necho building\nsleep 60' });
    const building = await api('POST', '/api/v1/services/layered/deployments', archive, { 'content-type': 'application/gzip' });
    await waitForBuildLine(api, building.body.id, 'building');
    // the live deployment's views and the running build's overlays and idmapped views
    const before = mountsLeft().map((m) => m.mountPoint);
    expect(before.some((m) => m.includes(`/layers/d-${live.body.id}/`))).toBe(true);
    expect(before.filter((m) => m.includes(`/layers/b-${building.body.id}/`)).length).toBe(6);

    server.proc.kill('SIGKILL');
    await server.exited;
    server = await spawnServer(dataDir, ports);
    // nothing of the dead platform's mounts; the interrupted build's layer is gone
    expect(mountsLeft().filter((m) => m.mountPoint.includes('/layers/b-'))).toEqual([]);
    expect((await api('GET', `/api/v1/deployments/${building.body.id}`)).body.status).toBe('interrupted');
    expect(fs.existsSync(path.join(dataDir, 'images', `${building.body.id}.layer`))).toBe(false);
    // the live layer serves again (its views mounted anew by the first instance)
    expect((await requestRouter(server.routerUrl, 'layered.localhost', '/')).status).toBe(200);
    expect(mountsLeft().some((m) => m.mountPoint.includes(`/layers/d-${live.body.id}/`))).toBe(true);

    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(mountsLeft()).toEqual([]);
    expect(fs.existsSync(runDir)).toBe(false);
  }, 180_000);
});
