// Deploying sources that carry an app manifest, through the API with real builds and instances:
// the manifest's settings reach the running app, settings set through the API win, a missing
// variable or a bad manifest fails the deployment (the live one keeps serving), the root dir is
// where the manifest is looked for, git sources are read the same way, and a rollback brings its
// manifest's settings back.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../../builder/sources/index.ts';
import { FIXTURES, requestRouter, startTestServer, TOKEN, type TestServer } from '../../helpers/server.ts';

const APP = path.join(FIXTURES, 'node-manifest');
const MANIFEST = fs.readFileSync(path.join(APP, 'cellhost.toml'), 'utf8');
const lineOf = (text: string, start: string) => text.split('\n').findIndex((l) => l.startsWith(start)) + 1;

let server: TestServer;
let scratch: string;
beforeAll(async () => {
  // local git paths are allowed only when the operator says so
  server = await startTestServer({ env: { CELLHOST_GIT_ALLOW_LOCAL: '1' } });
  // outside /tmp, readable by the services' uids: a clone may run in the build sandbox as the service
  scratch = fs.mkdtempSync('/var/tmp/cellhost-manifest-');
  fs.chmodSync(scratch, 0o755);
});
afterAll(async () => {
  await server?.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/** a copy of the fixture app under `sub` of a new dir, its manifest replaced (null: none) */
function variant(manifest: string | null, opts: { sub?: string; file?: string; extra?: Record<string, string> } = {}): string {
  const dir = fs.mkdtempSync(path.join(scratch, 'src-'));
  fs.chmodSync(dir, 0o755);
  const app = path.join(dir, opts.sub ?? '');
  fs.mkdirSync(app, { recursive: true });
  for (const f of ['app.js', 'package.json']) fs.copyFileSync(path.join(APP, f), path.join(app, f));
  if (manifest !== null) fs.writeFileSync(path.join(app, opts.file ?? 'cellhost.toml'), manifest);
  for (const [f, text] of Object.entries(opts.extra ?? {})) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

async function upload(service: string, dir: string): Promise<any> {
  const res = await server.api('POST', `/api/v1/services/${service}/deployments`, new Uint8Array(await packDirectory(dir)), { 'content-type': 'application/gzip' });
  expect(res.status).toBe(202);
  return server.waitDeployment(res.body.id);
}

async function buildLog(id: string): Promise<string> {
  // colours off, so the lines read as text
  return String((await server.api('GET', `/api/v1/deployments/${id}/logs`)).body).replace(/\x1b\[[0-9;]*m/g, '');
}

async function createWithGreeting(name: string, body: Record<string, unknown> = {}): Promise<void> {
  expect((await server.api('POST', '/api/v1/services', { name, runtime: 'node', ...body })).status).toBe(201);
  expect((await server.api('PUT', `/api/v1/services/${name}/env/GREETING`, { value: 'hello from env' })).status).toBeLessThan(300);
}

describe('a manifest deployed through the API', () => {
  it('its settings reach the running app, the build log says which line set what, and the deployment keeps the file', async () => {
    await createWithGreeting('mf-api');
    const dep = await upload('mf-api', APP);
    expect(dep.status, dep.error?.message).toBe('live');

    const service = (await server.api('GET', '/api/v1/services/mf-api')).body;
    expect(service).toMatchObject({
      runtime: 'node',
      buildCommand: 'echo built by the manifest > built.txt',
      startCommand: 'node app.js 3000',
      port: 3000,
      memoryMb: 256,
      maxInstances: 2,
      idleTimeoutS: 120,
      minInstances: 0,
      explicitSettings: ['runtime'],
    });
    // reached on the manifest's port, started with its start command, built by its build command
    const res = await server.app('mf-api');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ argv: ['3000'], port: '3000', memoryMb: '256', built: 'built by the manifest', greeting: 'hello from env' });

    const log = await buildLog(dep.id);
    expect(log).toContain('==> Manifest cellhost.toml');
    expect(log).toContain(`port = 3000 (cellhost.toml line ${lineOf(MANIFEST, 'port')})`);
    expect(log).toContain(`memory = 256 MB (cellhost.toml line ${lineOf(MANIFEST, 'memory')})`);
    expect(log).toContain(`scaling.idle_timeout = 2m (cellhost.toml line ${lineOf(MANIFEST, 'idle_timeout')})`);
    expect(log).toContain(`runtime = "node" (cellhost.toml line ${lineOf(MANIFEST, 'runtime')}; set the same through the API or CLI)`);
    expect(log).toContain(`env.required: GREETING: all set (cellhost.toml line ${lineOf(MANIFEST, 'required')})`);
    expect(log).toContain('name = "manifest-app" in cellhost.toml: this deployment is to service "mf-api"');
    // the manifest's domains become the service's; a section no feature applies yet is said not
    // to be applied, not pretended
    expect(log).toContain('Domains attached: manifest.example.com');
    expect(service.domains).toEqual(['manifest.example.com']);
    expect(log).toContain('cron jobs in cellhost.toml are not applied by this version: nightly: 0 3 * * * POST /tasks/nightly');

    const shown = (await server.api('GET', `/api/v1/deployments/${dep.id}`)).body;
    expect(shown.manifest).toEqual({ file: 'cellhost.toml', text: MANIFEST });
    const listed = (await server.api('GET', '/api/v1/services/mf-api/deployments')).body.deployments[0];
    expect(listed.id).toBe(dep.id);
    expect(listed.manifest).toBeUndefined();
  });

  it('a setting set through the API wins, the log says so, and null hands it back to the manifest', async () => {
    const changed = await server.api('PATCH', '/api/v1/services/mf-api', { memoryMb: 512 });
    expect(changed.body).toMatchObject({ memoryMb: 512, explicitSettings: ['runtime', 'memoryMb'] });
    const dep = await upload('mf-api', APP);
    expect(dep.status, dep.error?.message).toBe('live');
    expect((await server.app('mf-api')).json.memoryMb).toBe('512');
    expect((await server.api('GET', '/api/v1/services/mf-api')).body.memoryMb).toBe(512);
    expect(await buildLog(dep.id)).toContain(
      `memory = 256 MB (cellhost.toml line ${lineOf(MANIFEST, 'memory')}) is not applied: memoryMb was set to 512 MB through the API or CLI, which wins`,
    );

    // handed back: the live deployment's manifest decides again, at once
    const back = await server.api('PATCH', '/api/v1/services/mf-api', { memoryMb: null });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ memoryMb: 256, explicitSettings: ['runtime'] });
    expect((await server.app('mf-api')).json.memoryMb).toBe('256');
  });

  it('a required variable that is not set fails the deployment naming it and its line; the live version keeps serving', async () => {
    const live = (await server.api('GET', '/api/v1/services/mf-api')).body.liveDeploymentId;
    expect((await server.api('DELETE', '/api/v1/services/mf-api/env/GREETING')).status).toBeLessThan(300);
    const dep = await upload('mf-api', variant(MANIFEST.replace('required = ["GREETING"]', 'required = ["GREETING", "API_KEY"]')));
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_ENV_REQUIRED');
    expect(dep.error.message).toBe(
      `cellhost.toml line ${lineOf(MANIFEST, 'required')} requires the variables GREETING, API_KEY, which service "mf-api" does not have: set them (cellhost env set mf-api GREETING=...) and deploy again`,
    );
    const service = (await server.api('GET', '/api/v1/services/mf-api')).body;
    expect(service.liveDeploymentId).toBe(live);
    expect((await server.app('mf-api')).json.argv).toEqual(['3000']);
    expect((await server.api('PUT', '/api/v1/services/mf-api/env/GREETING', { value: 'hello from env' })).status).toBeLessThan(300);
  });

  it('an unknown key or a wrong type fails the deployment with the line and key, before any build', async () => {
    const bad = MANIFEST.replace('port = 3000', 'port = "3000"').replace('[scaling]\n', '[scaling]\nmaximum = 3\n');
    const dep = await upload('mf-api', variant(bad));
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_MANIFEST_INVALID');
    const portLine = lineOf(bad, 'port');
    const maxLine = lineOf(bad, 'maximum');
    expect(dep.error.message).toBe(
      `cellhost.toml line ${portLine}: port: expected a port number from 1 to 65535, got a string ("3000"); ` +
        `cellhost.toml line ${maxLine}: scaling.maximum: unknown key: [scaling] takes min, max, concurrency, idle_timeout, request_timeout`,
    );
    const log = await buildLog(dep.id);
    expect(log).toContain('Manifest cellhost.toml is not valid:');
    expect(log).toContain(`cellhost.toml line ${maxLine}: scaling.maximum: unknown key`);
    expect(log).not.toContain('Build command');
    // the file is kept with the failed deployment, to be looked at
    expect((await server.api('GET', `/api/v1/deployments/${dep.id}`)).body.manifest.text).toBe(bad);
    expect((await server.app('mf-api')).status).toBe(200);
  });

  it('cellhost.toml and cellhost.json side by side are refused; a manifest that is a symlink is not followed', async () => {
    const both = await upload('mf-api', variant(MANIFEST, { extra: { 'cellhost.json': '{}' } }));
    expect(both.error).toEqual({ code: 'ERR_MANIFEST_INVALID', message: 'both cellhost.toml and cellhost.json are at the root of the source: keep one' });
    // a link inside the tree passes the archive's checks; the manifest is still read only as a regular file
    const linked = variant(null, { extra: { 'real.toml': MANIFEST } });
    fs.symlinkSync('real.toml', path.join(linked, 'cellhost.toml'));
    const dep = await upload('mf-api', linked);
    expect(dep.status).toBe('failed');
    expect(dep.error).toEqual({ code: 'ERR_MANIFEST_INVALID', message: 'cellhost.toml could not be read: cellhost.toml is a symlink, not a regular file: not read' });
  });

  it('a rollback brings back the settings of its manifest; a source without one leaves the defaults', async () => {
    const first = (await server.api('GET', '/api/v1/services/mf-api')).body.liveDeploymentId;
    const bigger = await upload('mf-api', variant(MANIFEST.replace('memory = "256MB"', 'memory = "384MB"').replace('max = 2', 'max = 3')));
    expect(bigger.status, bigger.error?.message).toBe('live');
    expect((await server.api('GET', '/api/v1/services/mf-api')).body).toMatchObject({ memoryMb: 384, maxInstances: 3 });
    expect((await server.app('mf-api')).json.memoryMb).toBe('384');

    const promoted = await server.api('POST', `/api/v1/deployments/${first}/promote`);
    expect(promoted.status).toBe(200);
    expect(promoted.body.manifest.file).toBe('cellhost.toml');
    expect((await server.api('GET', '/api/v1/services/mf-api')).body).toMatchObject({ memoryMb: 256, maxInstances: 2 });
    expect((await server.app('mf-api')).json.memoryMb).toBe('256');

    // no manifest: what it set goes back to the defaults (the start command too, so the app is
    // started with the runtime's default on the default port)
    const none = await upload('mf-api', variant(null));
    expect(none.status, none.error?.message).toBe('live');
    const service = (await server.api('GET', '/api/v1/services/mf-api')).body;
    expect(service).toMatchObject({ memoryMb: 1024, maxInstances: 10, port: 8080, startCommand: null, buildCommand: null });
    const log = await buildLog(none.id);
    expect(log).toContain('No cellhost.toml or cellhost.json');
    expect(log).toContain('memory back to 1024 MB: no manifest sets it (the default)');
    expect((await server.app('mf-api')).json).toMatchObject({ port: '8080', memoryMb: '1024', argv: [] });
  });
});

describe("a manifest's domains", () => {
  const withDomains = (list: string | null) =>
    variant(list === null ? MANIFEST.replace(/^domains = .*\n/m, '') : MANIFEST.replace(/^domains = .*$/m, `domains = ${list}`));
  const domainsOf = async (name: string) => (await server.api('GET', `/api/v1/services/${name}`)).body.domains;

  it("become the service's custom domains: attached, routed, and those the list lacks detached; no key leaves them alone", async () => {
    await createWithGreeting('mf-dom');
    // attached through the API before any manifest had a say
    expect((await server.api('POST', '/api/v1/services/mf-dom/domains', { domain: 'api.mf.example.com' })).status).toBe(201);
    const dep = await upload('mf-dom', withDomains('["a.mf.example.com", "b.mf.example.com"]'));
    expect(dep.status, dep.error?.message).toBe('live');
    expect(await domainsOf('mf-dom')).toEqual(['a.mf.example.com', 'b.mf.example.com']);
    const log = await buildLog(dep.id);
    expect(log).toContain('Domains attached: a.mf.example.com, b.mf.example.com');
    expect(log).toContain("Domains detached (not in the manifest's list): api.mf.example.com");
    // routed at once: the app answers on the attached names, not on the detached one
    expect((await requestRouter(server.routerUrl, 'b.mf.example.com', '/')).status).toBe(200);
    expect((await requestRouter(server.routerUrl, 'api.mf.example.com', '/')).status).toBe(404);
    const listed = (await server.api('GET', '/api/v1/services/mf-dom/domains')).body.domains;
    expect(listed.map((d: any) => [d.domain, d.kind])).toEqual([
      ['mf-dom.localhost', 'platform'],
      ['a.mf.example.com', 'custom'],
      ['b.mf.example.com', 'custom'],
    ]);

    // the same list again: nothing changes; a manifest without the key: nothing changes either
    const same = await upload('mf-dom', withDomains('["b.mf.example.com", "a.mf.example.com"]'));
    expect(await buildLog(same.id)).toContain('Domains: b.mf.example.com, a.mf.example.com, as before');
    const none = await upload('mf-dom', withDomains(null));
    expect(none.status).toBe('live');
    expect(await buildLog(none.id)).not.toContain('Domains');
    expect(await domainsOf('mf-dom')).toEqual(['a.mf.example.com', 'b.mf.example.com']);
  });

  it("one name another service has refuses the whole list, said in the log; the deployment is live all the same; [] detaches them all", async () => {
    await createWithGreeting('mf-other', { domains: ['taken.mf.example.com'] });
    const dep = await upload('mf-dom', withDomains('["a.mf.example.com", "taken.mf.example.com", "c.mf.example.com"]'));
    expect(dep.status, dep.error?.message).toBe('live');
    expect(await buildLog(dep.id)).toContain('domains in cellhost.toml could not be applied: domain "taken.mf.example.com" belongs to another service');
    expect(await domainsOf('mf-dom')).toEqual(['a.mf.example.com', 'b.mf.example.com']);
    expect(await domainsOf('mf-other')).toEqual(['taken.mf.example.com']);

    const cleared = await upload('mf-dom', withDomains('[]'));
    expect(await buildLog(cleared.id)).toContain("Domains detached (not in the manifest's list): a.mf.example.com, b.mf.example.com");
    expect(await domainsOf('mf-dom')).toEqual([]);
  });
});

describe('where the manifest is found', () => {
  it("the service's root dir: the manifest there applies, one at the repository's root does not", async () => {
    await createWithGreeting('mf-root', { rootDir: 'web' });
    const dir = variant(MANIFEST.replace('memory = "256MB"', 'memory = 320'), { sub: 'web', extra: { 'cellhost.toml': 'this is not TOML = = =' } });
    const dep = await upload('mf-root', dir);
    expect(dep.status, dep.error?.message).toBe('live');
    expect((await buildLog(dep.id))).toContain('==> Manifest cellhost.toml in web/');
    expect((await server.api('GET', '/api/v1/services/mf-root')).body).toMatchObject({ memoryMb: 320, port: 3000 });
    expect((await server.app('mf-root')).json).toMatchObject({ memoryMb: '320', built: 'built by the manifest' });
  });

  it('a git source with a cellhost.json', async () => {
    const json = JSON.stringify({ runtime: 'node', start: 'node app.js 3001', port: 3001, memory: 192, build: 'echo from git > built.txt' }, null, 2);
    const work = variant(json, { file: 'cellhost.json' });
    const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test', GIT_CONFIG_NOSYSTEM: '1', HOME: scratch };
    const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd, env: gitEnv, encoding: 'utf8' });
    git(work, 'init', '--quiet');
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'app with a manifest');
    const bare = path.join(scratch, 'app.git');
    git(scratch, 'clone', '--quiet', '--bare', work, bare);
    execFileSync('chmod', ['-R', 'a+rX', bare]);

    expect((await server.api('POST', '/api/v1/services', { name: 'mf-git', runtime: 'python' })).status).toBe(201);
    // the runtime was set through the API: it wins; handed back, the manifest's applies
    expect((await server.api('PATCH', '/api/v1/services/mf-git', { runtime: null })).body.explicitSettings).toEqual([]);
    const res = await server.api('POST', '/api/v1/services/mf-git/deployments', { git: bare, ref: 'main' });
    expect(res.status).toBe(202);
    const dep = await server.waitDeployment(res.body.id);
    expect(dep.status, dep.error?.message).toBe('live');
    expect((await server.api('GET', '/api/v1/services/mf-git')).body).toMatchObject({ runtime: 'node', port: 3001, memoryMb: 192 });
    expect((await server.app('mf-git')).json).toMatchObject({ argv: ['3001'], memoryMb: '192', built: 'from git' });
    const log = await buildLog(dep.id);
    expect(log).toContain('==> Manifest cellhost.json');
    expect(log).toContain('runtime = "node" (cellhost.json line 2)');
    expect((await server.api('GET', `/api/v1/deployments/${dep.id}`)).body.manifest).toEqual({ file: 'cellhost.json', text: json });
  });
});

describe('the console', () => {
  async function login(): Promise<{ get(p: string): Promise<string>; post(p: string, form: FormData): Promise<Response>; csrf: string }> {
    const pre = await fetch(server.adminUrl + '/login');
    const preCookie = pre.headers.getSetCookie()[0]!.split(';')[0]!;
    const csrfOf = (html: string) => /name="_csrf" value="([^"]*)"/.exec(html)![1]!;
    const res = await fetch(server.adminUrl + '/login', {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: preCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrfOf(await pre.text()), token: TOKEN, next: '/services' }),
    });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
    const get = async (p: string) => (await fetch(server.adminUrl + p, { headers: { cookie } })).text();
    const csrf = csrfOf(await get('/services'));
    return { get, csrf, post: (p, form) => fetch(server.adminUrl + p, { method: 'POST', redirect: 'manual', headers: { cookie }, body: form }) };
  }
  const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

  it("shows the live deployment's manifest, what each setting became, and links it from the service", async () => {
    expect((await server.api('PATCH', '/api/v1/services/mf-root', { port: 3000 })).status).toBe(200);
    const live = (await server.api('GET', '/api/v1/services/mf-root')).body.liveDeploymentId;
    const browser = await login();
    const page = await browser.get(`/deployments/${live}`);
    const card = text(page.slice(page.indexOf('id="manifest"'), page.indexOf('Build log')));
    expect(card).toContain('Manifest cellhost.toml');
    expect(card).toContain('memory = 320 MB line 7');
    expect(card).toContain('port = 3000 line 6 set through the API to 3000, which wins');
    expect(card).toContain('required = ["GREETING"]');
    const overview = await browser.get('/services/mf-root');
    expect(overview).toContain(`href="/deployments/${live}#manifest"`);
  });

  it('a redeploy from the console form sends only what was changed: the manifest keeps the rest', async () => {
    const browser = await login();
    const form = new FormData();
    for (const [k, v] of Object.entries({ _csrf: browser.csrf, name: 'mf-root', runtime: 'node', buildCommand: 'echo built by the manifest > built.txt', startCommand: 'node app.js 3000', port: '3000', memoryMb: '320', env: '' })) form.set(k, v);
    // a second entry at the top: an upload that holds one directory only is taken from inside it
    const dir = variant(MANIFEST.replace('memory = "256MB"', 'memory = 288'), { sub: 'web', extra: { 'README.md': 'the web app is in web/\n' } });
    form.set('archive', new Blob([new Uint8Array(await packDirectory(dir))]), 'app.tar.gz');
    const res = await browser.post('/deploy', form);
    expect(res.status).toBe(303);
    const id = /\/deployments\/(d-[0-9a-f]+)/.exec(res.headers.get('location') ?? '')![1]!;
    const dep = await server.waitDeployment(id);
    expect(dep.status, dep.error?.message).toBe('live');
    // the form showed the manifest's values and they were not changed: still the manifest's to set
    expect((await server.api('GET', '/api/v1/services/mf-root')).body).toMatchObject({ memoryMb: 288, explicitSettings: ['runtime', 'port'] });
  });
});
