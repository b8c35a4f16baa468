// The spine end to end: real server, real apps, real processes.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, instancePids, isAlive, requestRouter, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_QUEUE_LIMIT: '2' } });
});
afterAll(async () => {
  await server?.close();
});

describe('deploy and serve a Node app', () => {
  let firstPid = 0;
  let firstBoot = '';

  it('deploys through the API and goes live', async () => {
    const dep = await server.deploy('hello', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', idleTimeoutS: 1 });
    expect(dep.status).toBe('live');
    const svc = await server.api('GET', '/api/v1/services/hello');
    expect(svc.body.liveDeploymentId).toBe(dep.id);
    expect(svc.body.url).toMatch(/^http:\/\/hello\.localhost:\d+$/);
  });

  it('cold-starts on the first request and reuses the warm instance', async () => {
    const first = await server.app('hello', '/one');
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ hello: 'hello', path: '/one' });
    firstBoot = first.json.boot;
    [firstPid] = await instancePids(server, 'hello');
    const second = await server.app('hello', '/two');
    expect(second.json.boot).toBe(firstBoot);
    expect(isAlive(firstPid)).toBe(true);
  });

  it('scales to zero after the idle timeout, leaving no process', async () => {
    await waitFor(() => !isAlive(firstPid), { timeoutMs: 5000, what: 'the idle instance to stop' });
    const svc = await server.api('GET', '/api/v1/services/hello');
    expect(svc.body.instances).toEqual([]);
  });

  it('cold-starts again after scaling to zero', async () => {
    const again = await server.app('hello');
    expect(again.status).toBe(200);
    expect(again.json.boot).not.toBe(firstBoot);
  });

  it('requests arriving during a cold start share that start', async () => {
    await server.api('PATCH', '/api/v1/services/hello', { idleTimeoutS: 0.2 });
    await waitFor(async () => (await server.api('GET', '/api/v1/services/hello')).body.instances.length === 0, { what: 'scale to zero' });
    await server.api('PATCH', '/api/v1/services/hello', { idleTimeoutS: 5 });
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => server.app('hello', `/burst/${i}`)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.json.boot)).size).toBe(1);
  });
});

describe('a Python stdlib app', () => {
  it('deploys, serves and scales to zero', async () => {
    const dep = await server.deploy('py', path.join(FIXTURES, 'python-hello'), { runtime: 'python', startCommand: 'python3 app.py', idleTimeoutS: 0.5 });
    expect(dep.status).toBe('live');
    const r = await server.app('py', '/x');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ hello: 'python', path: '/x' });
    const [pid] = await instancePids(server, 'py');
    await waitFor(() => !isAlive(pid!), { timeoutMs: 5000, what: 'python instance to stop' });
  });
});

describe('errors a visitor can read', () => {
  it('404 for an unknown host, as JSON and as HTML', async () => {
    const json = await server.app('nobody');
    expect(json.status).toBe(404);
    expect(json.json.error.code).toBe('ERR_HOST_UNKNOWN');
    const html = await server.app('nobody', '/', { headers: { accept: 'text/html' } });
    expect(html.status).toBe(404);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.text).toContain('nobody.localhost');
  });

  it('502 naming the exit code and the last lines when the app exits during start', async () => {
    const dep = await server.deployFailing('exits', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
    expect(dep.status).toBe('live');
    const r = await server.app('exits');
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('ERR_APP_EXITED');
    expect(r.json.error.message).toContain('exit code 3');
    expect(r.json.error.lastLines.join('\n')).toContain('DATABASE_URL is not set');
    const html = await server.app('exits', '/', { headers: { accept: 'text/html,*/*' } });
    expect(html.status).toBe(502);
    expect(html.text).toContain('exit code 3');
    expect(html.text).toContain('DATABASE_URL is not set');
  });

  it('504 when the app never listens', async () => {
    await server.deployFailing('silent', path.join(FIXTURES, 'node-silent'), { startCommand: 'node app.js' });
    const t0 = Date.now();
    const r = await server.app('silent');
    expect(r.status).toBe(504);
    expect(r.json.error.code).toBe('ERR_START_TIMEOUT');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4500);
    const svc = await server.api('GET', '/api/v1/services/silent');
    expect(svc.body.instances).toEqual([]);
  });

  it('502 for the request in flight when the app crashes mid-request, then a fresh instance', async () => {
    await server.deploy('crashy', path.join(FIXTURES, 'node-crash-mid'), { startCommand: 'node app.js' });
    const before = await server.app('crashy');
    expect(before.status).toBe(200);
    const [beforePid] = await instancePids(server, 'crashy');
    const crashed = await server.app('crashy', '/crash').catch((err) => ({ status: 0, err }));
    // headers were already sent: the connection is cut, so the client sees a broken body
    expect([0, 200]).toContain(crashed.status);
    await waitFor(() => !isAlive(beforePid!), { what: 'crashed instance gone' });
    const after = await server.app('crashy');
    expect(after.status).toBe(200);
    expect(after.json.boot).not.toBe(before.json.boot);
  });
});

describe('capacity', () => {
  it('honours concurrency and max instances, then queues, then 503 with Retry-After', async () => {
    await server.deploy('slow', path.join(FIXTURES, 'node-slow'), { startCommand: 'node app.js', concurrency: 2, maxInstances: 1 });
    await server.app('slow', '/?ms=1');
    const t0 = Date.now();
    const replies = await Promise.all(Array.from({ length: 4 }, () => server.app('slow', '/?ms=400')));
    const elapsed = Date.now() - t0;
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.json.boot)).size).toBe(1);
    expect(Math.max(...replies.map((r) => r.json.peak))).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(780);
  });

  it('past the bounded wait queue: 503 with Retry-After, never a hang', async () => {
    await server.api('PATCH', '/api/v1/services/slow', { concurrency: 1, maxInstances: 1 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => server.app('slow', '/?ms=300')));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 503, 503]);
    const rejected = replies.find((r) => r.status === 503)!;
    expect(rejected.headers.get('retry-after')).toBe('1');
    expect(rejected.json.error.code).toBe('ERR_CAPACITY');
  });

  it('scales out to max instances', async () => {
    await server.api('PATCH', '/api/v1/services/slow', { concurrency: 1, maxInstances: 3 });
    const replies = await Promise.all(Array.from({ length: 3 }, () => server.app('slow', '/?ms=300')));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.json.boot)).size).toBe(3);
  });
});

describe('custom domains', () => {
  it('routes a service by its custom domains, follows a change of them, and forgets them on delete', async () => {
    const dep = await server.deploy('branded', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', domains: ['www.example.test'] });
    expect(dep.status).toBe('live');
    const get = (host: string) => requestRouter(server.routerUrl, host, '/');
    expect((await get('www.example.test')).json).toMatchObject({ hello: 'branded' });
    expect((await get('WWW.example.test:8080')).json).toMatchObject({ hello: 'branded' });

    const squatter = await server.api('POST', '/api/v1/services', { name: 'squatter', runtime: 'node', domains: ['www.example.test'] });
    expect(squatter.status).toBe(409);
    expect(squatter.body.error.code).toBe('ERR_DOMAIN_TAKEN');

    expect((await server.api('PATCH', '/api/v1/services/branded', { domains: ['app.example.test'] })).status).toBe(200);
    const gone = await get('www.example.test');
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('ERR_HOST_UNKNOWN');
    expect((await get('app.example.test')).json).toMatchObject({ hello: 'branded' });
    expect((await get('branded.localhost')).json).toMatchObject({ hello: 'branded' });

    expect((await server.api('DELETE', '/api/v1/services/branded')).status).toBe(204);
    expect((await get('app.example.test')).status).toBe(404);
    expect((await get('branded.localhost')).status).toBe(404);
  });
});

describe('deployments', () => {
  it('a failed build leaves the previous deployment serving; promote switches back', async () => {
    const good = await server.deploy('hello', path.join(FIXTURES, 'node-hello'));
    expect(good.status).toBe('live');
    const bad = await server.deploy('hello', path.join(FIXTURES, 'node-hello'), { buildCommand: 'echo compiling; echo "error: nope" >&2; exit 4' });
    expect(bad.status).toBe('failed');
    expect(bad.error.code).toBe('ERR_BUILD_FAILED');
    const log = await server.api('GET', `/api/v1/deployments/${bad.id}/logs`);
    expect(log.body).toContain('error: nope');
    expect((await server.api('GET', '/api/v1/services/hello')).body.liveDeploymentId).toBe(good.id);
    expect((await server.app('hello')).status).toBe(200);

    await server.api('PATCH', '/api/v1/services/hello', { buildCommand: 'echo built > built.txt' });
    const third = await server.deploy('hello', path.join(FIXTURES, 'node-hello'));
    expect(third.status).toBe('live');
    expect((await server.api('GET', `/api/v1/deployments/${good.id}`)).body.status).toBe('superseded');
    const promoted = await server.api('POST', `/api/v1/deployments/${good.id}/promote`);
    expect(promoted.status).toBe(200);
    expect(promoted.body.status).toBe('live');
    expect((await server.api('GET', '/api/v1/services/hello')).body.liveDeploymentId).toBe(good.id);
    expect((await server.api('GET', `/api/v1/deployments/${third.id}`)).body.status).toBe('superseded');
    expect((await server.app('hello')).status).toBe(200);
    const bad2 = await server.api('POST', `/api/v1/deployments/${bad.id}/promote`);
    expect(bad2.status).toBe(409);
    expect(bad2.body.error.code).toBe('ERR_DEPLOYMENT_NOT_READY');
  });

  it('streams the build log live to a follower', async () => {
    await server.api('PATCH', '/api/v1/services/hello', { buildCommand: 'for i in 1 2 3; do echo "step $i"; sleep 0.1; done' });
    const { packDirectory } = await import('../../builder/sources/index.ts');
    const archive = await packDirectory(path.join(FIXTURES, 'node-hello'));
    const res = await server.api('POST', '/api/v1/services/hello/deployments', new Uint8Array(archive), { 'content-type': 'application/gzip' });
    const stream = await fetch(`${server.adminUrl}/api/v1/deployments/${res.body.id}/logs?follow=1`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const text = await stream.text();
    expect(text).toContain('step 1');
    expect(text).toContain('step 3');
    expect(text).toMatch(/event: end\ndata: .*"status":"live"/);
  });
});

describe('restart', () => {
  it('services, deployments and the live pointer survive a restart', async () => {
    const before = (await server.api('GET', '/api/v1/services')).body.services.map((s: any) => [s.name, s.liveDeploymentId]);
    server = await server.restart();
    const after = (await server.api('GET', '/api/v1/services')).body.services.map((s: any) => [s.name, s.liveDeploymentId]);
    expect(after).toEqual(before);
    const r = await server.app('hello');
    expect(r.status).toBe(200);
  });
});
