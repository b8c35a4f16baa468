// Preview deployments by git push: with previews on, a branch deploys as <branch>--<service>
// (its name made a host label, cut and hashed when it would not fit or would collide), with the
// parent's settings and the variables not kept from previews; it is listed under its parent, and
// goes when the branch is deleted or the parent is.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { previewName } from '../../../runtime/control/previews.ts';
import { gitRun, remoteLines } from '../../helpers/git-client.ts';
import { git, hasGit } from '../../helpers/git-repos.ts';
import { startTestServer, tempDir, TOKEN, type TestServer } from '../../helpers/server.ts';

if (!hasGit() && process.env.CI === 'true') throw new Error('git is required for the preview tests (apt-get install git)');

const APP = `require('http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version: require('fs').readFileSync('version.txt', 'utf8').trim(), service: process.env.CELLHOST_SERVICE, memory: process.env.CELLHOST_MEMORY_MB, greeting: process.env.GREETING ?? null, secret: process.env.SECRET ?? null }));
}).listen(Number(process.env.PORT));
`;

describe('preview names', () => {
  it('a branch becomes a host label; one too long is cut and marked with a hash; a collision takes the hashed form', () => {
    expect(previewName('web', 'feature/Login_Page')).toBe('feature-login-page--web');
    expect(previewName('web', '---')).toBe('branch--web');
    const long = previewName('web', 'x'.repeat(80))!;
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^x+-[0-9a-f]{6}--web$/);
    expect(previewName('web', 'feature/login-page', true)).toMatch(/^feature-login-page-[0-9a-f]{6}--web$/);
    expect(previewName('a'.repeat(60), 'main')).toBeNull();
  });
});

describe.skipIf(!hasGit())('previews by git push', () => {
  let server: TestServer;
  let dir: string;
  let work: string;

  const commit = (version: string) => {
    fs.writeFileSync(path.join(work, 'version.txt'), version + '\n');
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', version);
  };

  beforeAll(async () => {
    server = await startTestServer();
    dir = tempDir('cellhost-git-previews-');
    work = path.join(dir, 'work');
    fs.mkdirSync(work);
    git(work, 'init', '--quiet', '-b', 'main');
    fs.writeFileSync(path.join(work, 'app.js'), APP);
    commit('main-1');
    expect((await server.api('POST', '/api/v1/services', { name: 'web', runtime: 'node', buildCommand: 'echo "building $(cat version.txt)"', startCommand: 'node app.js', memoryMb: 256, previews: true })).status).toBe(201);
    expect((await server.api('PUT', '/api/v1/services/web/env/GREETING', { value: 'hello' })).status).toBe(200);
    const secret = await server.api('PUT', '/api/v1/services/web/env/SECRET', { value: 'production-only', preview: false });
    expect(secret.body.vars.map((v: any) => [v.name, v.preview])).toEqual([['GREETING', true], ['SECRET', false]]);
    git(work, 'remote', 'add', 'cellhost', `${server.adminUrl.replace('http://', `http://x:${TOKEN}@`)}/git/web.git`);
    expect((await gitRun(work, ['push', 'cellhost', 'main'])).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a branch deploys as its own service at <branch>--<service>, with the parent settings and only the variables previews get', async () => {
    git(work, 'checkout', '--quiet', '-b', 'Feature/Login');
    commit('feature-1');
    const r = await gitRun(work, ['push', 'cellhost', 'Feature/Login']);
    const lines = remoteLines(r.out);
    expect(r.code, r.out).toBe(0);
    expect(lines).toContain('building feature-1');
    expect(lines.some((l) => /^==> Deploying Feature\/Login \([0-9a-f]{12}\) to feature-login--web \(a preview\): deployment d-/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^==> feature-login--web is live at http:\/\/feature-login--web\.localhost:\d+$/);
    const res = await server.app('feature-login--web');
    expect(res.json).toEqual({ version: 'feature-1', service: 'feature-login--web', memory: '256', greeting: 'hello', secret: null });
    expect((await server.app('web')).json).toMatchObject({ version: 'main-1', secret: 'production-only' });

    const preview = (await server.api('GET', '/api/v1/services/feature-login--web')).body;
    expect(preview).toMatchObject({ minInstances: 0, memoryMb: 256, previews: false, domains: [], preview: { parent: 'web', branch: 'Feature/Login', pullRequest: null } });
    const listed = (await server.api('GET', '/api/v1/services/web/previews')).body.previews;
    expect(listed).toEqual([expect.objectContaining({ name: 'feature-login--web', branch: 'Feature/Login', url: expect.stringMatching(/^http:\/\/feature-login--web\.localhost:\d+$/) })]);
    expect((await server.api('GET', '/api/v1/services/web')).body.preview).toBeNull();
  }, 120_000);

  it('a second push of the branch redeploys its preview, following the parent settings as they are now', async () => {
    expect((await server.api('PATCH', '/api/v1/services/web', { memoryMb: 320 })).status).toBe(200);
    commit('feature-2');
    const r = await gitRun(work, ['push', 'cellhost', 'Feature/Login']);
    expect(r.code, r.out).toBe(0);
    expect((await server.app('feature-login--web')).json).toMatchObject({ version: 'feature-2', memory: '320' });
  }, 120_000);

  it('a branch whose label is taken gets the hashed name', async () => {
    git(work, 'checkout', '--quiet', '-b', 'feature-login');
    const r = await gitRun(work, ['push', 'cellhost', 'feature-login']);
    expect(r.code, r.out).toBe(0);
    const name = remoteLines(r.out).at(-1)!.match(/^==> (\S+) is live/)![1]!;
    expect(name).toMatch(/^feature-login-[0-9a-f]{6}--web$/);
    expect((await server.app(name)).json.version).toBe('feature-2');
    expect((await server.api('GET', '/api/v1/services/web/previews')).body.previews.map((p: any) => p.branch)).toEqual(['Feature/Login', 'feature-login']);
  }, 120_000);

  it("a preview's usage counts under its parent, listed inside the parent's row", async () => {
    const { body } = await server.api('GET', '/api/v1/usage?service=web');
    expect(body.services).toHaveLength(1);
    const web = body.services[0];
    expect(web.service).toBe('web');
    const preview = web.previews.find((p: any) => p.service === 'feature-login--web');
    expect(preview.requests).toBeGreaterThanOrEqual(2);
    // web itself was asked once
    expect(web.requests).toBe(web.previews.reduce((n: number, p: any) => n + p.requests, 0) + 1);
    expect(body.total.requests).toBe(web.requests);
    const all = (await server.api('GET', '/api/v1/usage')).body;
    expect(all.services.map((u: any) => u.service)).toEqual(['web']);
  }, 60_000);

  it('deleting the branch deletes its preview; deleting the parent deletes the rest', async () => {
    const r = await gitRun(work, ['push', 'cellhost', ':Feature/Login']);
    expect(r.code, r.out).toBe(0);
    expect(remoteLines(r.out)).toContain('==> Feature/Login deleted: its preview feature-login--web is deleted');
    expect((await server.api('GET', '/api/v1/services/feature-login--web')).status).toBe(404);
    expect((await server.app('feature-login--web')).status).toBe(404);
    const left = (await server.api('GET', '/api/v1/services/web/previews')).body.previews;
    expect(left).toHaveLength(1);
    expect((await server.api('DELETE', '/api/v1/services/web')).status).toBe(204);
    expect((await server.api('GET', `/api/v1/services/${left[0].name}`)).status).toBe(404);
    expect(fs.existsSync(path.join(server.dataDir, 'git', 'web.git'))).toBe(false);
    // what they used stays counted under the parent
    const usage = (await server.api('GET', '/api/v1/usage')).body;
    expect(usage.services.map((u: any) => [u.service, u.previews?.length])).toEqual([['web', 2]]);
  }, 120_000);
});
