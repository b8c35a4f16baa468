// The console's Git tab against the real platform: the push commands, the webhook (secret hidden
// until revealed, rotated by a form with its CSRF token), the repository and deploy settings, the
// last deliveries with what each did, previews under their service on the services page.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitRun } from '../../helpers/git-client.ts';
import { git, hasGit } from '../../helpers/git-repos.ts';
import { startTestServer, tempDir, TOKEN, type TestServer } from '../../helpers/server.ts';
import { genericDelivery, post } from '../../helpers/webhooks.ts';

let server: TestServer;
let dir: string;
let cookie: string;
let csrf: string;

const get = async (p: string) => {
  const r = await fetch(server.adminUrl + p, { redirect: 'manual', headers: { cookie } });
  return { status: r.status, html: await r.text(), location: r.headers.get('location') };
};
const postForm = async (p: string, form: Record<string, string>, withCsrf = true) => {
  const r = await fetch(server.adminUrl + p, { method: 'POST', redirect: 'manual', headers: { cookie }, body: new URLSearchParams({ ...form, ...(withCsrf ? { _csrf: csrf } : {}) }) });
  return { status: r.status, location: r.headers.get('location') };
};
const secretIn = (html: string) => /id="hook-secret">([^<]*)</.exec(html)?.[1];

beforeAll(async () => {
  server = await startTestServer();
  dir = tempDir('cellhost-ui-git-');
  expect((await server.api('POST', '/api/v1/services', { name: 'web', runtime: 'node', buildCommand: 'true', startCommand: 'node app.js' })).status).toBe(201);
  const pre = await fetch(server.adminUrl + '/login');
  const preCookie = pre.headers.getSetCookie()[0]!.split(';')[0]!;
  const preCsrf = /name="_csrf" value="([^"]*)"/.exec(await pre.text())![1]!;
  const res = await fetch(server.adminUrl + '/login', {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: preCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: preCsrf, token: TOKEN, next: '/services' }),
  });
  cookie = res.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
  csrf = /name="_csrf" value="([^"]*)"/.exec((await get('/services')).html)![1]!;
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the Git tab', () => {
  it('shows the push commands and the webhook, its secret only when revealed', async () => {
    const page = await get('/services/web/git');
    expect(page.status).toBe(200);
    expect(page.html).toContain(`git remote add cellhost ${server.adminUrl}/git/web.git`);
    expect(page.html).toContain('git push cellhost main');
    expect(page.html).toMatch(/id="hook-url">http:\/\/localhost:\d+\/hooks\/web</);
    expect(secretIn(page.html)).toBe('••••••••');
    expect(page.html).toContain('No deliveries yet.');
    const revealed = await get('/services/web/git?reveal=1');
    const secret = secretIn(revealed.html)!;
    expect(secret).toBe((await server.api('GET', '/api/v1/services/web/hooks?reveal=1')).body.secret);
  });

  it('saves the repository (the token never shown) and the deploy settings; a form without its CSRF token is refused', async () => {
    expect((await postForm('/services/web/git/repository', { repository: 'https://git.example.com/web.git', token: 'tok-ui-1' })).status).toBe(303);
    expect((await postForm('/services/web/git/settings', { deployBranch: 'production', previews: 'on' })).status).toBe(303);
    expect((await postForm('/services/web/git/settings', { deployBranch: 'x', previews: 'on' }, false)).status).toBe(403);
    const page = await get('/services/web/git');
    expect(page.html).toContain('https://git.example.com/web.git');
    expect(page.html).toContain('token (user x-access-token)');
    expect(page.html).not.toContain('tok-ui-1');
    expect(page.html).toContain('git push cellhost production');
    const s = (await server.api('GET', '/api/v1/services/web')).body;
    expect(s).toMatchObject({ deployBranch: 'production', previews: true });
    const refused = await postForm('/services/web/git/settings', { deployBranch: '-bad..name' });
    expect(refused.status).toBe(303);
    expect((await get('/services/web/git')).html).toContain('deploy branch: a git branch name');
    expect((await server.api('GET', '/api/v1/services/web')).body.deployBranch).toBe('production');
    expect((await postForm('/services/web/git/settings', { deployBranch: 'main', previews: 'on' })).status).toBe(303);
  });

  it('lists the last deliveries with what each did; Rotate makes a new secret', async () => {
    const before = secretIn((await get('/services/web/git?reveal=1')).html)!;
    await post(server.routerUrl, 'web', genericDelivery({ ref: 'refs/tags/v1', commit: 'b'.repeat(40) }, before));
    await post(server.routerUrl, 'web', genericDelivery({ ref: 'refs/tags/v1', commit: 'b'.repeat(40) }, 'wrong'));
    const page = await get('/services/web/git');
    expect(page.html).toMatch(/data-action="refused"[\s\S]*401 ERR_HOOK_SIGNATURE/);
    expect(page.html).toMatch(/data-action="ignored"[\s\S]*tag v1: only branches deploy/);
    const rotated = await postForm('/services/web/git/secret', {});
    expect(rotated.location).toBe('/services/web/git?reveal=1');
    const after = secretIn((await get('/services/web/git?reveal=1')).html)!;
    expect(after).toMatch(/^[0-9a-f]{64}$/);
    expect(after).not.toBe(before);
  });
});

describe('variables kept from previews', () => {
  it('the env form says whether previews get a variable; the list marks those they do not', async () => {
    expect((await postForm('/services/web/env', { name: 'SECRET', value: 's3cr3t', hasPreview: '1' })).status).toBe(303);
    expect((await postForm('/services/web/env', { name: 'GREETING', value: 'hi', hasPreview: '1', preview: 'on' })).status).toBe(303);
    const vars = (await server.api('GET', '/api/v1/services/web/env')).body.vars;
    expect(vars.map((v: any) => [v.name, v.preview])).toEqual([['GREETING', true], ['SECRET', false]]);
    const page = await get('/services/web/env');
    expect(page.html).toMatch(/data-var="SECRET"[\s\S]*?not in previews/);
    expect(page.html.slice(page.html.indexOf('data-var="GREETING"'), page.html.indexOf('data-var="SECRET"'))).not.toContain('not in previews');
  });
});

describe.skipIf(!hasGit())('previews in the console', () => {
  it('a preview is listed under its service, on the Git tab and the services page', async () => {
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    git(work, 'init', '--quiet', '-b', 'topic');
    fs.writeFileSync(path.join(work, 'app.js'), "require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT));\n");
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'one');
    const pushed = await gitRun(work, ['push', `${server.adminUrl.replace('http://', `http://x:${TOKEN}@`)}/git/web.git`, 'topic']);
    expect(pushed.code, pushed.out).toBe(0);
    const tab = await get('/services/web/git');
    expect(tab.html).toMatch(/id="previews"[\s\S]*topic--web[\s\S]*topic/);
    const list = await get('/services');
    const web = list.html.indexOf('data-service="web"');
    const preview = list.html.indexOf('data-service="topic--web"');
    expect(web).toBeGreaterThan(0);
    expect(preview).toBeGreaterThan(web);
    expect(list.html.slice(preview, preview + 400)).toContain('preview of topic');
  }, 120_000);
});
