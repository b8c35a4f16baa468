// Git repositories made for tests with the host's git: a commit of given files, as a working
// repository or a bare one (what a git server serves).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.test',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.test',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

export function hasGit(): boolean {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** a repository in `dir` (made if missing) with one commit of `files` on main; returns the commit */
export function makeRepo(dir: string, files: Record<string, string>, opts: { bare?: boolean } = {}): string {
  const work = opts.bare ? `${dir}.work` : dir;
  mkdirSync(work, { recursive: true });
  git(work, 'init', '--quiet');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
    writeFileSync(path.join(work, name), text);
  }
  git(work, 'add', '-A');
  git(work, 'commit', '--quiet', '-m', 'files');
  const sha = git(work, 'rev-parse', 'HEAD');
  if (opts.bare) {
    git(path.dirname(dir), 'clone', '--quiet', '--bare', work, dir);
    execFileSync('rm', ['-rf', work]);
  }
  return sha;
}
