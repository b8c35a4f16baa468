// Cron jobs through the API on a real platform (every answer checked against the OpenAPI
// document): a seconds-field job runs in real time through the router to a real app with its
// headers and secret, a failing job's last failure and event, changes, validation, deletion.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';
import { seenByApp } from '../helpers/queue-app.ts';

let server: TestServer;

const seen = () => seenByApp(server.api);

beforeAll(async () => {
  server = await startTestServer();
  await server.deploy('q', path.join(FIXTURES, 'node-queue'), { startCommand: 'node app.js' });
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe('cron API', () => {
  it('a seconds-field job runs on time through the router, with its name, scheduled time and the secret', async () => {
    const created = await server.api('POST', '/api/v1/services/q/cron', { name: 'tick', schedule: '* * * * * *', method: 'POST', path: '/cron', body: '{"n":1}' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'tick', timeZone: 'UTC', method: 'POST', contentType: null, overlap: 'skip', enabled: true });
    // every second: a second that begins while the job is created and read back has its run under way already
    expect(created.body.lastRun === null || (created.body.lastRun.trigger === 'schedule' && created.body.lastRun.status === 'running')).toBe(true);
    await waitFor(async () => (await server.api('GET', '/api/v1/services/q/cron/tick/runs')).body.runs.filter((r: any) => r.status === 'ok').length >= 2, { timeoutMs: 10_000 });
    expect((await server.api('PATCH', '/api/v1/services/q/cron/tick', { enabled: false })).body.nextRunAt).toBeNull();
    const runs = (await server.api('GET', '/api/v1/services/q/cron/tick/runs')).body.runs;
    for (const r of runs.filter((x: any) => x.status === 'ok')) {
      expect(r).toMatchObject({ trigger: 'schedule', statusCode: 200, body: '{"cron":"tick","authorized":true}' });
      // on time: started within a second of its scheduled time
      expect(Date.parse(r.startedAt) - Date.parse(r.scheduledAt)).toBeLessThan(1000);
    }
    const app = (await seen()).filter((s) => s.cron === 'tick');
    expect(app.length).toBeGreaterThanOrEqual(2);
    expect(app.every((s) => s.method === 'POST' && s.authorized && s.bytes === 7 && s.scheduledAt)).toBe(true);
    expect(new Set(app.map((s) => s.scheduledAt)).size).toBe(app.length);
    // the runs are requests like any other: metered
    const metrics = await server.api('GET', '/api/v1/services/q/metrics?window=1h');
    expect(metrics.body.points.reduce((n: number, p: any) => n + p.requests, 0)).toBeGreaterThanOrEqual(2);
  });

  it("a failing job: its run says why, the job keeps its last failure, the service's log has the event", async () => {
    await server.api('POST', '/api/v1/services/q/cron', { name: 'broken', schedule: '0 0 1 1 *', path: '/fail' });
    const run = await server.api('POST', '/api/v1/services/q/cron/broken/run');
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ trigger: 'manual', scheduledAt: null, status: 'failed', statusCode: 500 });
    expect(run.body.body).toContain('"failed":true');
    const job = (await server.api('GET', '/api/v1/services/q/cron/broken')).body;
    expect(job.lastFailure).toMatchObject({ id: run.body.id, statusCode: 500 });
    const logs = (await server.api('GET', '/api/v1/services/q/logs?limit=5000')).body.entries;
    expect(logs.some((e: any) => e.event === 'cron_failed' && e.message.includes('broken') && e.message.includes('500'))).toBe(true);
  });

  it('changes: a new schedule counts from now; validation names the field; unknown jobs and services are 404', async () => {
    await server.api('POST', '/api/v1/services/q/cron', { name: 'daily', schedule: '0 3 * * *', timeZone: 'Asia/Tokyo' });
    const changed = await server.api('PATCH', '/api/v1/services/q/cron/daily', { schedule: '30 4 * * *' });
    expect(changed.status).toBe(200);
    expect(new Date(changed.body.nextRunAt).getUTCMinutes()).toBe(30);
    expect(new Date(changed.body.nextRunAt).getUTCHours()).toBe(19); // 04:30 in Tokyo
    const bad = await server.api('PATCH', '/api/v1/services/q/cron/daily', { schedule: '* * *' });
    expect([bad.status, bad.body.error.code, bad.body.error.details.field]).toEqual([400, 'ERR_VALIDATION', 'schedule']);
    const unknownField = await server.api('POST', '/api/v1/services/q/cron', { name: 'x', schedule: '* * * * *', every: 5 });
    expect(unknownField.status).toBe(400);
    const badName = await server.api('POST', '/api/v1/services/q/cron', { name: 'Bad_Name', schedule: '* * * * *' });
    expect([badName.status, badName.body.error.details?.field]).toEqual([400, 'name']);
    const dup = await server.api('POST', '/api/v1/services/q/cron', { name: 'daily', schedule: '* * * * *' });
    expect([dup.status, dup.body.error.code]).toEqual([409, 'ERR_CRON_EXISTS']);
    expect((await server.api('GET', '/api/v1/services/q/cron/nope')).status).toBe(404);
    expect((await server.api('GET', '/api/v1/services/nope/cron')).status).toBe(404);
    expect((await server.api('DELETE', '/api/v1/services/q/cron/daily')).status).toBe(204);
    expect((await server.api('GET', '/api/v1/services/q/cron')).body.jobs.map((j: any) => j.name)).toEqual(['broken', 'tick']);
  });

  it('the cron secret: the app has it as CELLHOST_CRON_SECRET; a new one replaces instances and the old stops matching', async () => {
    const secret = (await server.api('GET', '/api/v1/services/q/cron-secret')).body.secret;
    expect(secret).toMatch(/^chc_/);
    const rotated = (await server.api('POST', '/api/v1/services/q/cron-secret')).body.secret;
    expect(rotated).not.toBe(secret);
    await server.api('PATCH', '/api/v1/services/q/cron/broken', { path: '/cron' });
    await waitFor(async () => (await server.api('POST', '/api/v1/services/q/cron/broken/run')).body.status === 'ok', { timeoutMs: 15_000, what: 'a run the app accepts with the new secret' });
  });
});
