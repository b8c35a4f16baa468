// git push to a service's remote on the admin listener, with the host's real git client: the
// build's output comes back as `remote:` lines with the URL, then the app serves the pushed
// commit; force pushes, branch pushes and deletes, a build that fails (the push is rejected, the
// live version keeps serving), two pushes at once, wrong tokens.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitRun, remoteLines } from '../../helpers/git-client.ts';
import { git, hasGit } from '../../helpers/git-repos.ts';
import { startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';

if (!hasGit() && process.env.CI === 'true') throw new Error('git is required for the git push tests (apt-get install git)');

const APP = `const http = require('http');
const fs = require('fs');
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version: fs.readFileSync('version.txt', 'utf8').trim(), service: process.env.CELLHOST_SERVICE, greeting: process.env.GREETING ?? null, secret: process.env.SECRET ?? null }));
}).listen(Number(process.env.PORT));
`;
// "broken" fails the build; "slow…" holds it until the test's flag file appears (bounded)
const BUILD = 'v=$(cat version.txt); echo "building $v"; case "$v" in broken) echo "the build is broken" >&2; exit 3;; slow*) for i in $(seq 200); do [ -e /tmp/go ] && break; [ -e slow-go ] && break; sleep 0.05; done;; esac';

describe.skipIf(!hasGit())('git push', () => {
  let server: TestServer;
  let dir: string;
  let work: string;
  let remote: string;

  const commit = (repo: string, version: string, opts: { amend?: boolean } = {}) => {
    fs.writeFileSync(path.join(repo, 'version.txt'), version + '\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '--quiet', ...(opts.amend ? ['--amend'] : []), '-m', version);
    return git(repo, 'rev-parse', 'HEAD');
  };
  const version = async (service = 'web') => (await server.app(service)).json?.version;

  beforeAll(async () => {
    server = await startTestServer();
    dir = tempDir('cellhost-git-push-');
    work = path.join(dir, 'work');
    fs.mkdirSync(work);
    git(work, 'init', '--quiet', '-b', 'main');
    fs.writeFileSync(path.join(work, 'app.js'), APP);
    fs.writeFileSync(path.join(work, 'package.json'), '{ "name": "web", "private": true }\n');
    commit(work, 'v1');
    const created = await server.api('POST', '/api/v1/services', { name: 'web', runtime: 'node', buildCommand: BUILD, startCommand: 'node app.js' });
    expect(created.status).toBe(201);
    remote = `${server.adminUrl.replace('http://', `http://cellhost:${TOKEN}@`)}/git/web.git`;
    git(work, 'remote', 'add', 'cellhost', remote);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a push to main streams the build as remote: lines, ends with the URL, and the app serves the commit', async () => {
    const r = await gitRun(work, ['push', 'cellhost', 'main']);
    const lines = remoteLines(r.out);
    expect(r.code, r.out).toBe(0);
    expect(lines).toContain('building v1');
    expect(lines.some((l) => /==> Deploying main \([0-9a-f]{12}\) to web: deployment d-/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^==> web is live at http:\/\/web\.localhost:\d+$/);
    expect(await version()).toBe('v1');
    const { body } = await server.api('GET', '/api/v1/services/web/deployments');
    expect(body.deployments[0]).toMatchObject({ status: 'live', source: expect.stringMatching(/^git-push:main@[0-9a-f]{12}$/) });
  }, 120_000);

  it('a force push deploys the new commit', async () => {
    const sha = commit(work, 'v2', { amend: true });
    const rejected = await gitRun(work, ['push', 'cellhost', 'main']);
    expect(rejected.code).not.toBe(0); // not a fast-forward: git itself asks for --force
    const r = await gitRun(work, ['push', '--force', 'cellhost', 'main']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/\+ [0-9a-f]+\.\.\.[0-9a-f]+ main -> main \(forced update\)/);
    expect(remoteLines(r.out)).toContain('building v2');
    expect(await version()).toBe('v2');
    expect((await gitRun(work, ['ls-remote', 'cellhost', 'refs/heads/main'])).out).toContain(sha);
  }, 120_000);

  it('a push whose build fails is rejected: main stays, the live version keeps serving', async () => {
    const live = (await server.api('GET', '/api/v1/services/web')).body.liveDeploymentId;
    const before = git(work, 'rev-parse', 'HEAD');
    commit(work, 'broken');
    const r = await gitRun(work, ['push', 'cellhost', 'main']);
    const lines = remoteLines(r.out);
    expect(r.code).not.toBe(0);
    expect(lines).toContain('the build is broken');
    expect(lines.some((l) => /Build failed: .*exit code 3/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(new RegExp(`^==> The build of main \\([0-9a-f]{12}\\) failed \\(ERR_BUILD_FAILED\\): push rejected\\. web keeps serving deployment ${live}$`));
    expect(r.out).toContain('! [remote rejected] main -> main (pre-receive hook declined)');
    expect(await version()).toBe('v2');
    expect((await gitRun(work, ['ls-remote', 'cellhost', 'refs/heads/main'])).out).toContain(before);
    git(work, 'reset', '--quiet', '--hard', before);
  }, 120_000);

  it('another branch is taken without a deploy while previews are off; deleting it is taken too', async () => {
    git(work, 'checkout', '--quiet', '-b', 'feature');
    commit(work, 'feature-1');
    const r = await gitRun(work, ['push', 'cellhost', 'feature']);
    expect(r.code, r.out).toBe(0);
    expect(remoteLines(r.out)).toContain('==> feature pushed, not deployed: feature is not main, the deploy branch of web, and previews are off (turn them on with: cellhost hooks web --previews on)');
    expect(r.out).toContain('* [new branch]      feature -> feature');
    expect(await version()).toBe('v2');
    const deleted = await gitRun(work, ['push', 'cellhost', ':feature']);
    expect(deleted.code, deleted.out).toBe(0);
    expect(remoteLines(deleted.out)).toContain('==> feature deleted');
    git(work, 'checkout', '--quiet', 'main');
  }, 120_000);

  it('deleting the deploy branch is refused; tags are taken and not deployed', async () => {
    const r = await gitRun(work, ['push', 'cellhost', ':main']);
    expect(r.code).not.toBe(0);
    expect(remoteLines(r.out)).toContain("==> main is the deploy branch of web: it cannot be deleted (change the service's deployBranch first, or delete the service)");
    expect(r.out).toContain('! [remote rejected] main (pre-receive hook declined)');
    git(work, 'tag', 'v2.0');
    const tag = await gitRun(work, ['push', 'cellhost', 'v2.0']);
    expect(tag.code, tag.out).toBe(0);
    expect(remoteLines(tag.out)).toContain('==> tag v2.0 pushed: only branches deploy');
  }, 60_000);

  it('a second push while the first is building is refused at once, naming the first; the first deploys', async () => {
    const other = path.join(dir, 'other');
    // git's sync helper would block this process, which serves the clone: every git call that talks to the platform is async
    expect((await gitRun(dir, ['clone', '--quiet', remote, other])).code).toBe(0);
    commit(work, 'slow-1');
    const first = gitRun(work, ['push', 'cellhost', 'main']);
    const building = await waitFor(
      async () => {
        const { body } = await server.api('GET', '/api/v1/services/web/deployments?limit=1');
        return body.deployments[0]?.status === 'building' && body.deployments[0].source.startsWith('git-push:main') ? body.deployments[0] : null;
      },
      { timeoutMs: 30_000, what: 'the first push to build' },
    );
    commit(other, 'v-other');
    const second = await gitRun(other, ['push', 'origin', 'main']);
    expect(second.code).not.toBe(0);
    expect(remoteLines(second.out)).toContain(`==> Another push to web is in progress (deployment ${building.id} of main): push again once it has finished`);
    // the slow build waits for this file in its build dir (the image), then finishes
    fs.writeFileSync(path.join(server.dataDir, 'images', building.id, 'slow-go'), '');
    const r = await first;
    expect(r.code, r.out).toBe(0);
    expect(await version()).toBe('slow-1');
    // the second clone's main is behind now: git refuses it before anything reaches the platform
    const again = await gitRun(other, ['push', 'origin', 'main']);
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/\[rejected\]\s+main -> main \(fetch first\)/);
  }, 120_000);

  it('a wrong token is refused (git is asked for credentials again); none is refused the same way', async () => {
    const wrong = remote.replace(TOKEN, 'not-the-token-000000');
    const r = await gitRun(work, ['push', wrong, 'main']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/Authentication failed|could not read Username/);
    const anonymous = await gitRun(work, ['ls-remote', `${server.adminUrl}/git/web.git`]);
    expect(anonymous.code).not.toBe(0);
    const res = await fetch(`${server.adminUrl}/git/web.git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="cellhost git"/);
    expect((await res.json()).error.code).toBe('ERR_AUTH_MISSING');
    const unknown = await fetch(`${server.adminUrl}/git/nope.git/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(unknown.status).toBe(404);
  }, 60_000);

  it('the repository clones like any git server, with the pushed history', async () => {
    const copy = path.join(dir, 'copy');
    const r = await gitRun(dir, ['clone', '--quiet', remote, copy]);
    expect(r.code, r.out).toBe(0);
    expect(fs.readFileSync(path.join(copy, 'version.txt'), 'utf8')).toBe('slow-1\n');
    const mode = fs.statSync(path.join(server.dataDir, 'git', 'web.git')).mode & 0o777;
    expect(mode).toBe(0o700);
    // made without git's template: no sample hooks of the host's git; the platform's hook is elsewhere
    expect(fs.existsSync(path.join(server.dataDir, 'git', 'web.git', 'hooks'))).toBe(false);
  }, 60_000);

  it('a gzip-encoded request body (a fetch with many local commits) is inflated by http-backend', async () => {
    const copy = path.join(dir, 'copy');
    for (let i = 0; i < 60; i++) {
      fs.writeFileSync(path.join(copy, 'n.txt'), String(i));
      git(copy, 'add', '-A');
      git(copy, 'commit', '--quiet', '-m', `local ${i}`);
    }
    // something new on the platform's side, so the fetch negotiates (sending its 60 haves)
    git(work, 'checkout', '--quiet', '-b', 'side');
    commit(work, 'side-1');
    expect((await gitRun(work, ['push', 'cellhost', 'side'])).code).toBe(0);
    git(work, 'checkout', '--quiet', 'main');
    const r = await gitRun(copy, ['-c', 'protocol.version=0', 'fetch', 'origin'], { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' });
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.out).toMatch(/POST \/git\/web\.git\/git-upload-pack[\s\S]*Content-Encoding: gzip/);
    expect(r.out).toContain('* [new branch]      side       -> origin/side');
  }, 60_000);

  it("wrong tokens as git's password count against the API's failed-login limit; the right token still passes", async () => {
    const url = `${server.adminUrl}/git/web.git/info/refs?service=git-upload-pack`;
    const basic = (token: string) => ({ authorization: `Basic ${Buffer.from(`git:${token}`).toString('base64')}` });
    const statuses: number[] = [];
    for (let i = 0; i < 33; i++) statuses.push((await fetch(url, { headers: basic(`wrong-token-${i}`) })).status);
    // 30 failures a minute from one source (the wrong-token push above counted too), then 429
    const first = statuses.indexOf(429);
    expect(first).toBeGreaterThan(25);
    expect(first).toBeLessThanOrEqual(30);
    expect(statuses.slice(0, first).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(first).every((s) => s === 429)).toBe(true);
    const ok = await fetch(url, { headers: basic(TOKEN) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/x-git-upload-pack-advertisement');
    await ok.arrayBuffer();
  }, 60_000);
});
