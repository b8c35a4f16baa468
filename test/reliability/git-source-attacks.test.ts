// Git sources as an attacker with a deploy token would use them against the host: a local path or
// file:// URL naming a repository only root can read, a URL at the host's loopback services (the
// admin listener, anything else listening there), git's fd:: transport (which held a build slot
// until the clone's time limit), and a repository planted with objects/info/alternates pointing at
// another repository's objects. Each runs against the real platform (sandbox, namespaces); a git
// server in a test-made "outside" namespace shows that an ordinary clone still works.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { git, hasGit, makeRepo } from '../helpers/git-repos.ts';
import { setUpOutside, type Outside } from '../helpers/outside.ts';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available && hasGit();
const BACKEND = path.join(import.meta.dirname, '../helpers/git-http-backend.mjs');
const OUTSIDE = { ns: 'chgs-out', ifName: 'chgs0', net24: '198.18.231', port: 9418 };

describe('git source attack prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, namespaces and git are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons, ...(hasGit() ? [] : ['git is not installed'])]).toEqual([]);
  });
});

const SETTINGS = { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', idleTimeoutS: 30 };
const APP_JS = fs.readFileSync(path.join(FIXTURES, 'node-hello', 'app.js'), 'utf8');
const secret = `root-only-${Math.random().toString(36).slice(2)}`;

/** a repository only root can read (0700), and one that borrows its objects through alternates */
function makeRepos(base: string): { rootOnly: string; planted: string; served: string } {
  const rootOnly = path.join(base, 'root-only');
  const secretCommit = makeRepo(rootOnly, { 'app.js': APP_JS, 'secret.txt': secret });
  fs.chmodSync(rootOnly, 0o700);
  // the planted one: readable by all, with no objects of its own; its main names the secret commit
  const planted = path.join(base, 'planted.git');
  git(base, 'init', '--quiet', '--bare', planted);
  fs.writeFileSync(path.join(planted, 'objects', 'info', 'alternates'), path.join(rootOnly, '.git', 'objects') + '\n');
  git(planted, 'update-ref', 'refs/heads/main', secretCommit);
  git(planted, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  // what the outside git server serves: an ordinary app
  const served = path.join(base, 'served');
  makeRepo(path.join(served, 'hello.git'), { 'app.js': APP_JS, 'package.json': '{ "name": "hello", "private": true }\n' }, { bare: true });
  return { rootOnly, planted, served };
}

describe.skipIf(!ready)('git sources against the host', () => {
  let base: string;
  let repos: ReturnType<typeof makeRepos>;
  let plain: TestServer;
  let opened: TestServer;
  let outside: Outside | null = null;
  let loopback: net.Server;
  let loopbackPort = 0;
  const loopbackHits: string[] = [];

  /** POST a git deployment; when it was accepted, wait for it and say what its image holds */
  const deployGit = async (server: TestServer, service: string, url: string, ref?: string) => {
    if ((await server.api('GET', `/api/v1/services/${service}`)).status === 404) {
      expect((await server.api('POST', '/api/v1/services', { name: service, ...SETTINGS })).status).toBe(201);
    }
    const started = Date.now();
    const res = await server.api('POST', `/api/v1/services/${service}/deployments`, { git: url, ...(ref ? { ref } : {}) });
    const answeredMs = Date.now() - started;
    if (res.status !== 202) return { res, answeredMs, dep: null, leaked: false };
    const dep = await server.waitDeployment(res.body.id);
    const image = path.join(server.dataDir, 'images', res.body.id, 'secret.txt');
    const leaked = fs.existsSync(image) && fs.readFileSync(image, 'utf8') === secret;
    return { res, answeredMs, dep, leaked };
  };

  beforeAll(async () => {
    // outside /tmp: the sandbox's private /tmp would hide it anyway, so "unreadable" must be the
    // sandbox's doing, not that
    base = fs.mkdtempSync('/var/tmp/cellhost-git-attacks-');
    fs.chmodSync(base, 0o755);
    repos = makeRepos(base);
    outside = await setUpOutside({ ...OUTSIDE, command: [process.execPath, BACKEND, repos.served, String(OUTSIDE.port)] });
    // a service on the host's loopback: any connection to it is a clone that reached the host
    loopback = net.createServer((s) => {
      loopbackHits.push(s.remoteAddress ?? '?');
      s.destroy();
    });
    await new Promise<void>((r) => loopback.listen(0, '127.0.0.1', r));
    loopbackPort = (loopback.address() as net.AddressInfo).port;
    [plain, opened] = await Promise.all([
      startTestServer(),
      // a clone may take as long as a build: 3 s here, so one that hangs ends soon
      startTestServer({ env: { CELLHOST_GIT_ALLOW_LOCAL: '1', CELLHOST_GIT_ALLOW_HTTP: '1', CELLHOST_BUILD_TIMEOUT_S: '3' } }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([plain?.close(), opened?.close()]);
    await outside?.close();
    loopback?.close();
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  describe('by default', () => {
    it('a local path to a root-only (0700) repository is refused at once', async () => {
      const { res, dep, leaked } = await deployGit(plain, 'g-local', repos.rootOnly);
      expect(res.status, `accepted; the deployment ended ${dep?.status}${leaked ? ' with the root-only secret in its image' : ''}`).toBe(400);
      expect(res.body.error.code).toBe('ERR_SOURCE_GIT_URL');
      expect(res.body.error.message).toMatch(/CELLHOST_GIT_ALLOW_LOCAL/);
    });

    it('a file:// URL is refused at once', async () => {
      const { res, dep, leaked } = await deployGit(plain, 'g-file', `file://${repos.rootOnly}`);
      expect(res.status, `accepted; the deployment ended ${dep?.status}${leaked ? ' with the root-only secret in its image' : ''}`).toBe(400);
      expect(res.body.error.code).toBe('ERR_SOURCE_GIT_URL');
    });

    it('fd:: and other transports are refused at once, holding no build slot', async () => {
      expect((await plain.api('POST', '/api/v1/services', { name: 'g-fd', ...SETTINGS })).status).toBe(201);
      for (const url of ['fd::17', 'fd::0,1', 'ext::sh -c touch% /tmp/pwned', 'git://127.0.0.1/x.git', 'ftp://example.com/x.git']) {
        const started = Date.now();
        const res = await plain.api('POST', '/api/v1/services/g-fd/deployments', { git: url });
        expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(400);
        expect(res.body.error.code).toBe('ERR_SOURCE_GIT_URL');
        expect(Date.now() - started).toBeLessThan(2000);
      }
      const listed = await plain.api('GET', '/api/v1/services/g-fd/deployments');
      expect(listed.body.deployments).toEqual([]);
    });

    it('plain http is refused unless allowed, so the admin listener is not asked', async () => {
      const admin = new URL(plain.adminUrl);
      const { res } = await deployGit(plain, 'g-admin', `http://127.0.0.1:${admin.port}/`);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/CELLHOST_GIT_ALLOW_HTTP/);
    });

    it("an https URL at the host's loopback reaches nothing there", async () => {
      const hitsBefore = loopbackHits.length;
      const { res, dep } = await deployGit(plain, 'g-loop', `https://127.0.0.1:${loopbackPort}/repo.git`);
      expect(res.status).toBe(202);
      expect(dep.status).toBe('failed');
      expect(dep.error?.code).toBe('ERR_SOURCE_GIT');
      expect(loopbackHits.slice(hitsBefore), 'connections that reached the host loopback').toEqual([]);
    });
  });

  describe('with local paths and http allowed (CELLHOST_GIT_ALLOW_LOCAL=1, CELLHOST_GIT_ALLOW_HTTP=1)', () => {
    it('the clone cannot read a root-only repository', async () => {
      const { res, dep, leaked } = await deployGit(opened, 'o-local', repos.rootOnly);
      expect(leaked, 'the root-only secret is in the image').toBe(false);
      expect(res.status).toBe(202);
      expect(dep.status).toBe('failed');
      expect(dep.error?.code).toBe('ERR_SOURCE_GIT');
    });

    it("a repository planted with alternates does not serve another repository's content", async () => {
      const { res, dep, leaked } = await deployGit(opened, 'o-planted', repos.planted);
      expect(leaked, 'the root-only secret is in the image').toBe(false);
      expect(res.status).toBe(202);
      expect(dep.status).toBe('failed');
      // refused for want of the objects (the sandbox does not have the path the alternates name),
      // not by git's check of who owns the repository
      expect(dep.error?.message).not.toMatch(/dubious ownership/);
    });

    it("http URLs at the host's loopback reach nothing there: neither the admin listener nor another service", async () => {
      const hitsBefore = loopbackHits.length;
      const other = await deployGit(opened, 'o-loop', `http://127.0.0.1:${loopbackPort}/repo.git`);
      expect(other.dep?.status).toBe('failed');
      expect(loopbackHits.slice(hitsBefore), 'connections that reached the host loopback').toEqual([]);
      const admin = new URL(opened.adminUrl);
      const asked = await deployGit(opened, 'o-admin', `http://127.0.0.1:${admin.port}/api/v1/health`);
      expect(asked.dep?.status).toBe('failed');
      // the admin listener would have answered (404, or a repository "not found")
      expect(asked.dep?.error?.message).toMatch(/Failed to connect|Could not connect|Connection refused/i);
    });

    it('a local repository the service may read is cloned', async () => {
      const { res, dep } = await deployGit(opened, 'o-readable', path.join(repos.served, 'hello.git'));
      expect(res.status).toBe(202);
      expect(dep.status, dep.error?.message).toBe('live');
      expect((await opened.app('o-readable')).json.hello).toBe('o-readable');
    });

    it('a clone that hangs is stopped at its time limit, with nothing of it left running', async () => {
      const started = Date.now();
      const { dep } = await deployGit(opened, 'o-stall', `http://${outside!.addr}:${OUTSIDE.port}/stall/app.git`);
      expect(dep.status).toBe('failed');
      expect(dep.error?.message).toMatch(/timed out after 3 s/);
      expect(Date.now() - started).toBeLessThan(15_000);
      const uid = (await opened.api('GET', '/api/v1/services/o-stall')).body.uid as number;
      // a zombie is gone: an orphan's belongs to PID 1 to reap, not to us
      const running = (p: string) => {
        try {
          return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
        } catch {
          return false; // ended meanwhile
        }
      };
      const left = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && fs.statSync(`/proc/${p}`, { throwIfNoEntry: false })?.uid === uid && running(p));
      // the kill is sent as the clone times out; a loaded machine may take a moment to reap it
      await waitFor(() => left().length === 0, { what: "the clone's processes to end", timeoutMs: 5000 }).catch(() => {});
      expect(left().map((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')), 'processes of the service uid').toEqual([]);
    });

    it('an ordinary http clone from a git server outside still works', async () => {
      const { res, dep } = await deployGit(opened, 'o-served', `http://${outside!.addr}:${OUTSIDE.port}/hello.git`, 'main');
      expect(res.status).toBe(202);
      expect(dep.status, dep.error?.message).toBe('live');
      const answer = await opened.app('o-served');
      expect(answer.status).toBe(200);
      expect(answer.json.hello).toBe('o-served');
    });
  });
});
