// The web UI against the real platform: login and session cookie, CSRF on forms and on the
// API's cookie auth, the deploy form's errors beside their fields, env masking, pages and streams.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../../builder/sources/index.ts';
import { FIXTURES, startTestServer, TOKEN, type TestServer } from '../../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_MAX_UPLOAD_BYTES: String(256 * 1024) } });
});
afterAll(async () => {
  await server?.close();
  if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
});

interface Browser {
  cookie: string;
  csrf: string;
  get(p: string, headers?: Record<string, string>): Promise<{ status: number; html: string; headers: Headers }>;
  post(p: string, form: Record<string, string> | FormData, opts?: { csrf?: string | null; headers?: Record<string, string> }): Promise<{ status: number; html: string; headers: Headers }>;
}

const loginCookieAndCsrf = async () => {
  const res = await fetch(server.adminUrl + '/login');
  const html = await res.text();
  return { cookie: res.headers.getSetCookie()[0]!.split(';')[0]!, csrf: fieldValue(html, '_csrf')! };
};

function fieldValue(html: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
}

/** the error shown under a form field */
function fieldError(html: string, field: string): string | undefined {
  const at = html.indexOf(`data-field="${field}"`);
  if (at < 0) return undefined;
  const block = html.slice(at, html.indexOf('data-field=', at + 12) > 0 ? html.indexOf('data-field=', at + 12) : undefined);
  const m = /class="field-error"[^>]*>([^<]*)</.exec(block);
  return m ? decode(m[1]!) : undefined;
}

const decode = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

async function login(token = TOKEN, headers: Record<string, string> = {}): Promise<Browser> {
  const pre = await loginCookieAndCsrf();
  const res = await fetch(server.adminUrl + '/login', {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: pre.cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ _csrf: pre.csrf, token, next: '/services' }),
  });
  expect(res.status).toBe(303);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
  const page = await fetch(server.adminUrl + '/services', { headers: { cookie } });
  const csrf = fieldValue(await page.text(), '_csrf')!;
  const b: Browser = {
    cookie,
    csrf,
    async get(p, h = {}) {
      const r = await fetch(server.adminUrl + p, { redirect: 'manual', headers: { cookie, ...h } });
      return { status: r.status, html: await r.text(), headers: r.headers };
    },
    async post(p, form, opts = {}) {
      const body = form instanceof FormData ? form : new URLSearchParams(form);
      const token = opts.csrf === undefined ? csrf : opts.csrf;
      if (token !== null) body.set('_csrf', token);
      const r = await fetch(server.adminUrl + p, { method: 'POST', redirect: 'manual', headers: { cookie, ...opts.headers }, body });
      return { status: r.status, html: await r.text(), headers: r.headers };
    },
  };
  return b;
}

describe('login and session', () => {
  it('pages need a session: GET redirects to the login with the way back, POST to the login', async () => {
    const res = await fetch(server.adminUrl + '/services/hello/env?reveal=all', { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/login?next=%2Fservices%2Fhello%2Fenv%3Freveal%3Dall');
    // a complete deploy form, as a logged-in user would send it: refused, and nothing created
    const form = new FormData();
    form.set('name', 'no-session');
    form.set('runtime', 'node');
    form.set('startCommand', 'node app.js');
    form.set('archive', new Blob([new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')))], { type: 'application/gzip' }), 'app.tar.gz');
    const post = await fetch(server.adminUrl + '/deploy', { method: 'POST', redirect: 'manual', body: form });
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toBe('/login');
    const created = await server.api('GET', '/api/v1/services/no-session');
    expect(created.status).toBe(404);
    expect(created.body.error.code).toBe('ERR_SERVICE_NOT_FOUND');
    // a made-up session id is no session
    const forged = await fetch(server.adminUrl + '/services', { redirect: 'manual', headers: { cookie: 'cellhost_session=forged' } });
    expect(forged.status).toBe(302);
  });

  it('a wrong token is refused with a message and no session', async () => {
    const pre = await loginCookieAndCsrf();
    const res = await fetch(server.adminUrl + '/login', {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: pre.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: pre.csrf, token: 'not-a-token' }),
    });
    expect(res.status).toBe(401);
    expect(fieldError(await res.text(), 'token')).toContain('not valid');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('cellhost_session='))).toBe(false);
  });

  it('the login form itself needs its CSRF pair (cookie + field)', async () => {
    const pre = await loginCookieAndCsrf();
    for (const [cookie, csrf] of [
      ['', pre.csrf],
      [pre.cookie, 'x'.repeat(pre.csrf.length)],
      [pre.cookie, ''],
    ]) {
      const res = await fetch(server.adminUrl + '/login', {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, token: TOKEN }),
      });
      expect(res.status).toBe(403);
      expect(res.headers.getSetCookie().some((c) => c.startsWith('cellhost_session='))).toBe(false);
    }
  });

  it('the session cookie is HttpOnly, SameSite=Strict, Path=/; Secure when the request came over https', async () => {
    const pre = await loginCookieAndCsrf();
    const send = (headers: Record<string, string>) =>
      fetch(server.adminUrl + '/login', {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: pre.cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ _csrf: pre.csrf, token: TOKEN, next: '//evil.example/x' }),
      });
    const plain = await send({});
    const cookie = plain.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie.split(';')[0]!.length).toBeGreaterThan(40);
    // an open redirect is not possible through ?next
    expect(plain.headers.get('location')).toBe('/services');
    const https = await send({ 'x-forwarded-proto': 'https' });
    expect(https.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))).toMatch(/; Secure/);
  });

  it('pages carry no-store and a CSP without inline script', async () => {
    const b = await login();
    const res = await b.get('/services');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.html).not.toMatch(/<script>(?!<\/script>)/);
    const css = await fetch(server.adminUrl + '/static/app.css');
    expect(css.headers.get('content-type')).toContain('text/css');
    expect((await fetch(server.adminUrl + '/static/app.js')).status).toBe(200);
  });

  it('logout needs the CSRF token, then ends the session', async () => {
    const b = await login();
    expect((await b.post('/logout', {}, { csrf: null })).status).toBe(403);
    expect((await b.get('/services')).status).toBe(200);
    const out = await b.post('/logout', {});
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    expect(out.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))).toMatch(/Max-Age=0/);
    expect((await b.get('/services')).status).toBe(302);
  });

  it('revoking the token ends its sessions', async () => {
    const created = await server.api('POST', '/api/v1/tokens', { name: 'short-lived' });
    const b = await login(created.body.token);
    expect((await b.get('/services')).html).toContain('short-lived');
    await server.api('DELETE', `/api/v1/tokens/${created.body.id}`);
    expect((await b.get('/services')).status).toBe(302);
  });
});

describe('CSRF', () => {
  it('a form post without the token, or with a wrong one, is refused with 403 before it acts', async () => {
    await server.api('POST', '/api/v1/services', { name: 'csrf-target', runtime: 'node' });
    const b = await login();
    const missing = await b.post('/services/csrf-target/env', { name: 'EVIL', value: '1' }, { csrf: null });
    expect(missing.status).toBe(403);
    expect(missing.html).toContain('ERR_CSRF');
    const wrong = await b.post('/services/csrf-target/env', { name: 'EVIL', value: '1' }, { csrf: 'A'.repeat(43) });
    expect(wrong.status).toBe(403);
    // another session's token is not this session's
    const other = await login();
    expect((await b.post('/services/csrf-target/env', { name: 'EVIL', value: '1' }, { csrf: other.csrf })).status).toBe(403);
    expect((await server.api('GET', '/api/v1/services/csrf-target/env')).body.vars).toEqual([]);
    const ok = await b.post('/services/csrf-target/env', { name: 'GOOD', value: '1' });
    expect(ok.status).toBe(303);
    expect((await server.api('GET', '/api/v1/services/csrf-target/env')).body.vars.map((v: { name: string }) => v.name)).toEqual(['GOOD']);
  });

  it('the API takes the session cookie; a write with it needs X-CSRF-Token', async () => {
    const b = await login();
    const read = await fetch(server.adminUrl + '/api/v1/services', { headers: { cookie: b.cookie } });
    expect(read.status).toBe(200);
    const put = (headers: Record<string, string>) =>
      fetch(server.adminUrl + '/api/v1/services/csrf-target/env/FROM_API', { method: 'PUT', headers: { cookie: b.cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ value: 'v' }) });
    const refused = await put({});
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.code).toBe('ERR_CSRF');
    expect((await put({ 'x-csrf-token': b.csrf })).status).toBe(200);
    // no cookie, no bearer: still 401
    expect((await fetch(server.adminUrl + '/api/v1/services')).status).toBe(401);
  });
});

describe('Manual Deploy form', () => {
  it('shows every error next to its field with the API message, and keeps what was typed', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'Bad_Name');
    form.set('runtime', 'cobol');
    form.set('buildCommand', 'make\nmake install');
    form.set('port', 'abc');
    form.set('memoryMb', '50');
    form.set('env', 'GOOD=1\nno equals sign');
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(400);
    expect(fieldError(res.html, 'name')).toMatch(/^name: lowercase letters/);
    expect(fieldError(res.html, 'runtime')).toBe('runtime: runtime must be one of python, node, go, rust, edge');
    expect(fieldError(res.html, 'port')).toBe('port: a whole number');
    expect(fieldError(res.html, 'memoryMb')).toMatch(/^memoryMb: .*128/);
    expect(fieldError(res.html, 'env')).toBe('env: line 2: expected KEY=VALUE');
    expect(fieldError(res.html, 'archive')).toMatch(/^source: choose a tar.gz or zip archive/);
    expect(fieldError(res.html, 'startCommand')).toBeUndefined();
    expect(res.html).toContain('value="Bad_Name"');
    expect(res.html).toContain('make\nmake install</textarea>');
    expect((await server.api('GET', '/api/v1/services/Bad_Name')).status).toBe(404);
  });

  it('a file that is not an archive is refused at the upload field', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'not-archive');
    form.set('runtime', 'node');
    form.set('archive', new Blob(['just text, not a tarball']), 'app.txt');
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(415);
    expect(fieldError(res.html, 'archive')).toContain('neither a tar.gz nor a zip');
    expect((await server.api('GET', '/api/v1/services/not-archive')).status).toBe(404);
  });

  it('a git source cellhost does not clone is refused at the git field, and the new service is not left behind', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'local-git');
    form.set('runtime', 'node');
    form.set('git', path.join(FIXTURES, 'node-hello'));
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(400);
    expect(fieldError(res.html, 'git')).toMatch(/is not allowed: local repositories are off/);
    expect((await server.api('GET', '/api/v1/services/local-git')).status).toBe(404);
  });

  it('an upload over the limit is refused at the upload field', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'too-big');
    form.set('runtime', 'node');
    form.set('archive', new Blob([Buffer.alloc(2 * 1024 * 1024, 1)]), 'big.tar.gz');
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(413);
    expect(fieldError(res.html, 'archive')).toContain('larger than the limit');
  });

  it('a reserved variable name is the env field’s error, and the new service is not left behind', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'reserved-env');
    form.set('runtime', 'node');
    form.set('env', 'PORT=9999');
    form.set('archive', new Blob([new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')))]), 'app.tar.gz');
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(400);
    expect(fieldError(res.html, 'env')).toContain('"PORT" is reserved');
    expect((await server.api('GET', '/api/v1/services/reserved-env')).status).toBe(404);
  });

  it('deploys: creates the service with the form’s settings and env, queues the build, shows its page', async () => {
    const b = await login();
    const form = new FormData();
    form.set('name', 'form-hello');
    form.set('runtime', 'node');
    form.set('buildCommand', "printf '\\033[31mred\\033[0m <b>not bold</b>\\n'");
    form.set('startCommand', 'node app.js');
    form.set('port', '8080');
    form.set('memoryMb', '192');
    form.set('env', 'GREETING="quoted value"\nexport OTHER=x');
    form.set('archive', new Blob([new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')))], { type: 'application/gzip' }), 'app.tar.gz');
    const res = await b.post('/deploy', form);
    expect(res.status).toBe(303);
    const id = /^\/deployments\/(d-[0-9a-f]+)$/.exec(res.headers.get('location')!)![1]!;
    const dep = await server.waitDeployment(id);
    expect(dep.status).toBe('live');
    const svc = (await server.api('GET', '/api/v1/services/form-hello')).body;
    expect(svc).toMatchObject({ runtime: 'node', startCommand: 'node app.js', port: 8080, memoryMb: 192 });
    expect((await server.app('form-hello')).json.env).toBe('quoted value');

    const page = await b.get(`/deployments/${id}`);
    expect(page.html).toContain('<span class="a-f1">red</span> &lt;b&gt;not bold&lt;/b&gt;');
    expect(page.html).toContain('is live');
    expect(page.html).toContain('data-active="0"');
    // the redirect's flash shows once
    expect(page.html).toContain(`Deployment ${id} of form-hello queued.`);
    expect((await b.get(`/deployments/${id}`)).html).not.toContain('queued.</p>');

    // the finished build's stream: the whole log as HTML, then the end with the final status
    const stream = await fetch(server.adminUrl + `/deployments/${id}/log/stream`, { headers: { cookie: b.cookie } });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const sse = await stream.text();
    expect(sse).toContain('event: html');
    expect(sse).toContain(JSON.stringify('<span class="a-f1">red</span> &lt;b&gt;not bold&lt;/b&gt;').slice(1, -1));
    expect(sse).toMatch(/event: end\ndata: \{"status":"live"\}/);

    // a second deploy of the same name updates its settings and keeps the other variables
    const again = new FormData();
    again.set('name', 'form-hello');
    again.set('runtime', 'node');
    again.set('startCommand', 'node app.js');
    again.set('memoryMb', '256');
    again.set('env', 'THIRD=3');
    // a source that is allowed but fails at the clone (nothing listens there, in the sandbox or not)
    again.set('git', 'https://127.0.0.1:9/none.git');
    const second = await b.post('/deploy', again);
    expect(second.status).toBe(303);
    expect((await server.api('GET', '/api/v1/services/form-hello')).body.memoryMb).toBe(256);
    const names = (await server.api('GET', '/api/v1/services/form-hello/env')).body.vars.map((v: { name: string }) => v.name);
    expect(names).toEqual(['GREETING', 'OTHER', 'THIRD']);
    await server.waitDeployment(/(d-[0-9a-f]+)$/.exec(second.headers.get('location')!)![1]!);
  });
});

describe('service settings, delete, tokens', () => {
  const form = (over: Record<string, string> = {}) => ({
    memoryMb: '1024',
    port: '8080',
    minInstances: '0',
    maxInstances: '10',
    concurrency: '100',
    idleTimeoutS: '5m',
    requestTimeoutS: '15m',
    buildCommand: '',
    startCommand: '',
    healthPath: '',
    rootDir: '',
    plan: 'hobby',
    // a ticked checkbox; unticked, a browser sends nothing for it
    prewarm: 'on',
    ...over,
  });

  it('the settings page shows the settings, the CPU the memory buys, and a tab among the service’s', async () => {
    await server.api('POST', '/api/v1/services', { name: 'tunable', runtime: 'node', memoryMb: 1024 });
    const b = await login();
    const page = await b.get('/services/tunable/settings');
    expect(page.status).toBe(200);
    expect(page.html).toContain('href="/services/tunable/settings" aria-current="page"');
    expect(page.html).toMatch(/<input id="f-memoryMb" name="memoryMb"[^>]*value="1024"[^>]*data-cpu-output="cpu-cap"/);
    expect(page.html).toContain('<output id="cpu-cap" for="f-memoryMb">57.9 %</output>');
    expect(page.html).toMatch(/name="idleTimeoutS" value="5m"/);
    expect(page.html).toMatch(/name="requestTimeoutS" value="15m"/);
    expect(page.html).toMatch(/<input id="f-prewarm" name="prewarm" type="checkbox" checked/);
    expect(page.html).toContain('href="/tokens"');
  });

  it('a bad save shows each error beside its field, keeps what was typed, and changes nothing', async () => {
    const b = await login();
    const res = await b.post('/services/tunable/settings', form({ memoryMb: '50', idleTimeoutS: 'soon', minInstances: '5', maxInstances: '2', healthPath: 'no-slash' }));
    expect(res.status).toBe(400);
    expect(fieldError(res.html, 'memoryMb')).toMatch(/^memoryMb: .*128/);
    expect(fieldError(res.html, 'idleTimeoutS')).toContain('a duration such as 30s, 5m or 1h30m');
    expect(fieldError(res.html, 'minInstances')).toBe('minInstances cannot exceed maxInstances');
    expect(fieldError(res.html, 'healthPath')).toContain('a path starting with /');
    expect(res.html).toMatch(/name="idleTimeoutS" value="soon"/);
    expect((await server.api('GET', '/api/v1/services/tunable')).body).toMatchObject({ memoryMb: 1024, minInstances: 0, idleTimeoutS: 300, healthPath: null });
  });

  it('saves with its CSRF token only; the service takes the new settings', async () => {
    const b = await login();
    const values = form({ memoryMb: '512', port: '3000', maxInstances: '4', concurrency: '20', idleTimeoutS: '90s', requestTimeoutS: '1m30s', startCommand: 'node app.js', healthPath: '/healthz', plan: 'pro' });
    expect((await b.post('/services/tunable/settings', values, { csrf: null })).status).toBe(403);
    expect((await server.api('GET', '/api/v1/services/tunable')).body.memoryMb).toBe(1024);
    const saved = await b.post('/services/tunable/settings', values);
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/services/tunable/settings');
    expect((await server.api('GET', '/api/v1/services/tunable')).body).toMatchObject({
      memoryMb: 512,
      port: 3000,
      maxInstances: 4,
      concurrency: 20,
      idleTimeoutS: 90,
      requestTimeoutS: 90,
      startCommand: 'node app.js',
      healthPath: '/healthz',
      plan: 'pro',
      cpu: { percentOfCore: 28.9 },
    });
    const after = await b.get('/services/tunable/settings');
    expect(after.html).toContain('Saved: memoryMb, port, maxInstances, concurrency, idleTimeoutS, requestTimeoutS, startCommand, healthPath, plan.');
    expect(after.html).toMatch(/name="requestTimeoutS" value="1m30s"/);
    // unticked: the box is not sent at all
    const { prewarm: _ticked, ...unticked } = values;
    expect((await b.post('/services/tunable/settings', unticked)).status).toBe(303);
    expect((await server.api('GET', '/api/v1/services/tunable')).body.prewarm).toBe(false);
    expect((await b.get('/services/tunable/settings')).html).toMatch(/<input id="f-prewarm" name="prewarm" type="checkbox"\/?>/);
  });

  it('delete needs the service’s name typed, and its CSRF token', async () => {
    const b = await login();
    const wrong = await b.post('/services/tunable/delete', { confirm: 'tunabl' });
    expect(wrong.status).toBe(400);
    expect(fieldError(wrong.html, 'confirm')).toBe('"tunabl" is not the service\'s name: type tunable to delete it');
    expect((await b.post('/services/tunable/delete', {})).status).toBe(400);
    expect((await b.post('/services/tunable/delete', { confirm: 'tunable' }, { csrf: null })).status).toBe(403);
    expect((await server.api('GET', '/api/v1/services/tunable')).status).toBe(200);
    const done = await b.post('/services/tunable/delete', { confirm: 'tunable' });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/services');
    expect((await server.api('GET', '/api/v1/services/tunable')).status).toBe(404);
    expect((await b.get('/services')).html).toContain('Service tunable deleted.');
  });

  it('tokens: create shows the secret once and it works; revoke ends it; revoking the session’s own token ends the session', async () => {
    const b = await login();
    const page = await b.get('/tokens');
    expect(page.html).toMatch(/<strong>admin<\/strong><span class="muted small"> \(this session\)<\/span>/);
    const bad = await b.post('/tokens', { name: 'no/slashes' });
    expect(bad.status).toBe(400);
    expect(fieldError(bad.html, 'name')).toContain('letters, digits, spaces');
    expect((await b.post('/tokens', { name: 'ui-made' }, { csrf: null })).status).toBe(403);
    const created = await b.post('/tokens', { name: 'ui-made' });
    expect(created.status).toBe(303);
    const shown = await b.get('/tokens');
    const secret = /<pre class="cmd" id="new-token-secret">(ch_[A-Za-z0-9_-]+)<\/pre>/.exec(shown.html)?.[1];
    expect(secret).toBeDefined();
    expect((await b.get('/tokens')).html).not.toContain(secret!);
    const withIt = (t: string) => fetch(server.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer ${t}` } });
    expect((await withIt(secret!)).status).toBe(200);
    const id = (await server.api('GET', '/api/v1/tokens')).body.tokens.find((t: { name: string }) => t.name === 'ui-made').id;
    expect((await b.post(`/tokens/${id}/revoke`, {}, { csrf: null })).status).toBe(403);
    const revoked = await b.post(`/tokens/${id}/revoke`, {});
    expect(revoked.status).toBe(303);
    expect((await withIt(secret!)).status).toBe(401);

    const own = await server.api('POST', '/api/v1/tokens', { name: 'self-revoking' });
    const s = await login(own.body.token);
    const gone = await s.post(`/tokens/${own.body.id}/revoke`, {});
    expect(gone.status).toBe(303);
    expect(gone.headers.get('location')).toBe('/login');
    expect((await s.get('/tokens')).status).toBe(302);
  });

  it('the service page carries its instances for the live view', async () => {
    const b = await login();
    const page = await b.get('/services/form-hello');
    expect(page.html).toContain('<section id="instances" data-poll="/api/v1/services/form-hello">');
  });
});

describe('pages', () => {
  it('the environment page masks values; reveal shows one or all; edit and delete work', async () => {
    await server.api('POST', '/api/v1/services', { name: 'env-page', runtime: 'node' });
    await server.api('PUT', '/api/v1/services/env-page/env', { vars: { DB_PASSWORD: 'hunter2-very-secret', API_KEY: 'key-<script>' } });
    const b = await login();
    const masked = await b.get('/services/env-page/env');
    expect(masked.status).toBe(200);
    expect(masked.html).toContain('DB_PASSWORD');
    expect(masked.html).not.toContain('hunter2-very-secret');
    expect(masked.html).not.toContain('key-&lt;script&gt;');
    const one = await b.get('/services/env-page/env?reveal=DB_PASSWORD');
    expect(one.html).toContain('hunter2-very-secret');
    expect(one.html).not.toContain('key-&lt;script&gt;');
    const all = await b.get('/services/env-page/env?reveal=all');
    expect(all.html).toContain('hunter2-very-secret');
    expect(all.html).toContain('key-&lt;script&gt;');
    expect(all.html).not.toContain('key-<script>');
    const edit = await b.get('/services/env-page/env?edit=API_KEY');
    expect(edit.html).toContain('key-&lt;script&gt;</textarea>');
    expect(edit.html).not.toContain('hunter2-very-secret');

    const bad = await b.post('/services/env-page/env', { name: '1BAD', value: 'x' });
    expect(bad.status).toBe(400);
    expect(fieldError(bad.html, 'name')).toContain('variable name "1BAD"');
    expect((await b.post('/services/env-page/env', { name: 'API_KEY', value: 'new', mode: 'edit' })).status).toBe(303);
    expect((await b.post('/services/env-page/env/DB_PASSWORD/delete', {})).status).toBe(303);
    const vars = (await server.api('GET', '/api/v1/services/env-page/env?reveal=1')).body.vars;
    expect(vars).toMatchObject([{ name: 'API_KEY', value: 'new' }]);
    const after = await b.get('/services/env-page/env');
    expect(after.html).toContain('DB_PASSWORD deleted.');
  });

  it('observability: a bad time is an error at its field; a search filters the log', async () => {
    const b = await login();
    const bad = await b.get('/services/form-hello/observability?since=yesterdayish');
    expect(bad.status).toBe(400);
    expect(fieldError(bad.html, 'since')).toContain('since: "yesterdayish" is not a time');
    const page = await b.get('/services/form-hello/observability?q=listening');
    expect(page.status).toBe(200);
    expect(page.html).toContain('listening on');
    expect(page.html).not.toMatch(/class="logline event"/);
    expect(page.html).toContain('data-follow="/api/v1/services/form-hello/logs?follow=1&amp;q=listening"');
    expect(page.html).toContain('Requests');
  });

  it('lists services with status, and a service page; unknown pages are HTML 404s, the API’s stay JSON', async () => {
    const b = await login();
    const list = await b.get('/services');
    expect(list.html).toContain('data-service="form-hello"');
    const row = list.html.slice(list.html.indexOf('data-service="form-hello"'));
    expect(row).toContain('256 MB · 14.5 %');
    // the second deploy's source could not be cloned
    expect(row).toContain('failed last deploy');
    const svc = await b.get('/services/form-hello');
    expect(svc.status).toBe(200);
    expect(svc.html).toContain('http://form-hello.localhost:');
    const missing = await b.get('/services/nope');
    expect(missing.status).toBe(404);
    expect(missing.html).toContain('no service named &quot;nope&quot;');
    const nopage = await b.get('/no/such/page');
    expect(nopage.status).toBe(404);
    expect(nopage.headers.get('content-type')).toContain('text/html');
    const api = await fetch(server.adminUrl + '/api/v1/nope', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(api.status).toBe(404);
    expect((await api.json()).error.code).toBe('ERR_NOT_FOUND');
    const usage = await b.get('/usage?period=7d');
    expect(usage.status).toBe(200);
    expect(usage.html).toContain('Usage and cost');
  });

  it('failed logins are limited per source: past 10 a minute a wrong token is 429, the right one still logs in', async () => {
    const post = async (token: string) => {
      const pre = await loginCookieAndCsrf();
      return fetch(server.adminUrl + '/login', {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: pre.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: pre.csrf, token }),
      });
    };
    // the wrong token tried earlier in this file may still be in the minute's window
    let res = await post('guess-0');
    let refused = 0;
    while (res.status === 401 && refused < 11) res = await post(`guess-${++refused}`);
    expect(refused).toBeGreaterThanOrEqual(9);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(fieldError(await res.text(), 'token')).toContain('Too many failed logins');
    expect((await post(TOKEN)).status).toBe(303);
  });

});
