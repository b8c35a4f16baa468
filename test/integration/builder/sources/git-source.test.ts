// Real git on the host (the clone without a sandbox: cellhost not running as root) against a bare
// repository made in a temp dir, as a local path (allowed here, as CELLHOST_GIT_ALLOW_LOCAL=1
// does) and served over smart HTTP from loopback: branches, tags, commits, failures, time limits.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloneGitSource, redactUrl } from '../../../../builder/sources/git-source.ts';
import { allowedProtocols, protocolConfig } from '../../../../builder/sources/git-url.ts';
import { unpackSource } from '../../../../builder/sources/index.ts';
import { CellhostError } from '../../../../runtime/core/errors.ts';
import { freePortSync } from '../../../helpers/subprocess-server.ts';

function hasGit(): boolean {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Gone, or killed and waiting to be reaped (an orphan's zombie belongs to PID 1, not to us). */
async function isRunning(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return status !== '' && !/^State:\s+Z/m.test(status);
}

const gitAvailable = hasGit();
if (!gitAvailable && process.env.CI === 'true') {
  throw new Error('git is required for the git source tests (apt-get install git)');
}

const limits = { maxBytes: 10 * 1024 * 1024, maxEntries: 1000 };
const LOCAL = { allowLocal: true, allowHttp: false };
const BACKEND = join(import.meta.dirname, '../../../helpers/git-http-backend.mjs');
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.test',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.test',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

describe.skipIf(!gitAvailable)('unpackSource: git', () => {
  let root: string;
  let bare: string;
  let dest: string;
  const shas: Record<string, string> = {};

  const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cellhost-git-'));
    bare = join(root, 'origin.git');
    const work = join(root, 'work');
    await mkdir(work);
    git(root, 'init', '--quiet', '--bare', bare);
    git(work, 'init', '--quiet');
    await writeFile(join(work, 'version.txt'), 'v1\n');
    await mkdir(join(work, 'app'));
    await writeFile(join(work, 'app', 'main.py'), 'print("v1")\n');
    await writeFile(join(work, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('app/main.py', join(work, 'entry.py'));
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'v1');
    shas.v1 = git(work, 'rev-parse', 'HEAD');
    git(work, 'tag', 'v1.0');
    await writeFile(join(work, 'version.txt'), 'v2\n');
    git(work, 'commit', '--quiet', '-am', 'v2');
    shas.v2 = git(work, 'rev-parse', 'HEAD');
    git(work, 'checkout', '--quiet', '-b', 'feature');
    await writeFile(join(work, 'version.txt'), 'feature\n');
    await symlink('/etc/passwd', join(work, 'leak'));
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'feature');
    git(work, 'checkout', '--quiet', 'main');
    git(work, 'remote', 'add', 'origin', bare);
    git(work, 'push', '--quiet', 'origin', 'main', 'feature', 'v1.0');
    // v2 is main's tip, so v1 is a commit no branch or tag names any more once the tag is gone.
    git(work, 'push', '--quiet', 'origin', ':refs/tags/v1.0');
    git(work, 'tag', '-d', 'v1.0');
    git(work, 'tag', 'v1.0', shas.v1);
    git(work, 'push', '--quiet', 'origin', 'v1.0');
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    dest = join(root, `dest-${Math.random().toString(36).slice(2)}`);
    await mkdir(dest);
  });

  it('clones the default branch without .git', async () => {
    const result = await unpackSource({ kind: 'git', url: bare }, dest, { limits, gitPolicy: LOCAL });
    expect(await readFile(join(dest, 'version.txt'), 'utf8')).toBe('v2\n');
    expect(existsSync(join(dest, '.git'))).toBe(false);
    expect(result).toMatchObject({ files: 4, commit: shas.v2 });
    expect(await readFile(join(dest, 'entry.py'), 'utf8')).toBe('print("v1")\n');
    expect((await stat(join(dest, 'run.sh'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dest, 'version.txt'))).mode & 0o7777).toBe(0o644);
    expect((await stat(join(dest, 'app'))).mode & 0o7777).toBe(0o755);
  });

  it('clones a tag over file://', async () => {
    const result = await unpackSource({ kind: 'git', url: `file://${bare}`, ref: 'v1.0' }, dest, { limits, gitPolicy: LOCAL });
    expect(await readFile(join(dest, 'version.txt'), 'utf8')).toBe('v1\n');
    expect(result.commit).toBe(shas.v1);
  });

  it('clones a commit by full and by short sha', async () => {
    const full = await unpackSource({ kind: 'git', url: bare, ref: shas.v1 }, dest, { limits, gitPolicy: LOCAL });
    expect(full.commit).toBe(shas.v1);
    expect(await readFile(join(dest, 'version.txt'), 'utf8')).toBe('v1\n');
    const dest2 = `${dest}-short`;
    await mkdir(dest2);
    const short = await unpackSource({ kind: 'git', url: bare, ref: shas.v1.slice(0, 10) }, dest2, { limits, gitPolicy: LOCAL });
    expect(short.commit).toBe(shas.v1);
    expect(existsSync(join(dest2, '.git'))).toBe(false);
  });

  it('applies the root directory', async () => {
    await unpackSource({ kind: 'git', url: bare, ref: 'main' }, dest, { limits, rootDir: 'app', gitPolicy: LOCAL });
    expect(await readdir(dest)).toEqual(['main.py']);
  });

  it('refuses a branch holding a symlink that points outside', async () => {
    const err = await unpackSource({ kind: 'git', url: bare, ref: 'feature' }, dest, { limits, gitPolicy: LOCAL }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CellhostError);
    expect(err).toMatchObject({ code: 'ERR_SOURCE_INVALID', message: expect.stringMatching(/'leak' is a symlink to an absolute path/) });
    expect(await readdir(dest)).toEqual([]);
  });

  it('refuses a repository over the limits', async () => {
    const err = await unpackSource({ kind: 'git', url: bare }, dest, { limits: { maxBytes: 10, maxEntries: 1000 }, gitPolicy: LOCAL }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_SOURCE_TOO_LARGE' });
    expect(await readdir(dest)).toEqual([]);
  });

  it('fails with git’s own last line for a bad URL, a missing ref and an unknown sha', async () => {
    const missing = join(root, 'nope.git');
    await expect(unpackSource({ kind: 'git', url: missing }, dest, { limits, gitPolicy: LOCAL })).rejects.toMatchObject({
      code: 'ERR_SOURCE_GIT',
      message: expect.stringMatching(/^git clone of .*nope\.git failed: fatal: .*nope\.git/),
    });
    await expect(unpackSource({ kind: 'git', url: bare, ref: 'no-such-branch' }, dest, { limits, gitPolicy: LOCAL })).rejects.toMatchObject({
      code: 'ERR_SOURCE_GIT',
      message: expect.stringMatching(/Remote branch no-such-branch not found/),
    });
    await expect(unpackSource({ kind: 'git', url: bare, ref: 'deadbeefdeadbeef' }, dest, { limits, gitPolicy: LOCAL })).rejects.toMatchObject({
      code: 'ERR_SOURCE_GIT',
      message: expect.stringMatching(/ref 'deadbeefdeadbeef' is not a branch, tag or commit/),
    });
    await expect(unpackSource({ kind: 'git', url: '--upload-pack=touch /tmp/x', ref: 'main' }, dest, { limits, gitPolicy: LOCAL })).rejects.toMatchObject({
      code: 'ERR_SOURCE_GIT_URL',
      message: expect.stringMatching(/starts with '-'/),
    });
    await expect(unpackSource({ kind: 'git', url: bare, ref: '--orphan' }, dest, { limits, gitPolicy: LOCAL })).rejects.toMatchObject({ code: 'ERR_SOURCE_GIT' });
    expect(await readdir(dest)).toEqual([]);
  });

  it('never prompts for credentials and hides them in errors', async () => {
    // Nothing listens on port 9 of loopback: git fails at once instead of asking for a password.
    const err = await unpackSource({ kind: 'git', url: 'https://user:s3cret@127.0.0.1:9/repo.git' }, dest, { limits }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_SOURCE_GIT' });
    expect((err as Error).message).not.toContain('s3cret');
    expect((err as Error).message).toContain('https://***@127.0.0.1:9/repo.git');
    const refused = await unpackSource({ kind: 'git', url: 'ftp://user:s3cret@127.0.0.1/repo.git' }, dest, { limits }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_SOURCE_GIT_URL' });
    expect((refused as Error).message).not.toContain('s3cret');
    expect(redactUrl('see https://a:b@host/x and ssh://git@host/y')).toBe('see https://***@host/x and ssh://***@host/y');
  });

  it('stops a clone that outlives its time limit, helpers included', async () => {
    // An ssh that never answers: git waits on it until the time limit kills the group.
    const helperDir = join(root, 'bin');
    const pidFile = join(root, 'ssh.pid');
    await mkdir(helperDir, { recursive: true });
    await writeFile(join(helperDir, 'stall-ssh'), `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`, { mode: 0o755 });
    // the operator's GIT_SSH_COMMAND is one of the settings a host clone keeps
    const env = { ...process.env, GIT_SSH_COMMAND: join(helperDir, 'stall-ssh') };
    const started = Date.now();
    const err = await cloneGitSource('ssh://git.invalid/repo.git', undefined, dest, { timeoutMs: 500, env }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toMatchObject({ code: 'ERR_SOURCE_GIT', message: expect.stringMatching(/timed out after 1 s/) });
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(await isRunning(pid)).toBe(false);
  });

  it('stops when the caller aborts', async () => {
    const ctl = new AbortController();
    const reason = new Error('deploy cancelled');
    ctl.abort(reason);
    await expect(cloneGitSource(bare, undefined, dest, { signal: ctl.signal, policy: LOCAL })).rejects.toBe(reason);
  });

  it('refuses local paths, file:// and other transports unless allowed, before running git', async () => {
    for (const url of [bare, `file://${bare}`, 'fd::17', 'ext::sh -c id', `http://127.0.0.1:9/x.git`]) {
      const err = await unpackSource({ kind: 'git', url }, dest, { limits }).catch((e: unknown) => e);
      expect(err, url).toMatchObject({ code: 'ERR_SOURCE_GIT_URL' });
    }
    expect(await readdir(dest)).toEqual([]);
  });

  it('the settings given to git refuse what the policy refuses, whatever the URL check let through', async () => {
    // a redirect or a submodule would reach git without the URL check: git must refuse it itself
    const tryClone = (policy: { allowLocal: boolean; allowHttp: boolean }, url: string, viaEnv: boolean) => {
      const out = join(root, `raw-${Math.random().toString(36).slice(2)}`);
      const args = viaEnv ? ['clone', '--quiet', url, out] : [...protocolConfig(policy), 'clone', '--quiet', url, out];
      const env = viaEnv ? { ...GIT_ENV, GIT_ALLOW_PROTOCOL: allowedProtocols(policy) } : GIT_ENV;
      try {
        execFileSync('git', args, { env, stdio: 'pipe' });
        return 'cloned';
      } catch (err) {
        return String((err as { stderr?: Buffer }).stderr);
      }
    };
    for (const viaEnv of [false, true]) {
      expect(tryClone({ allowLocal: false, allowHttp: false }, `file://${bare}`, viaEnv)).toMatch(/transport 'file' not allowed/);
      expect(tryClone({ allowLocal: false, allowHttp: false }, 'ext::sh -c true', viaEnv)).toMatch(/transport 'ext' not allowed/);
      expect(tryClone(LOCAL, `file://${bare}`, viaEnv)).toBe('cloned');
    }
  });
});

describe.skipIf(!gitAvailable)('unpackSource: git over http', () => {
  let root: string;
  let server: ChildProcess;
  let base: string;
  let dest: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cellhost-git-http-'));
    const work = join(root, 'work');
    await mkdir(join(root, 'served'));
    await mkdir(work);
    const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
    git(work, 'init', '--quiet');
    await writeFile(join(work, 'hello.txt'), 'over http\n');
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'one');
    git(root, 'clone', '--quiet', '--bare', work, join(root, 'served', 'app.git'));
    const port = await freePortSync();
    server = spawn(process.execPath, [BACKEND, join(root, 'served'), String(port), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`the git server exited (${code})`)));
    });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    if (server?.pid && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      process.kill(server.pid, 'SIGKILL');
      await exited;
    }
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    dest = join(root, `dest-${Math.random().toString(36).slice(2)}`);
    await mkdir(dest);
  });

  it('clones over http when the operator allows it, and refuses it otherwise', async () => {
    const refused = await unpackSource({ kind: 'git', url: `${base}/app.git` }, dest, { limits }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_SOURCE_GIT_URL', message: expect.stringMatching(/CELLHOST_GIT_ALLOW_HTTP/) });
    const result = await unpackSource({ kind: 'git', url: `${base}/app.git`, ref: 'main' }, dest, { limits, gitPolicy: { allowLocal: false, allowHttp: true } });
    expect(result.files).toBe(1);
    expect(await readFile(join(dest, 'hello.txt'), 'utf8')).toBe('over http\n');
  });

  it('says what git said when the repository is not there', async () => {
    await expect(unpackSource({ kind: 'git', url: `${base}/nope.git` }, dest, { limits, gitPolicy: { allowLocal: false, allowHttp: true } })).rejects.toMatchObject({
      code: 'ERR_SOURCE_GIT',
      message: expect.stringMatching(/^git clone of http:\/\/127\.0\.0\.1:\d+\/nope\.git failed: fatal: repository .* not found/),
    });
  });
});
