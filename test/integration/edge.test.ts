// Fetch-handler (edge) services: a module exporting a Web-standard fetch handler, bundled with
// esbuild at build time and served by cellhost's edge host, which runs in the service's sandbox
// before any request (its standby, the module compiled but not run) and evaluates the module on
// the first request. Real builds, real
// sandboxes, real cgroups.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeHostArgs } from '../helpers/edge-host.ts';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

const root = process.getuid?.() === 0;
if (!root && process.env.CI === 'true') throw new Error('edge tests need root (sandbox and cgroups) in CI');

let server: TestServer;

async function events(service: string): Promise<any[]> {
  return (await server.api('GET', `/api/v1/services/${service}/logs?limit=5000&stream=event`)).body.entries;
}

/** this server's edge hosts by service: their own arguments */
function edgeStandbys(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = edgeHostArgs(pid);
      if (!argv) continue;
      if (!fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${server.cgroupPrefix}/`)) continue;
      const service = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('CELLHOST_SERVICE='))?.slice('CELLHOST_SERVICE='.length);
      if (service) found.set(service, argv);
    } catch {
      // gone while we looked
    }
  }
  return found;
}

describe.skipIf(!root)('edge services', () => {
  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_STANDBYS: '8' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('export default { fetch }: the edge host waits in the sandbox with the module compiled and not run, then serves it with the service\'s variables as env', async () => {
    await server.api('POST', '/api/v1/services', { name: 'ep', runtime: 'edge' });
    await server.api('PUT', '/api/v1/services/ep/env/GREETING', { value: 'hi' });
    const dep = await server.deploy('ep', path.join(FIXTURES, 'edge-plain'));
    expect(dep.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toContain('esbuild" index.mjs --bundle');
    expect(log).toContain('cellhost-edge .cellhost/edge.mjs');
    // its standby is the edge host itself, already running, holding the module until it is told to go
    const standby = await waitFor(() => edgeStandbys().get('ep'), { what: 'the edge host waiting as a standby' });
    expect(standby).toEqual(['--control-fd', expect.stringMatching(/^\d+$/), '--held', '/app/.cellhost/edge.mjs']);

    const res = await server.app('ep', '/');
    expect(res.status).toBe(200);
    // the service's variables, with the cron secret every app gets to check its cron requests;
    // none of the platform's (PORT, PATH, the other CELLHOST_* ones)
    expect(res.json).toMatchObject({ hello: 'edge', greeting: 'hi', host: 'ep.localhost' });
    expect([...res.json.envKeys].sort()).toEqual(['CELLHOST_CRON_SECRET', 'GREETING']);
    const starts = (await events('ep')).filter((e) => e.event === 'cold_start');
    expect(starts.at(-1).fields.standby).toBe(true);
    // a request with a body, streamed through the Request
    const echo = await server.app('ep', '/echo', { method: 'POST', body: 'ping' } as never);
    expect(echo.status).toBe(200);
    expect(echo.text).toBe('ping');
    expect(echo.headers.get('x-method')).toBe('POST');
  });

  it('a Hono app (export default app), its dependencies installed by npm and bundled', async () => {
    await server.api('POST', '/api/v1/services', { name: 'hono', runtime: 'edge' });
    await server.api('PUT', '/api/v1/services/hono/env/GREETING', { value: 'from env' });
    const dep = await server.deploy('hono', path.join(FIXTURES, 'edge-hono'));
    expect(dep.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toContain('npm install');
    // the build compiled the bundle into V8's code cache, and the cold start used it
    expect(log).toMatch(/edge: code cache of \.cellhost\/edge\.mjs written \(\d+ bytes\)/);
    const res = await server.app('hono', '/');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ hello: 'hono', greeting: 'from env' });
    const stdout = (await server.api('GET', '/api/v1/services/hono/logs?limit=100&stream=stdout')).body.entries.map((e: any) => e.message);
    expect(stdout).toContainEqual(expect.stringMatching(/^edge: \/app\/\.cellhost\/edge\.mjs serving on \d+ \(compiled from its code cache\)$/));
    expect((await server.app('hono', '/nowhere')).status).toBe(404);
  });

  it('a ReadableStream response reaches the client chunk by chunk', async () => {
    const url = new URL(server.routerUrl);
    const seen: { at: number; text: string }[] = [];
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: url.hostname, port: url.port, path: '/stream', headers: { host: 'ep.localhost' }, agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.setEncoding('utf8');
        res.on('data', (text: string) => seen.push({ at: performance.now() - t0, text }));
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    expect(seen.map((s) => s.text).join('')).toBe('chunk 0\nchunk 1\nchunk 2\n');
    expect(seen.length).toBeGreaterThanOrEqual(3);
    // the first chunk came long before the last: nothing buffered the stream
    expect(seen.at(-1)!.at - seen[0]!.at).toBeGreaterThan(400);
  });

  it('waitUntil keeps the instance busy, and billed, until its promise settles', async () => {
    const billed = async () => (await server.api('GET', '/api/v1/usage?from=1h&service=ep')).body.total.billedMs as number;
    await new Promise((r) => setTimeout(r, 1100));
    const before = await billed();
    const t0 = performance.now();
    const res = await server.app('ep', '/wait?ms=1500');
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(1000);
    const busy = (await server.api('GET', '/api/v1/services/ep')).body.instances;
    expect(busy.map((i: any) => i.inflight)).toEqual([1]);
    await waitFor(async () => (await server.api('GET', '/api/v1/services/ep')).body.instances.every((i: any) => i.inflight === 0), { what: 'the background work done' });
    expect(performance.now() - t0).toBeGreaterThan(1400);
    const stdout = (await server.api('GET', '/api/v1/services/ep/logs?limit=100&stream=stdout')).body.entries.map((e: any) => e.message);
    expect(stdout).toContain('background work done after 1500 ms');
    // the meter writes every second
    await new Promise((r) => setTimeout(r, 1100));
    expect((await billed()) - before).toBeGreaterThanOrEqual(1450);
  });

  it('a module that throws while it is imported: its deploy fails its start check naming the error; live, a start without its variable is a 502 naming it', async () => {
    const failed = await server.deploy('throws', path.join(FIXTURES, 'edge-throws'), { runtime: 'edge', idleTimeoutS: 0.2 });
    expect(failed.status).toBe('failed');
    expect(failed.error.code).toBe('ERR_APP_EXITED');
    const log = (await server.api('GET', `/api/v1/deployments/${failed.id}/logs`)).body as string;
    expect(log).toContain('cannot start: DATABASE_URL is not set');

    await server.api('PUT', '/api/v1/services/throws/env/DATABASE_URL', { value: 'postgres://db' });
    const dep = await server.deploy('throws', path.join(FIXTURES, 'edge-throws'));
    expect(dep.status).toBe('live');
    expect((await server.app('throws', '/')).text).toBe('connected');
    // scaled to zero, the variable goes: the live version's next instance throws at its import
    await waitFor(async () => (await server.api('GET', '/api/v1/services/throws')).body.instances.length === 0, { what: 'scaled to zero' });
    expect((await server.api('DELETE', '/api/v1/services/throws/env/DATABASE_URL')).status).toBe(204);
    const res = await server.app('throws', '/');
    expect(res.status).toBe(502);
    expect(res.json.error.code).toBe('ERR_APP_EXITED');
    expect(res.json.error.lastLines.join('\n')).toContain('cannot start: DATABASE_URL is not set');
    expect((await events('throws')).some((e) => e.event === 'start_failed')).toBe(true);
  });

  it('a TypeScript entry is compiled and bundled at build time', async () => {
    const dep = await server.deploy('ts', path.join(FIXTURES, 'edge-ts'), { runtime: 'edge' });
    expect(dep.status).toBe('live');
    const res = await server.app('ts', '/typed');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ lang: 'ts', message: 'hello from /typed', greeting: null });
  });

  it('a node service whose entry exports a fetch handler and never listens is served the same way', async () => {
    const dep = await server.deploy('detected', path.join(FIXTURES, 'edge-plain'), { runtime: 'node' });
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toContain('Start command (the node default for this image): cellhost-edge .cellhost/edge.mjs');
    const res = await server.app('detected', '/');
    expect(res.status).toBe(200);
    expect(res.json.hello).toBe('edge');
  });
});
