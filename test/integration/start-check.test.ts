// A deployment goes live only once its version has started: an app that listens on the wrong
// port, or exits at start, fails its deployment with the reason (within seconds, not at the start
// timeout) and the previous version keeps serving; a good one goes live without leaving its
// check running. An app that listens elsewhere after a later change is named to its visitors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  // a start timeout far above what the tests allow: a failure within seconds is not the timeout
  server = await startTestServer({ env: { CELLHOST_START_TIMEOUT_MS: '60000' } });
});
afterAll(async () => {
  await server?.close();
});

const LISTEN = path.join(FIXTURES, 'node-listen');
const WRONG_PORT = "the app listens on :3000; this service's port is 8080 — set the port to 3000 or listen on $PORT";

const logOf = async (id: string): Promise<string> => ((await server.api('GET', `/api/v1/deployments/${id}/logs`)).body as string).replace(/\x1b\[[0-9;]*m/g, '');
const events = async (service: string) => (await server.api('GET', `/api/v1/services/${service}/logs?stream=event&limit=500`)).body.entries as any[];

/** pids of this server's processes running `node` for the service (its app, not a standby's waiting shell) */
function appProcesses(service: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!cmd[0]?.endsWith('node')) continue;
      if (!fs.readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(`/${server.cgroupPrefix}/`)) continue;
      if (fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`CELLHOST_SERVICE=${service}`)) found.push(Number(name));
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/** a console session (the UI's login form), for the pages a user would look at */
async function consolePage(p: string): Promise<string> {
  const pre = await fetch(server.adminUrl + '/login');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await pre.text())![1]!;
  const res = await fetch(server.adminUrl + '/login', {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: pre.headers.getSetCookie()[0]!.split(';')[0]!, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, token: TOKEN, next: '/services' }),
  });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
  return (await fetch(server.adminUrl + p, { headers: { cookie } })).text();
}
const html = (s: string) => s.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');

describe('the start check before a deployment goes live', () => {
  let v1 = '';

  it('a good deploy goes live, says how long its start took, and leaves no instance running for a scale-to-zero service', async () => {
    const dep = await server.deploy('ports', LISTEN, { startCommand: 'node app.js', buildCommand: 'true', minInstances: 0, idleTimeoutS: 60 });
    expect(dep.status).toBe('live');
    v1 = dep.id;
    const log = await logOf(dep.id);
    expect(log).toContain('Starting the app once before it goes live: it must accept connections on :8080');
    // the app's own output, then the check's time
    expect(log).toMatch(/listening on \*:8080\r?\n.*Started in \d+ ms, listening on :8080\r?\n.*Deployment d-\w+ is live/);
    // the check's instance is gone: no instance, no app process, no cold start counted
    expect((await server.api('GET', '/api/v1/services/ports')).body.instances).toEqual([]);
    expect(appProcesses('ports')).toEqual([]);
    expect((await events('ports')).filter((e) => e.event === 'cold_start')).toEqual([]);
    // the first visitor gets a cold start of its own
    const r = await server.app('ports');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ hello: 'listen', port: 8080 });
    expect((await events('ports')).filter((e) => e.event === 'cold_start')).toHaveLength(1);
  });

  it('a deploy whose app listens on another port fails within seconds, naming the port; the previous version keeps serving', async () => {
    const t0 = Date.now();
    // the new code listens on 3000 (as if written for another platform), the service's port is 8080
    const dep = await server.deploy('ports', LISTEN, { buildCommand: 'echo 3000 > port.txt' });
    const took = Date.now() - t0;
    expect(dep.status).toBe('failed');
    expect(dep.error).toEqual({ code: 'ERR_APP_WRONG_PORT', message: WRONG_PORT });
    // the build takes under a second; the check fails about 2 s after the app started, not at 60 s
    expect(took).toBeLessThan(10_000);
    const log = await logOf(dep.id);
    expect(log).toContain('listening on *:3000');
    expect(log).toContain(`Deployment failed: the app did not start: ${WRONG_PORT}`);
    expect(log).toContain(`The live deployment ${v1} keeps serving`);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id))).toBe(false);

    const svc = (await server.api('GET', '/api/v1/services/ports')).body;
    expect(svc.liveDeploymentId).toBe(v1);
    const r = await server.app('ports');
    expect(r.status).toBe(200);
    expect(r.json.port).toBe(8080);
    // the service's log (written in batches)
    const failed = await waitFor(async () => (await events('ports')).find((e) => e.event === 'deploy_failed' && e.deploymentId === dep.id), { what: 'the deploy_failed event' });
    expect(failed.message).toBe(`deployment ${dep.id} failed: ${WRONG_PORT}`);
    // the console: the deployment's page leads with the reason
    expect(html(await consolePage(`/deployments/${dep.id}`))).toContain(WRONG_PORT);
    // nothing of the check is left: only the live version's instance
    expect(svc.instances.map((i: any) => i.deploymentId)).toEqual([v1]);
    await waitFor(() => appProcesses('ports').length === 1, { what: 'only the live instance running' });
  });

  it('a deploy whose app exits at start fails with its exit code and last output lines', async () => {
    const dep = await server.deploy('exits', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js', buildCommand: 'true' });
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_APP_EXITED');
    expect(dep.error.message).toBe('the app exited during start (exit code 3)');
    const log = await logOf(dep.id);
    expect(log).toMatch(/booting the exit fixture\r?\nfatal: DATABASE_URL is not set\r?\n.*Deployment failed: the app did not start: the app exited during start \(exit code 3\)/);
    // nothing went live: visitors are told so, not sent to a broken app
    const r = await server.app('exits');
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('ERR_NO_DEPLOYMENT');
    expect(appProcesses('exits')).toEqual([]);
  });

  it('an app listening on loopback only is named too', async () => {
    await server.api('POST', '/api/v1/services', { name: 'loopback', runtime: 'node', startCommand: 'node app.js', buildCommand: 'true' });
    await server.api('PUT', '/api/v1/services/loopback/env/APP_HOST', { value: '127.0.0.1' });
    const dep = await server.deploy('loopback', LISTEN);
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_APP_WRONG_PORT');
    expect(dep.error.message).toMatch(/listens on 127\.0\.0\.1:8080, an address only reachable from inside its own sandbox: listen on 0\.0\.0\.0:8080/);
  });
});

describe('a source with nothing to build', () => {
  it("goes live as uploaded (no package.json, no build command: the README's first deploy), its app in the sandbox", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bare-'));
    // `cellhost serve` runs under umask 077 (what it makes is its own); the test server shares
    // this worker's, so the deploy runs under the serve's
    const umask = process.umask(0o077);
    try {
      fs.writeFileSync(path.join(dir, 'app.js'), "require('http').createServer((q, s) => s.end('bare ' + process.getuid())).listen(process.env.PORT);\n");
      const dep = await server.deploy('bare', dir, { startCommand: 'node app.js' });
      const log = await logOf(dep.id);
      expect(dep.status, log).toBe('live');
      expect(log).toContain('No build command: the source is the image');
      const res = await server.app('bare', '/');
      expect(res.status).toBe(200);
      const uid = (await server.api('GET', '/api/v1/services/bare')).body.uid as number | null;
      // as the service's own uid where the host sandboxes apps
      expect(res.text).toBe(`bare ${uid ?? process.getuid!()}`);
    } finally {
      process.umask(umask);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an app that listens elsewhere after a later change', () => {
  it('its visitors get a 502 naming the port within a couple of seconds, as do its log and the console', async () => {
    // the live version started fine (its start check passed); an env change makes its next
    // instances listen on 3000. No warm instance of the old version is left to answer meanwhile.
    expect((await server.deploy('later', LISTEN, { startCommand: 'node app.js', buildCommand: 'true' })).status).toBe('live');
    expect((await server.api('PUT', '/api/v1/services/later/env/APP_PORT', { value: '3000' })).status).toBeLessThan(300);
    const t0 = Date.now();
    const page = await server.app('later', '/', { headers: { accept: 'text/html' } });
    const took = Date.now() - t0;
    expect(page.status).toBe(502);
    expect(page.headers.get('x-cellhost-error')).toBe('ERR_APP_WRONG_PORT');
    expect(html(page.text)).toContain(WRONG_PORT);
    expect(took).toBeLessThan(5000);

    const json = await server.app('later');
    expect(json.status).toBe(502);
    expect(json.json.error.code).toBe('ERR_APP_WRONG_PORT');
    expect(json.json.error.message).toContain(WRONG_PORT);

    const failed = await waitFor(async () => (await events('later')).find((e) => e.event === 'start_failed'), { what: 'the start_failed event' });
    expect(failed.message).toContain(WRONG_PORT);
    expect(html(await consolePage('/services/later'))).toMatch(new RegExp(`id="start-failure"[\\s\\S]*${WRONG_PORT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});
