// Async tasks on a real platform: the intake on the router (token, host, method, size), delivery
// through the router to a real app (headers, body, same id on every attempt), retries with
// backoff, dead letters and retry from them, the request timeout, the worker limit, scale from
// zero, and the queue in the API and in Prometheus.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, requestRouter, startTestServer, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';
import { seenByApp } from '../helpers/queue-app.ts';
import { sendRaw } from '../helpers/raw-socket.ts';

let server: TestServer;
let token: string;

const send = (p: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; host?: string } = {}) =>
  requestRouter(server.routerUrl, init.host ?? 'localhost', p, { method: init.method ?? 'POST', headers: { authorization: `Bearer ${token}`, ...init.headers }, body: init.body });

const task = async (id: string) => (await server.api('GET', `/api/v1/tasks/${id}`)).body;
const settled = (id: string, status: string, timeoutMs = 20_000) =>
  waitFor(async () => {
    const t = await task(id);
    return t.status === status && t;
  }, { timeoutMs, what: `task ${id} ${status}` });

/** what the app logged for each request it got (the fixture logs one JSON line per request) */
const seen = (service = 'q') => seenByApp(server.api, service);

function raw(data: string | Buffer, waitMs = 5000): Promise<string> {
  return sendRaw(Number(new URL(server.routerUrl).port), data, waitMs);
}

beforeAll(async () => {
  server = await startTestServer();
  await server.deploy('q', path.join(FIXTURES, 'node-queue'), { startCommand: 'node app.js' });
  const res = await server.api('GET', '/api/v1/services/q/task-token');
  expect(res.status).toBe(200);
  token = res.body.token;
  expect(token).toMatch(/^cht_/);
  // the same token on the next ask: it is stored (encrypted), not made anew
  expect((await server.api('GET', '/api/v1/services/q/task-token')).body.token).toBe(token);
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe('async tasks', () => {
  it('scales the service from zero for a task, and delivers method, path, query, headers and body with the task id', async () => {
    expect((await server.api('GET', '/api/v1/services/q')).body.instances).toHaveLength(0);
    const res = await send('/tasks/q/echo?x=1&y=2', { method: 'PUT', headers: { 'content-type': 'text/plain', 'x-custom': 'kept', 'x-cellhost-cron': 'forged' }, body: 'hello task' });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ service: 'q', status: 'queued' });
    expect(res.headers.get('x-cellhost-task-id')).toBe(res.json.id);
    const done = await settled(res.json.id, 'done');
    expect(done).toMatchObject({ method: 'PUT', path: '/echo?x=1&y=2', attempts: 1, lastStatusCode: 200, bodyBytes: 10 });
    const s = (await seen()).find((x) => x.task === res.json.id);
    expect(s).toMatchObject({ method: 'PUT', path: '/echo', attempt: 1, bytes: 10, cron: null });
    const logs = (await server.api('GET', '/api/v1/services/q/logs?limit=5000')).body.entries;
    expect(logs.some((e: any) => e.event === 'cold_start')).toBe(true);
  });

  it('the token is not passed on; one sent as X-Cellhost-Task-Token leaves the client\'s own Authorization for the app', async () => {
    const viaAuth = await send('/tasks/q/echo', { headers: { 'x-custom': 'a' } });
    const viaHeader = await send('/tasks/q/echo', { headers: { authorization: 'Bearer app-own-key', 'x-cellhost-task-token': token } });
    expect([viaAuth.status, viaHeader.status]).toEqual([202, 202]);
    await settled(viaAuth.json.id, 'done');
    await settled(viaHeader.json.id, 'done');
    const lines = await seen();
    expect(lines.find((x) => x.task === viaAuth.json.id)).toMatchObject({ auth: null, custom: 'a', authorized: false });
    expect(lines.find((x) => x.task === viaHeader.json.id)).toMatchObject({ auth: 'Bearer app-own-key' });
  });

  it('refuses a missing or wrong token, an unknown service, and methods other than POST, PUT, PATCH, DELETE', async () => {
    const none = await requestRouter(server.routerUrl, 'localhost', '/tasks/q/echo', { method: 'POST', body: 'x' });
    expect([none.status, none.json.error.code]).toEqual([401, 'ERR_AUTH_MISSING']);
    const wrong = await send('/tasks/q/echo', { headers: { authorization: 'Bearer cht_wrong' } });
    expect([wrong.status, wrong.json.error.code]).toEqual([401, 'ERR_AUTH_INVALID']);
    const unknown = await send('/tasks/nope/echo');
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'ERR_SERVICE_NOT_FOUND']);
    const get = await send('/tasks/q/echo', { method: 'GET' });
    expect([get.status, get.json.error.code, get.headers.get('allow')]).toEqual([405, 'ERR_METHOD_NOT_ALLOWED', 'POST, PUT, PATCH, DELETE']);
    // a token rotated: the old one stops working, the new one works
    const rotated = (await server.api('POST', '/api/v1/services/q/task-token')).body.token;
    expect(rotated).not.toBe(token);
    expect((await send('/tasks/q/echo')).status).toBe(401);
    token = rotated;
    expect((await send('/tasks/q/echo')).status).toBe(202);
  });

  it("is served only on hosts no service owns: the app's own /tasks/ paths on its host reach the app", async () => {
    const onApp = await requestRouter(server.routerUrl, 'q.localhost', '/tasks/q/echo', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(onApp.status).toBe(200);
    expect(onApp.json).toMatchObject({ ok: true, task: null });
    expect((await seen()).some((x) => x.path === '/tasks/q/echo' && x.task === null)).toBe(true);
    const byIp = await send('/tasks/q/echo', { host: '127.0.0.1:1234' });
    expect(byIp.status).toBe(202);
    const otherHost = await send('/tasks/q/echo', { host: 'elsewhere.example' });
    expect([otherHost.status, otherHost.json.error.code]).toEqual([404, 'ERR_HOST_UNKNOWN']);
  });

  it('a body of 5 MB is taken; 5 MB + 1 byte is refused with 413, declared or chunked', async () => {
    const limit = 5 * 1024 * 1024;
    const exact = await send('/tasks/q/echo', { body: Buffer.alloc(limit, 0x61), headers: { 'content-type': 'application/octet-stream' } });
    expect(exact.status).toBe(202);
    expect((await settled(exact.json.id, 'done')).bodyBytes).toBe(limit);
    expect((await seen()).find((x) => x.task === exact.json.id)?.bytes).toBe(limit);

    const head = (extra: string) => `POST /tasks/q/echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n${extra}\r\n`;
    const declared = await raw(Buffer.concat([Buffer.from(head(`Content-Length: ${limit + 1}\r\n`)), Buffer.alloc(limit + 1, 0x62)]));
    expect(declared).toMatch(/^HTTP\/1\.1 413/);
    expect(declared).toContain('ERR_BODY_TOO_LARGE');
    const chunk = Buffer.alloc(1024 * 1024, 0x63);
    const parts: Buffer[] = [Buffer.from(head('Transfer-Encoding: chunked\r\n'))];
    for (let i = 0; i < 5; i++) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    parts.push(Buffer.from('1\r\nz\r\n0\r\n\r\n'));
    const chunked = await raw(Buffer.concat(parts));
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
    // nothing of either reached the queue
    const { body } = await server.api('GET', '/api/v1/services/q/tasks?limit=500');
    expect(body.tasks.filter((t: any) => t.bodyBytes > limit)).toEqual([]);
  });

  it('retries a failing task with backoff and the same id until it succeeds', async () => {
    expect((await server.api('PATCH', '/api/v1/services/q/task-queue', { minBackoffMs: 200, maxBackoffMs: 1000 })).status).toBe(200);
    const res = await send('/tasks/q/flaky?fail=2');
    const done = await settled(res.json.id, 'done');
    expect(done).toMatchObject({ attempts: 3, lastStatusCode: 200 });
    const attempts = (await seen()).filter((x) => x.task === res.json.id);
    expect(attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 503],
      [2, 503],
      [3, 200],
    ]);
  });

  it('dead-letters after maxAttempts, says so in the service log; a retry sends it again with the same id', async () => {
    await server.api('PATCH', '/api/v1/services/q/task-queue', { maxAttempts: 3, minBackoffMs: 100, maxBackoffMs: 400 });
    const res = await send('/tasks/q/fail', { body: 'keep me' });
    const dead = await settled(res.json.id, 'dead');
    expect(dead).toMatchObject({ attempts: 3, maxAttempts: 3, lastStatusCode: 500 });
    expect(dead.finishedAt).toBeTruthy();
    const logs = (await server.api('GET', '/api/v1/services/q/logs?limit=5000')).body.entries;
    expect(logs.some((e: any) => e.event === 'task_dead' && e.message.includes(res.json.id))).toBe(true);
    const list = (await server.api('GET', '/api/v1/services/q/tasks?status=dead')).body.tasks;
    expect(list.map((t: any) => t.id)).toContain(res.json.id);

    const again = await server.api('POST', `/api/v1/tasks/${res.json.id}/retry`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: res.json.id, status: 'queued', attempts: 0 });
    await settled(res.json.id, 'dead');
    const deliveries = (await seen()).filter((x) => x.task === res.json.id);
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(deliveries.every((d) => d.bytes === 7)).toBe(true);

    const notDead = await server.api('POST', `/api/v1/tasks/${(await send('/tasks/q/ok')).json.id}/retry`);
    expect([404, 409]).toContain(notDead.status);
    expect((await server.api('GET', '/api/v1/tasks/tsk_nope')).status).toBe(404);
    await server.api('PATCH', '/api/v1/services/q/task-queue', { maxAttempts: 5 });
  });

  it('the request timeout applies to a delivery: a 504 is a failed attempt', async () => {
    await server.api('PATCH', '/api/v1/services/q', { requestTimeoutS: 1 });
    await server.api('PATCH', '/api/v1/services/q/task-queue', { maxAttempts: 2, minBackoffMs: 100, maxBackoffMs: 100 });
    try {
      const res = await send('/tasks/q/slow?ms=3000');
      const dead = await settled(res.json.id, 'dead', 30_000);
      expect(dead).toMatchObject({ attempts: 2, lastStatusCode: 504 });
      expect(dead.lastError).toContain('ERR_REQUEST_TIMEOUT');
    } finally {
      await server.api('PATCH', '/api/v1/services/q', { requestTimeoutS: 900 });
      await server.api('PATCH', '/api/v1/services/q/task-queue', { maxAttempts: 5 });
    }
  }, 60_000);

  it('delivers at most `workers` tasks at once; the queue shows depth and age, in the API and in Prometheus', async () => {
    await server.api('PATCH', '/api/v1/services/q/task-queue', { workers: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await send('/tasks/q/slow?ms=400')).json.id);
    let most = 0;
    let sawDepth = false;
    await waitFor(
      async () => {
        const queue = (await server.api('GET', '/api/v1/services/q/task-queue')).body;
        most = Math.max(most, queue.inFlight, queue.counts.running);
        if (queue.counts.queued > 0 && queue.oldestPendingAgeS !== null) sawDepth = true;
        return queue.counts.queued === 0 && queue.counts.running === 0;
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
    expect(sawDepth).toBe(true);
    for (const id of ids) expect((await task(id)).status).toBe('done');
    await server.api('PATCH', '/api/v1/services/q/task-queue', { workers: 10 });

    const metrics = await fetch(server.adminUrl + '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
    expect(metrics).toMatch(/cellhost_task_queue_depth\{service="q",status="queued"\} 0/);
    expect(metrics).toMatch(/cellhost_task_deliveries_total\{service="q",outcome="done"\} \d+/);
    expect(metrics).toMatch(/cellhost_tasks_dead_lettered_total\{service="q"\} [1-9]/);
  });

  it('lists tasks by status with a cursor, and refuses bad settings', async () => {
    const page1 = (await server.api('GET', '/api/v1/services/q/tasks?status=done&limit=3')).body;
    expect(page1.tasks).toHaveLength(3);
    expect(page1.tasks.every((t: any) => t.status === 'done')).toBe(true);
    const page2 = (await server.api('GET', `/api/v1/services/q/tasks?status=done&limit=3&cursor=${page1.nextCursor}`)).body;
    expect(page2.tasks.map((t: any) => t.id)).not.toContain(page1.tasks[0].id);
    expect((await server.api('PATCH', '/api/v1/services/q/task-queue', { workers: 0 })).status).toBe(400);
    expect((await server.api('PATCH', '/api/v1/services/q/task-queue', { minBackoffMs: 5000, maxBackoffMs: 1000 })).status).toBe(400);
    expect((await server.api('GET', '/api/v1/services/nope/tasks')).status).toBe(404);
  });

  it("a deleted service's tasks, cron jobs and secrets go with it: a new service of the same name starts from nothing", async () => {
    await server.deploy('gone', path.join(FIXTURES, 'node-queue'), { startCommand: 'node app.js' });
    const oldToken = (await server.api('GET', '/api/v1/services/gone/task-token')).body.token;
    const oldSecret = (await server.api('GET', '/api/v1/services/gone/cron-secret')).body.secret;
    expect((await server.api('POST', '/api/v1/services/gone/cron', { name: 'tick', schedule: '0 0 1 1 *' })).status).toBe(201);
    const sent = await requestRouter(server.routerUrl, 'localhost', '/tasks/gone/fail', { method: 'POST', headers: { authorization: `Bearer ${oldToken}` } });
    expect(sent.status).toBe(202);
    expect((await server.api('DELETE', '/api/v1/services/gone')).status).toBe(204);
    expect((await server.api('GET', `/api/v1/tasks/${sent.json.id}`)).status).toBe(404);
    await server.api('POST', '/api/v1/services', { name: 'gone', runtime: 'node' });
    expect((await server.api('GET', '/api/v1/services/gone/cron')).body.jobs).toEqual([]);
    expect((await server.api('GET', '/api/v1/services/gone/task-queue')).body.counts).toEqual({ queued: 0, running: 0, done: 0, dead: 0 });
    const refused = await requestRouter(server.routerUrl, 'localhost', '/tasks/gone/ok', { method: 'POST', headers: { authorization: `Bearer ${oldToken}` } });
    expect(refused.status).toBe(401);
    expect((await server.api('GET', '/api/v1/services/gone/task-token')).body.token).not.toBe(oldToken);
    expect((await server.api('GET', '/api/v1/services/gone/cron-secret')).body.secret).not.toBe(oldSecret);
  });
});
