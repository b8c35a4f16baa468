// Clones a git URL (or a path git can clone) at a ref into an empty directory with the host's git:
// argv only, no prompts, a time limit, hooks and dangerous transports off. `.git` is removed after.
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { Logger } from '../../runtime/core/log.ts';

export const DEFAULT_GIT_TIMEOUT_MS = 5 * 60_000;
const STDERR_KEEP = 16 * 1024;
const SHA_LIKE = /^[0-9a-f]{4,40}$/i;

// Settings for every git call: no remote-helper command execution, no hooks from the operator's
// templates, no fsmonitor daemon, quiet about detached HEADs.
const SAFE_CONFIG = [
  '-c', 'protocol.ext.allow=never',
  '-c', 'core.hooksPath=/dev/null',
  '-c', 'core.fsmonitor=false',
  '-c', 'submodule.recurse=false',
  '-c', 'advice.detachedHead=false',
];

/** Hides credentials written into a URL (`https://user:token@host/...`). */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

function gitError(message: string, cause?: unknown): CellhostError {
  return new CellhostError('ERR_SOURCE_GIT', redactUrl(message), { cause });
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length > 0 ? lines[lines.length - 1] : '';
}

// The operator's git settings (credential helpers, SSH keys) still apply; variables that would
// point git at another repository or let it wait for a password do not.
function gitEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith('GIT_') && k !== 'GIT_SSH_COMMAND' && k !== 'GIT_SSH') continue;
    env[k] = v;
  }
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_ASKPASS = '';
  env.SSH_ASKPASS = '';
  env.GCM_INTERACTIVE = 'never';
  env.LC_ALL = 'C';
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return env;
}

interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runGit(args: string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout also ends the ssh / remote helper / upload-pack it started.
    const child = spawn('git', [...SAFE_CONFIG, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < STDERR_KEEP) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-STDERR_KEEP);
    });
    const kill = () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL'); // the group is gone already; the leader alone may remain
        }
      }
    };
    if (signal.aborted) kill();
    signal.addEventListener('abort', kill, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', kill);
      reject(err.code === 'ENOENT' ? gitError('git is not installed on this host (install the git package)', err) : err);
    });
    child.on('close', (code) => {
      signal.removeEventListener('abort', kill);
      resolve({ code, stdout, stderr });
    });
  });
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}

export interface GitCloneOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: Logger;
  /** Environment git runs with (default this process's); GIT_* overrides are dropped either way. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Clones `url` at `ref` (branch, tag or commit; default branch when absent) into `dir`, which must
 * exist and be empty. Returns the commit checked out. Leaves no `.git` behind.
 */
export async function cloneGitSource(url: string, ref: string | undefined, dir: string, opts: GitCloneOptions = {}): Promise<{ commit: string }> {
  if (url === '' || url.startsWith('-') || /[\0\r\n]/.test(url)) throw gitError(`invalid git URL '${url}'`);
  if (ref !== undefined && (ref === '' || ref.startsWith('-') || /[\s\0-\x1f\x7f~^:?*[\\]|\.\./.test(ref))) {
    throw gitError(`invalid git ref '${ref}'`);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const env = gitEnv(opts.env ?? process.env);
  const shown = redactUrl(url);

  const run = async (args: string[], what: string): Promise<GitRun> => {
    const result = await runGit(args, env, signal);
    if (signal.aborted) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw gitError(`git ${what} of ${shown} timed out after ${Math.round(timeoutMs / 1000)} s`);
    }
    return result;
  };
  const fail = (what: string, r: GitRun): never => {
    throw gitError(`git ${what} of ${shown} failed: ${lastLine(r.stderr) || `exit code ${r.code}`}`);
  };

  // --no-local: a plain path is fetched like a remote (so --depth works) instead of hard-linking
  // the other repository's objects.
  const shallow = ['clone', '--quiet', '--no-local', '--depth', '1', ...(ref ? ['--branch', ref] : []), '--', url, dir];
  let result = await run(shallow, 'clone');
  if (result.code !== 0) {
    // A commit id is not something --branch takes: fetch everything and check it out.
    if (!ref || !SHA_LIKE.test(ref)) fail('clone', result);
    opts.log?.debug('source.git_full_clone', { ref });
    await emptyDir(dir);
    result = await run(['clone', '--quiet', '--no-local', '--no-checkout', '--', url, dir], 'clone');
    if (result.code !== 0) fail('clone', result);
    const resolved = await run(['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], 'rev-parse');
    if (resolved.code !== 0) {
      throw gitError(`git ref '${ref}' is not a branch, tag or commit of ${shown}`);
    }
    result = await run(['-C', dir, 'checkout', '--quiet', '--detach', resolved.stdout.trim()], 'checkout');
    if (result.code !== 0) fail('checkout', result);
  }
  const head = await run(['-C', dir, 'rev-parse', 'HEAD'], 'rev-parse');
  if (head.code !== 0) throw gitError(`${shown} has no commit to check out (an empty repository?)`);
  await rm(join(dir, '.git'), { recursive: true, force: true });
  return { commit: head.stdout.trim() };
}
