// The console's Cron and Tasks tabs against the real platform: forms with their errors beside the
// fields, CSRF, run now, the last failure, pausing, the secret and token, the queue by status, a
// dead task's retry.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, requestRouter, startTestServer, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';

let server: TestServer;
let cookie: string;
let csrf: string;

const fieldValue = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

function fieldError(html: string, field: string): string | undefined {
  const at = html.indexOf(`data-field="${field}"`);
  if (at < 0) return undefined;
  const end = html.indexOf('data-field=', at + 12);
  return /class="field-error"[^>]*>([^<]*)</.exec(html.slice(at, end > 0 ? end : undefined))?.[1];
}

const get = async (p: string) => {
  const r = await fetch(server.adminUrl + p, { redirect: 'manual', headers: { cookie } });
  return { status: r.status, html: await r.text(), location: r.headers.get('location') };
};
const post = async (p: string, form: Record<string, string>, withCsrf = true) => {
  const body = new URLSearchParams(form);
  if (withCsrf) body.set('_csrf', csrf);
  const r = await fetch(server.adminUrl + p, { method: 'POST', redirect: 'manual', headers: { cookie }, body });
  return { status: r.status, html: await r.text(), location: r.headers.get('location') };
};

beforeAll(async () => {
  server = await startTestServer();
  await server.deploy('q', path.join(FIXTURES, 'node-queue'), { startCommand: 'node app.js' });
  const pre = await fetch(server.adminUrl + '/login');
  const preCookie = pre.headers.getSetCookie()[0]!.split(';')[0]!;
  const res = await fetch(server.adminUrl + '/login', {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: preCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: fieldValue(await pre.text(), '_csrf')!, token: TOKEN, next: '/services' }),
  });
  cookie = res.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
  csrf = fieldValue(await (await fetch(server.adminUrl + '/services', { headers: { cookie } })).text(), '_csrf')!;
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe('console: cron', () => {
  it('adds a job (errors beside the fields), runs it now, shows the last failure, pauses and deletes', async () => {
    const empty = await get('/services/q/cron');
    expect(empty.status).toBe(200);
    expect(empty.html).toContain('No cron jobs yet.');
    expect(empty.html).toMatch(/<a href="\/services\/q\/cron" aria-current="page">Cron<\/a>/);

    const bad = await post('/services/q/cron', { name: 'nightly', schedule: '0 25 * * *', timeZone: 'UTC', method: 'GET', path: '/cron', overlap: 'skip' });
    expect(bad.status).toBe(400);
    expect(fieldError(bad.html, 'schedule')).toMatch(/schedule: .*hour/);
    const badTz = await post('/services/q/cron', { name: 'nightly', schedule: '0 3 * * *', timeZone: 'Moon/Base', method: 'GET', path: '/cron', overlap: 'skip' });
    expect(fieldError(badTz.html, 'timeZone')).toMatch(/IANA time zone/);
    expect((await post('/services/q/cron', { name: 'nightly', schedule: '0 3 * * *', timeZone: 'UTC', method: 'GET', path: '/cron' }, false)).status).toBe(403);

    const added = await post('/services/q/cron', { name: 'nightly', schedule: '0 3 * * *', timeZone: 'UTC', method: 'GET', path: '/cron', overlap: 'skip' });
    expect(added.status).toBe(303);
    const list = await get('/services/q/cron');
    expect(list.html).toContain('Cron job nightly added.');
    expect(list.html).toMatch(/data-job="nightly"[\s\S]*0 3 \* \* \*[\s\S]*GET \/cron/);

    const ran = await post('/services/q/cron/nightly/run', {});
    expect([ran.status, ran.location]).toEqual([303, '/services/q/cron/nightly']);
    const history = await get('/services/q/cron/nightly');
    expect(history.html).toContain('Ran nightly: ok (200)');
    expect(history.html).toMatch(/data-run="\d+"[\s\S]*by hand[\s\S]*badge-ok">ok 200/);

    await post('/services/q/cron', { name: 'broken', schedule: '0 4 * * *', timeZone: 'UTC', method: 'POST', path: '/fail', body: '{"x":1}', overlap: 'allow' });
    await post('/services/q/cron/broken/run', {});
    const withFailure = await get('/services/q/cron');
    const row = withFailure.html.slice(withFailure.html.indexOf('data-job="broken"'));
    expect(row).toMatch(/class="small last-failure"><span class="badge badge-bad"[^>]*>failed 500/);

    await post('/services/q/cron/broken/toggle', {});
    expect((await get('/services/q/cron')).html).toMatch(/data-job="broken"[\s\S]*?badge-muted">paused/);

    const secret = await get('/services/q/cron?secret=1');
    const shown = /id="cron-secret">([^<]+)</.exec(secret.html)?.[1];
    expect(shown).toBe((await server.api('GET', '/api/v1/services/q/cron-secret')).body.secret);

    await post('/services/q/cron/broken/delete', {});
    expect((await get('/services/q/cron')).html).not.toContain('data-job="broken"');
    expect((await get('/services/q/cron/broken')).status).toBe(404);
  });
});

describe('console: tasks', () => {
  it('shows the queue by status, the token, refuses bad settings, retries a dead task', async () => {
    const bad = await post('/services/q/tasks/settings', { workers: '0' });
    expect(bad.status).toBe(400);
    expect(fieldError(bad.html, 'workers')).toMatch(/workers/);
    expect((await post('/services/q/tasks/settings', { maxAttempts: '1', minBackoffMs: '100', maxBackoffMs: '100' })).status).toBe(303);

    const page = await get('/services/q/tasks?token=1');
    const token = /id="task-token">([^<]+)</.exec(page.html)?.[1];
    expect(token).toMatch(/^cht_/);
    expect(page.html).toMatch(/http:\/\/localhost:\d+\/tasks\/q\/&lt;path&gt;/);

    const sent = await requestRouter(server.routerUrl, 'localhost', '/tasks/q/fail', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x' });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await waitFor(async () => (await server.api('GET', `/api/v1/tasks/${id}`)).body.status === 'dead', { timeoutMs: 15_000 });

    const dead = await get('/services/q/tasks?status=dead');
    expect(dead.html).toMatch(/data-stat="dead"><div class="stat-value">1</);
    expect(dead.html).toMatch(new RegExp(`data-task="${id}"[\\s\\S]*badge-bad">dead[\\s\\S]*1/1[\\s\\S]*500[\\s\\S]*POST /fail[\\s\\S]*Retry`));
    const detail = await get(`/services/q/tasks/${id}`);
    expect(detail.html).toMatch(/last status<\/th><td class="mono small">500/);

    const retried = await post(`/services/q/tasks/${id}/retry`, {});
    expect(retried.status).toBe(303);
    expect((await get(`/services/q/tasks/${id}`)).html).toContain(`Task ${id} queued again.`);
    expect((await get('/services/q/tasks/tsk_nope')).status).toBe(404);
  });
});
