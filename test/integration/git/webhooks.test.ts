// Webhooks as GitHub, GitLab, Gitea and Forgejo send them (recorded-shape fixtures) and the
// generic form, against the real platform: a push to the deploy branch deploys that commit, cloned
// in the build sandbox from a git server outside the host (a test-made namespace, plain http, as
// CELLHOST_GIT_ALLOW_HTTP=1 allows), a private one with a stored token; pull requests deploy and
// delete previews; unsigned, wrongly signed, replayed, oversized and malformed deliveries are
// refused with their codes, recorded and logged; the route answers only where no app is served,
// and is rate-limited.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../../runtime/sandbox/netns.ts';
import { git, hasGit, makeRepo } from '../../helpers/git-repos.ts';
import { setUpOutside, type Outside } from '../../helpers/outside.ts';
import { requestRouter, startTestServer, tempDir, type TestServer } from '../../helpers/server.ts';
import { delivery, genericDelivery, post, sign } from '../../helpers/webhooks.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available && hasGit();
const BACKEND = path.join(import.meta.dirname, '../../helpers/git-http-backend.mjs');
const SSH_SERVER = path.join(import.meta.dirname, '../../helpers/git-ssh-server.mjs');
const OUTSIDE = { ns: 'chwh-out', ifName: 'chwh0', net24: '198.18.177', port: 9418 };
const REPO_TOKEN = 'repo-token-5f0c9e';

describe('webhook prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, namespaces and git are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons, ...(hasGit() ? [] : ['git is not installed'])]).toEqual([]);
  });
});

const APP = `require('http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version: require('fs').readFileSync('version.txt', 'utf8').trim(), service: process.env.CELLHOST_SERVICE, path: req.url }));
}).listen(Number(process.env.PORT));
`;

describe.skipIf(!ready)('webhooks', () => {
  let server: TestServer;
  let outside: Outside;
  let root: string;
  let work: string;
  let secret: string;
  let gitUrl: string;
  const commits: Record<string, string> = {};

  /** a commit of `version` on `branch` of the served repositories (public and private) */
  const publish = (version: string, branch = 'main') => {
    git(work, 'checkout', '--quiet', '-B', branch);
    fs.writeFileSync(path.join(work, 'version.txt'), version + '\n');
    git(work, 'commit', '--quiet', '-am', version);
    git(work, 'push', '--quiet', '--force', path.join(root, 'app.git'), branch);
    git(work, 'push', '--quiet', '--force', path.join(root, 'private', 'app.git'), branch);
    return (commits[version] = git(work, 'rev-parse', 'HEAD'));
  };
  const settle = async (deploymentId: string) => server.waitDeployment(deploymentId);
  const version = async (service = 'web') => (await server.app(service)).json?.version;

  beforeAll(async () => {
    root = tempDir('cellhost-webhooks-');
    fs.chmodSync(root, 0o755);
    work = path.join(root, 'work');
    makeRepo(work, { 'app.js': APP, 'version.txt': 'v0\n' });
    git(root, 'clone', '--quiet', '--bare', work, path.join(root, 'app.git'));
    fs.mkdirSync(path.join(root, 'private'));
    git(root, 'clone', '--quiet', '--bare', work, path.join(root, 'private', 'app.git'));
    outside = await setUpOutside({ ...OUTSIDE, command: [process.execPath, BACKEND, root, String(OUTSIDE.port), '0.0.0.0', REPO_TOKEN] });
    gitUrl = `http://${outside.addr}:${OUTSIDE.port}/app.git`;
    server = await startTestServer({ env: { CELLHOST_GIT_ALLOW_HTTP: '1' } });
    expect((await server.api('POST', '/api/v1/services', { name: 'web', runtime: 'node', buildCommand: 'echo "building $(cat version.txt)"', startCommand: 'node app.js' })).status).toBe(201);
    const hooks = await server.api('PUT', '/api/v1/services/web/hooks', { repository: gitUrl });
    expect(hooks.status).toBe(200);
    expect(hooks.body).toMatchObject({ url: expect.stringMatching(/^http:\/\/localhost:\d+\/hooks\/web$/), secret: '****', repository: gitUrl, credential: null, deployBranch: 'main', previews: false });
    secret = (await server.api('GET', '/api/v1/services/web/hooks?reveal=1')).body.secret;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await outside?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('GitHub: a signed push to main deploys that commit, cloned from the repository outside', async () => {
    const sha = publish('github-1');
    const d = delivery('github-push', (b) => Object.assign(b, { after: sha, ref: 'refs/heads/main' }));
    const res = await post(server.routerUrl, 'web', sign(d, secret));
    expect(res.status, res.text).toBe(202);
    expect(res.json.delivery).toMatchObject({ action: 'deploy', deploymentId: expect.stringMatching(/^d-/) });
    const dep = await settle(res.json.delivery.deploymentId);
    expect(dep).toMatchObject({ status: 'live', source: `webhook:github:main@${sha.slice(0, 12)}` });
    expect(await version()).toBe('github-1');
  }, 120_000);

  it('a replay of an accepted delivery is refused, with its id or with a new one', async () => {
    const sha = publish('github-2');
    const d = sign(delivery('github-push', (b) => Object.assign(b, { after: sha })), secret);
    const first = await post(server.routerUrl, 'web', d);
    expect(first.status).toBe(202);
    await settle(first.json.delivery.deploymentId);
    const again = await post(server.routerUrl, 'web', d);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('ERR_HOOK_REPLAYED');
    const newId = { ...d, headers: { ...d.headers, 'X-GitHub-Delivery': 'a-new-id-for-the-same-body' } };
    const reworded = await post(server.routerUrl, 'web', newId);
    expect(reworded.status).toBe(409);
    expect(reworded.json.error.code).toBe('ERR_HOOK_REPLAYED');
  }, 120_000);

  it('unsigned, wrongly signed, oversized and malformed deliveries are refused, recorded and logged', async () => {
    const before = (await server.api('GET', '/api/v1/services/web/deployments')).body.deployments.length;
    const d = delivery('github-push', (b) => Object.assign(b, { after: commits['github-2'] }));

    const unsigned = await post(server.routerUrl, 'web', sign(d, null));
    expect([unsigned.status, unsigned.json.error.code]).toEqual([401, 'ERR_HOOK_UNSIGNED']);
    const anonymous = await post(server.routerUrl, 'web', { headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([anonymous.status, anonymous.json.error.code]).toEqual([401, 'ERR_HOOK_UNSIGNED']);

    const wrong = await post(server.routerUrl, 'web', sign(d, 'not-the-secret'));
    expect([wrong.status, wrong.json.error.code]).toEqual([401, 'ERR_HOOK_SIGNATURE']);
    expect(wrong.json.error.message).toBe('the x-hub-signature-256 signature does not match the webhook secret of web');
    // a body changed after it was signed
    const signed = sign(d, secret);
    const tampered = await post(server.routerUrl, 'web', { ...signed, body: signed.body.replace('"main"', '"mainx"') });
    expect(tampered.status).toBe(401);

    const big = delivery('github-push', (b) => Object.assign(b, { padding: 'x'.repeat(1024 * 1024) }));
    const oversized = await post(server.routerUrl, 'web', sign(big, secret));
    expect([oversized.status, oversized.json.error.code]).toEqual([413, 'ERR_BODY_TOO_LARGE']);

    const garbled = await post(server.routerUrl, 'web', genericLike('{"ref": "main", ', secret));
    expect([garbled.status, garbled.json.error.code]).toEqual([400, 'ERR_HOOK_MALFORMED']);
    const noAfter = await post(server.routerUrl, 'web', sign(delivery('github-push', (b) => delete b.after), secret));
    expect([noAfter.status, noAfter.json.error.code]).toEqual([400, 'ERR_HOOK_MALFORMED']);
    expect(noAfter.json.error.message).toMatch(/after is missing/);

    expect((await server.api('GET', '/api/v1/services/web/deployments')).body.deployments.length).toBe(before);
    const { deliveries } = (await server.api('GET', '/api/v1/services/web/hooks/deliveries?limit=8')).body;
    expect(deliveries.map((x: any) => [x.status, x.code])).toEqual([
      [400, 'ERR_HOOK_MALFORMED'],
      [400, 'ERR_HOOK_MALFORMED'],
      [413, 'ERR_BODY_TOO_LARGE'],
      [401, 'ERR_HOOK_SIGNATURE'],
      [401, 'ERR_HOOK_SIGNATURE'],
      [401, 'ERR_HOOK_UNSIGNED'],
      [401, 'ERR_HOOK_UNSIGNED'],
      [409, 'ERR_HOOK_REPLAYED'],
    ]);
    expect(deliveries.every((x: any) => x.action === 'refused')).toBe(true);
    const logs = await server.api('GET', '/api/v1/services/web/logs?q=hook_refused&limit=50');
    expect(JSON.stringify(logs.body)).toContain('ERR_HOOK_SIGNATURE');
  }, 60_000);

  it('GitLab: the token header authenticates; a push deploys, a wrong token is refused', async () => {
    const sha = publish('gitlab-1');
    const d = delivery('gitlab-push', (b) => Object.assign(b, { after: sha, checkout_sha: sha, ref: 'refs/heads/main' }));
    const wrong = await post(server.routerUrl, 'web', sign(d, 'wrong-token'));
    expect([wrong.status, wrong.json.error.code]).toEqual([401, 'ERR_HOOK_SIGNATURE']);
    const res = await post(server.routerUrl, 'web', sign(d, secret));
    expect(res.status, res.text).toBe(202);
    expect(await settle(res.json.delivery.deploymentId)).toMatchObject({ status: 'live', source: `webhook:gitlab:main@${sha.slice(0, 12)}` });
    expect(await version()).toBe('gitlab-1');
  }, 120_000);

  it('Gitea and Forgejo: the hex signature header authenticates; a push deploys', async () => {
    const sha = publish('gitea-1');
    const res = await post(server.routerUrl, 'web', sign(delivery('gitea-push', (b) => Object.assign(b, { after: sha, ref: 'refs/heads/main' })), secret));
    expect(res.status, res.text).toBe(202);
    expect(await settle(res.json.delivery.deploymentId)).toMatchObject({ status: 'live', source: `webhook:gitea:main@${sha.slice(0, 12)}` });
    expect(await version()).toBe('gitea-1');

    // Forgejo sends the same payload with its own headers beside Gitea's; its signature is the one checked
    const sha2 = publish('forgejo-1');
    const signed = sign(delivery('gitea-push', (b) => Object.assign(b, { after: sha2, ref: 'refs/heads/main' })), secret);
    const forgejo = { ...signed, headers: { ...signed.headers, 'X-Forgejo-Event': 'push', 'X-Forgejo-Delivery': 'fj-1', 'X-Forgejo-Signature': signed.headers['X-Gitea-Signature']! } };
    const bad = await post(server.routerUrl, 'web', { ...forgejo, headers: { ...forgejo.headers, 'X-Forgejo-Signature': '00'.repeat(32) } });
    expect([bad.status, bad.json.error.code]).toEqual([401, 'ERR_HOOK_SIGNATURE']);
    const ok = await post(server.routerUrl, 'web', forgejo);
    expect(ok.status, ok.text).toBe(202);
    expect(await settle(ok.json.delivery.deploymentId)).toMatchObject({ status: 'live', source: `webhook:forgejo:main@${sha2.slice(0, 12)}` });
  }, 120_000);

  it('the generic form deploys; ping, tags and other branches (previews off) are answered and left alone', async () => {
    const sha = publish('generic-1');
    const res = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: sha }, secret));
    expect(res.status, res.text).toBe(202);
    await settle(res.json.delivery.deploymentId);
    expect(await version()).toBe('generic-1');

    const ping = await post(server.routerUrl, 'web', sign(delivery('github-ping'), secret));
    expect(ping.status).toBe(200);
    expect(ping.json.delivery).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/^ping/) });
    const tag = await post(server.routerUrl, 'web', sign(delivery('github-push', (b) => Object.assign(b, { ref: 'refs/tags/v1', after: sha })), secret));
    expect(tag.json.delivery).toMatchObject({ action: 'ignored', detail: 'tag v1: only branches deploy' });
    const other = await post(server.routerUrl, 'web', sign(delivery('gitlab-push', (b) => Object.assign(b, { ref: 'refs/heads/feature', after: sha })), secret));
    expect(other.json.delivery.detail).toMatch(/^feature is not main, the deploy branch of web, and previews are off/);
  }, 120_000);

  it('pull requests deploy and delete previews (GitHub, Gitea, GitLab); a fork is not deployed', async () => {
    expect((await server.api('PATCH', '/api/v1/services/web', { previews: true })).status).toBe(200);
    const sha = publish('pr-1', 'landing');
    const opened = delivery('github-pull_request', (b) => {
      b.pull_request.head.sha = sha;
      b.pull_request.head.ref = 'landing';
    });
    const res = await post(server.routerUrl, 'web', sign(opened, secret));
    expect(res.status, res.text).toBe(202);
    expect(res.json.delivery.action).toBe('preview');
    expect(await settle(res.json.delivery.deploymentId)).toMatchObject({ status: 'live', service: 'landing--web' });
    expect(await version('landing--web')).toBe('pr-1');
    expect((await server.api('GET', '/api/v1/services/landing--web')).body.preview).toEqual({ parent: 'web', branch: 'landing', pullRequest: 7 });

    // the push of the same commit (GitHub sends both) is not built twice
    const push = await post(server.routerUrl, 'web', sign(delivery('github-push', (b) => Object.assign(b, { ref: 'refs/heads/landing', after: sha })), secret));
    expect(push.json.delivery).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/^landing--web already has deployment d-\S+ \(live\) of/) });

    // Gitea's new commits on the pull request
    const sha2 = publish('pr-2', 'landing');
    const sync = await post(server.routerUrl, 'web', sign(delivery('gitea-pull_request', (b) => {
      b.pull_request.head.sha = sha2;
      b.pull_request.head.ref = 'landing';
      b.pull_request.number = b.number = 7;
    }), secret));
    expect(sync.status, sync.text).toBe(202);
    await settle(sync.json.delivery.deploymentId);
    expect(await version('landing--web')).toBe('pr-2');

    const fork = await post(server.routerUrl, 'web', sign(delivery('github-pull_request', (b) => {
      b.pull_request.head.sha = sha2;
      b.pull_request.head.ref = 'from-fork';
      b.pull_request.head.repo = { id: 1234, full_name: 'stranger/web', clone_url: 'https://github.com/stranger/web.git' };
    }), secret));
    expect(fork.json.delivery).toMatchObject({ action: 'ignored', detail: expect.stringMatching(/comes from a fork: not deployed/) });

    const closed = await post(server.routerUrl, 'web', sign(delivery('github-pull_request', (b) => {
      b.action = 'closed';
      b.pull_request.head.sha = sha2;
      b.pull_request.head.ref = 'landing';
    }), secret));
    expect(closed.json.delivery).toMatchObject({ action: 'preview_deleted', detail: 'landing (pull request #7) was closed: preview landing--web deleted' });
    expect((await server.api('GET', '/api/v1/services/landing--web')).status).toBe(404);

    // GitLab: a merge request opened, then merged
    const sha3 = publish('mr-1', 'ms-viewport');
    const mr = (action: string) =>
      sign(delivery('gitlab-merge_request', (b) => {
        b.object_attributes.action = action;
        b.object_attributes.last_commit.id = sha3;
      }), secret);
    const mrOpen = await post(server.routerUrl, 'web', mr('open'));
    expect(mrOpen.status, mrOpen.text).toBe(202);
    await settle(mrOpen.json.delivery.deploymentId);
    expect(await version('ms-viewport--web')).toBe('mr-1');
    const mrMerged = await post(server.routerUrl, 'web', mr('merge'));
    expect(mrMerged.json.delivery.action).toBe('preview_deleted');
    expect((await server.api('GET', '/api/v1/services/web/previews')).body.previews).toEqual([]);
  }, 180_000);

  it('a private repository is cloned with the stored token; without it the deployment fails and the live version stays', async () => {
    const privateUrl = `http://${outside.addr}:${OUTSIDE.port}/private/app.git`;
    expect((await server.api('PUT', '/api/v1/services/web/hooks', { repository: privateUrl, credential: null })).status).toBe(200);
    const sha = publish('private-1');
    const res = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: sha }, secret));
    expect(res.status).toBe(202);
    const failed = await settle(res.json.delivery.deploymentId);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'ERR_SOURCE_GIT' } });
    expect(await version()).toBe('generic-1');

    const set = await server.api('PUT', '/api/v1/services/web/hooks', { credential: { token: REPO_TOKEN } });
    expect(set.body).toMatchObject({ repository: privateUrl, credential: { kind: 'token', username: 'x-access-token' } });
    expect(JSON.stringify(set.body)).not.toContain(REPO_TOKEN);
    const sha2 = publish('private-2');
    const ok = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: sha2 }, secret));
    expect(await settle(ok.json.delivery.deploymentId)).toMatchObject({ status: 'live' });
    expect(await version()).toBe('private-2');
    // the token never reaches a log or a deployment's record
    const log = await server.api('GET', `/api/v1/deployments/${ok.json.delivery.deploymentId}/logs`);
    expect(log.body).not.toContain(REPO_TOKEN);
    expect(fs.readFileSync(path.join(server.dataDir, 'cellhost.db')).includes(Buffer.from(REPO_TOKEN))).toBe(false);
  }, 180_000);

  it('a private repository over ssh is cloned with the stored deploy key and the host key given; another host key is refused', async () => {
    const keys = path.join(root, 'keys');
    fs.mkdirSync(keys);
    for (const k of ['host', 'client', 'other']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', path.join(keys, k)]);
    const sshOutside = await setUpOutside({
      ns: 'chwh-ssh',
      ifName: 'chwh1',
      net24: '198.18.178',
      port: 22,
      command: [process.execPath, SSH_SERVER, root, '22', path.join(keys, 'host'), path.join(keys, 'client.pub')],
    });
    try {
      const known = (file: string) => `${sshOutside.addr} ${fs.readFileSync(path.join(keys, file), 'utf8').trim()}`;
      const url = `ssh://git@${sshOutside.addr}/app.git`;
      const sshKey = fs.readFileSync(path.join(keys, 'client'), 'utf8');
      const set = await server.api('PUT', '/api/v1/services/web/hooks', { repository: url, credential: { sshKey, knownHosts: known('host.pub') } });
      expect(set.body).toMatchObject({ repository: url, credential: { kind: 'ssh-key' } });
      expect(JSON.stringify(set.body)).not.toContain('PRIVATE KEY');
      const sha = publish('ssh-1');
      const res = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: sha }, secret));
      expect(res.status, res.text).toBe(202);
      const dep = await settle(res.json.delivery.deploymentId);
      expect(dep.status, JSON.stringify(dep)).toBe('live');
      expect(await version()).toBe('ssh-1');

      // the host presents a key the service was not told to trust: the clone stops there
      await server.api('PUT', '/api/v1/services/web/hooks', { credential: { sshKey, knownHosts: known('other.pub') } });
      const sha2 = publish('ssh-2');
      const refused = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: sha2 }, secret));
      const failed = await settle(refused.json.delivery.deploymentId);
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'ERR_SOURCE_GIT', message: expect.stringMatching(/Host key verification failed|Could not read from remote/) } });
      expect(await version()).toBe('ssh-1');
      const log = await server.api('GET', `/api/v1/deployments/${res.json.delivery.deploymentId}/logs`);
      expect(log.body).not.toContain('PRIVATE KEY');
    } finally {
      await sshOutside.close();
    }
  }, 180_000);

  it("a rotated secret replaces the old one; the deliveries list says what each did", async () => {
    const rotated = await server.api('POST', '/api/v1/services/web/hooks/secret');
    expect(rotated.status).toBe(200);
    const old = await post(server.routerUrl, 'web', genericDelivery({ ref: 'main', commit: commits['private-2']! }, secret));
    expect(old.json.error.code).toBe('ERR_HOOK_SIGNATURE');
    secret = rotated.body.secret;
    const { deliveries } = (await server.api('GET', '/api/v1/services/web/hooks/deliveries?limit=100')).body;
    const actions = new Set(deliveries.map((d: any) => d.action));
    expect([...actions].sort()).toEqual(['deploy', 'ignored', 'preview', 'preview_deleted', 'refused']);
    expect(deliveries.find((d: any) => d.action === 'deploy')).toMatchObject({ forge: expect.any(String), ref: 'refs/heads/main', deploymentId: expect.stringMatching(/^d-/) });
  }, 60_000);

  it("answers only where no app is served: an app's own /hooks/ path is the app's", async () => {
    const res = await requestRouter(server.routerUrl, 'web.localhost', '/hooks/web', { method: 'POST', body: '{}' });
    expect(res.json).toMatchObject({ service: 'web', path: '/hooks/web' });
    const ip = await post(server.routerUrl, 'nope', genericDelivery({ ref: 'main', commit: commits['private-2']! }, secret), '127.0.0.1');
    expect([ip.status, ip.json.error.code]).toEqual([404, 'ERR_SERVICE_NOT_FOUND']);
    const get = await requestRouter(server.routerUrl, 'localhost', '/hooks/web');
    expect(get.status).toBe(404);
  }, 30_000);

  it('is rate-limited per address: past 60 a minute, 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof post>> | null = null;
    for (let i = 0; i < 70; i++) {
      last = await post(server.routerUrl, 'nope', { headers: {}, body: '{}' });
      statuses.push(last.status);
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.indexOf(429)).toBeLessThanOrEqual(60);
    expect(last!.json.error.code).toBe('ERR_HOOK_RATE_LIMITED');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
  }, 60_000);
});

/** a generic delivery whose body is exactly `text` (signed as sent) */
function genericLike(text: string, secret: string) {
  const signed = genericDelivery({}, secret);
  const sig = crypto.createHmac('sha256', secret).update(text).digest('hex');
  return { headers: { ...signed.headers, 'X-Cellhost-Signature': `sha256=${sig}` }, body: text };
}
