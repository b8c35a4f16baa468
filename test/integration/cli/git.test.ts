// The git verbs against a real server: `cellhost git-remote` prints commands that work as printed
// (the CLI itself as git's credential helper, through a `cellhost` on PATH), `cellhost hooks`
// shows, configures and rotates a webhook with its deliveries, and `cellhost services` lists
// previews under their service.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { gitRun, remoteLines } from '../../helpers/git-client.ts';
import { git, hasGit } from '../../helpers/git-repos.ts';
import { startTestServer, tempDir, TOKEN, type TestServer } from '../../helpers/server.ts';
import { genericDelivery, post } from '../../helpers/webhooks.ts';

if (!hasGit() && process.env.CI === 'true') throw new Error('git is required for the git CLI tests (apt-get install git)');

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const APP = `require('http').createServer((req, res) => res.end(require('fs').readFileSync('version.txt', 'utf8'))).listen(Number(process.env.PORT));\n`;

let server: TestServer;
let home: string;
let bin: string;

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: home, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN, ...env },
    cwd: home,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
  });
  return { code, out, err };
}

beforeAll(async () => {
  server = await startTestServer();
  home = tempDir('cellhost-cli-git-');
  // `cellhost` on PATH, as an installed one would be: this checkout's CLI
  bin = path.join(home, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'cellhost'), `#!/bin/sh\nexec "${process.execPath}" --import "${pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs'))}" "${path.join(ROOT, 'runtime/main.ts')}" "$@"\n`, { mode: 0o755 });
  expect((await server.api('POST', '/api/v1/services', { name: 'site', runtime: 'node', buildCommand: 'true', startCommand: 'node app.js' })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe.skipIf(!hasGit())('cellhost git-remote', () => {
  it('prints the remote and the credential helper; run as printed, git push deploys', async () => {
    const r = await cli(['git-remote', 'site']);
    expect(r.code, r.err).toBe(0);
    const commands = r.out.split('\n').filter((l) => l.startsWith('git '));
    expect(commands).toEqual([
      `git remote add cellhost ${server.adminUrl}/git/site.git`,
      `git config credential.${server.adminUrl}.helper '!cellhost git-remote --credential'`,
      'git push cellhost main',
    ]);
    expect(r.out).toContain(`#   git remote add cellhost ${server.adminUrl.replace('http://', 'http://cellhost:<token>@')}/git/site.git`);

    const work = path.join(home, 'site');
    fs.mkdirSync(work);
    git(work, 'init', '--quiet', '-b', 'main');
    fs.writeFileSync(path.join(work, 'app.js'), APP);
    fs.writeFileSync(path.join(work, 'version.txt'), 'from the CLI');
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'one');
    // each printed command, through a shell as a user would paste it; the helper finds the token in CELLHOST_TOKEN
    const env = { PATH: `${bin}:${process.env.PATH}`, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN };
    for (const line of commands) {
      const args = line.replace(/^git /, '').match(/'[^']*'|\S+/g)!.map((a) => a.replace(/^'|'$/g, ''));
      const done = await gitRun(work, args, env);
      expect(done.code, `${line}\n${done.out}`).toBe(0);
      if (line.startsWith('git push')) expect(remoteLines(done.out).at(-1)).toMatch(/^==> site is live at /);
    }
    expect(fs.readFileSync(path.join(work, '.git', 'config'), 'utf8')).not.toContain(TOKEN);
    expect((await server.app('site')).text).toBe('from the CLI');
  }, 120_000);

  it('--credential answers git\'s "get" with the token, and nothing else', async () => {
    expect((await cli(['git-remote', '--credential', 'get'])).out).toBe(`username=cellhost\npassword=${TOKEN}\n`);
    expect((await cli(['git-remote', '--credential', 'store'])).out).toBe('');
    expect((await cli(['git-remote', 'nope'])).code).toBe(1);
  });
});

describe('cellhost hooks', () => {
  it('shows the webhook, configures it, rotates the secret and lists deliveries', async () => {
    const first = await cli(['hooks', 'site', '--repo', 'https://git.example.com/site.git', '--token', 'tok-secret-1', '--previews', 'on']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/URL {10}http:\/\/localhost:\d+\/hooks\/site/);
    expect(first.out).toContain('secret       ****   (--reveal shows it)');
    expect(first.out).toContain('repository   https://git.example.com/site.git');
    expect(first.out).toContain('credential   token (user x-access-token)');
    expect(first.out).toContain('deploys      main; other branches and pull requests: previews');
    expect(first.out).toContain('No deliveries yet.');
    expect(first.out).not.toContain('tok-secret-1');

    const revealed = await cli(['hooks', 'site', '--reveal']);
    const secret = /secret {7}([0-9a-f]{64})/.exec(revealed.out)![1]!;
    const res = await post(server.routerUrl, 'site', genericDelivery({ ref: 'refs/tags/v1', commit: 'a'.repeat(40) }, secret));
    expect(res.status).toBe(200);
    const listed = await cli(['hooks', 'site']);
    expect(listed.out).toMatch(/ID\s+RECEIVED\s+FROM\s+EVENT\s+STATUS\s+ACTION\s+DETAIL/);
    expect(listed.out).toMatch(/generic\s+push\s+200\s+ignored\s+tag v1: only branches deploy/);

    const rotated = await cli(['hooks', 'site', '--rotate']);
    const fresh = /secret {7}([0-9a-f]{64}) {3}\(new/.exec(rotated.out)![1]!;
    expect(fresh).not.toBe(secret);
    const old = await post(server.routerUrl, 'site', genericDelivery({ ref: 'refs/tags/v2', commit: 'a'.repeat(40) }, secret));
    expect(old.status).toBe(401);
    expect((await cli(['hooks', 'site', '--token', 'x', '--no-credential'])).code).toBe(2);
  }, 60_000);
});

describe('cellhost env and previews', () => {
  it('--no-previews keeps a variable from previews; ls says which they get', async () => {
    expect((await cli(['env', 'set', 'site', 'SECRET=x', '--no-previews'])).code).toBe(0);
    expect((await cli(['env', 'set', 'site', 'PUBLIC=y'])).code).toBe(0);
    const ls = await cli(['env', 'ls', 'site']);
    expect(ls.out).toMatch(/PUBLIC\s+1 B\s+\S+\s+yes/);
    expect(ls.out).toMatch(/SECRET\s+1 B\s+\S+\s+no/);
    expect((await cli(['env', 'set', 'site', 'SECRET=z', '--previews'])).code).toBe(0);
    expect((await cli(['env', 'ls', 'site'])).out).toMatch(/SECRET\s+1 B\s+\S+\s+yes/);
  });
});

describe.skipIf(!hasGit())('cellhost services', () => {
  it('lists a service\'s previews under it, with their branch', async () => {
    const work = path.join(home, 'site');
    git(work, 'checkout', '--quiet', '-b', 'topic');
    expect((await gitRun(work, ['push', 'cellhost', 'topic'], { PATH: `${bin}:${process.env.PATH}`, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN })).code).toBe(0);
    const r = await cli(['services']);
    const lines = r.out.trim().split('\n');
    const at = lines.findIndex((l) => l.startsWith('site '));
    expect(lines[at + 1]).toMatch(/^ {2}preview topic--site \(topic\)\s+node/);
  }, 120_000);
});
