// The bare repositories behind `git push`: one per service under <data>/git, root's alone (0700).
// Every git process the platform runs on them gets its settings from the environment, not from
// the repository's own config or the operator's: the hooks are the platform's (core.hooksPath),
// force pushes are taken (they deploy the new commit), deletions reach the hook (which refuses
// the deploy branch's), and what is pushed is checked (fsck). The repositories are made without
// a template, so no sample hooks or config from the host's git installation come along.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CellhostError } from '../core/errors.ts';

const run = promisify(execFile);

export interface GitRepos {
  /** GIT_PROJECT_ROOT: the dir holding <service>.git */
  root: string;
  /** the service's repository (made if missing), its HEAD on `branch` */
  ensure(service: string, branch: string): Promise<string>;
  /** the path of the service's repository, whether or not it exists */
  pathOf(service: string): string;
  remove(service: string): Promise<void>;
  /** the whole environment for a git process on these repositories */
  env(extra?: Record<string, string>): Record<string, string>;
  /** the object a ref names (unpeeled), or null when the repository or the ref does not exist */
  resolve(service: string, ref: string): Promise<string | null>;
}

export interface GitReposOptions {
  root: string;
  /** where the platform's hooks are (core.hooksPath) */
  hooksDir: string;
  /** an empty dir for HOME, so no user's ~/.gitconfig is read */
  homeDir: string;
}

/** git's settings for every process on the platform's repositories */
export function repoConfig(hooksDir: string): [string, string][] {
  return [
    ['core.hooksPath', hooksDir],
    ['core.logAllRefUpdates', 'true'],
    ['http.receivepack', 'true'],
    ['http.uploadpack', 'true'],
    ['http.getanyfile', 'false'],
    ['receive.denyNonFastForwards', 'false'],
    ['receive.denyDeletes', 'false'],
    ['receive.denyCurrentBranch', 'refuse'],
    ['receive.fsckObjects', 'true'],
    ['receive.advertisePushOptions', 'false'],
    ['receive.advertiseAtomic', 'true'],
    ['uploadpack.allowFilter', 'true'],
  ];
}

export function createGitRepos(opts: GitReposOptions): GitRepos {
  const pathOf = (service: string) => path.join(opts.root, `${service}.git`);
  const config = repoConfig(opts.hooksDir);
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: opts.homeDir,
    LANG: 'C.UTF-8',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_COUNT: String(config.length),
    ...Object.fromEntries(config.flatMap(([k, v], i) => [[`GIT_CONFIG_KEY_${i}`, k], [`GIT_CONFIG_VALUE_${i}`, v]])),
    ...extra,
  });
  const git = (args: string[], extra?: Record<string, string>) => run('git', args, { env: env(extra), maxBuffer: 1024 * 1024 });

  return {
    root: opts.root,
    pathOf,
    env,
    async ensure(service, branch) {
      const dir = pathOf(service);
      await fs.mkdir(opts.root, { recursive: true, mode: 0o700 });
      await fs.mkdir(opts.homeDir, { recursive: true, mode: 0o700 });
      const st = await fs.lstat(dir).catch(() => null);
      if (st?.isDirectory()) {
        // a clone checks out HEAD: it follows the service's deploy branch when that changes
        const head = await fs.readFile(path.join(dir, 'HEAD'), 'utf8').catch(() => '');
        if (head.trim() !== `ref: refs/heads/${branch}`) await git(['--git-dir', dir, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
        return dir;
      }
      if (st) throw new CellhostError('ERR_INTERNAL', `${dir} is not a directory`);
      // made beside its place and renamed in, so a half-made repository is never served
      const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
      try {
        await git(['init', '--quiet', '--bare', '--template=', tmp]);
        await git(['--git-dir', tmp, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
        await fs.chmod(tmp, 0o700);
        await fs.rename(tmp, dir);
      } catch (err) {
        await fs.rm(tmp, { recursive: true, force: true });
        if ((await fs.lstat(dir).catch(() => null))?.isDirectory()) return dir; // made meanwhile by another request
        throw new CellhostError('ERR_INTERNAL', `the git repository of ${service} could not be made: ${(err as Error).message}`, { cause: err });
      }
      return dir;
    },
    async remove(service) {
      await fs.rm(pathOf(service), { recursive: true, force: true });
    },
    async resolve(service, ref) {
      const dir = pathOf(service);
      try {
        const { stdout } = await git(['--git-dir', dir, 'rev-parse', '--verify', '--quiet', ref]);
        return stdout.trim() || null;
      } catch {
        return null;
      }
    },
  };
}
