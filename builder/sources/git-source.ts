// Clones a git URL at a ref into an empty directory: argv only, no prompts, a time limit, hooks
// off, only the transports git-url.ts allows. With a sandbox (the platform as root) git runs inside
// it, as the service's uid in a network namespace of its own, so it can neither read the host's
// files nor reach the host's loopback services; without one (no root), on the host as the
// platform's user. `.git` is removed after.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { Logger } from '../../runtime/core/log.ts';
import { fdPipes, feedFds } from '../../runtime/sandbox/run-command.ts';
import { allowedProtocols, checkGitUrl, DEFAULT_GIT_POLICY, protocolConfig, redactUrl, type GitUrlPolicy } from './git-url.ts';

export { redactUrl } from './git-url.ts';

export const DEFAULT_GIT_TIMEOUT_MS = 5 * 60_000;
const STDERR_KEEP = 16 * 1024;
const SHA_LIKE = /^[0-9a-f]{4,40}$/i;

// Settings for every git call: no hooks from the operator's templates, no fsmonitor daemon, no
// submodules, quiet about detached HEADs. The transports come from the policy (protocolConfig).
const SAFE_CONFIG = [
  '-c', 'core.hooksPath=/dev/null',
  '-c', 'core.fsmonitor=false',
  '-c', 'submodule.recurse=false',
  '-c', 'advice.detachedHead=false',
];

/** where git runs when it is not the host: the build sandbox, set up for one clone */
/** how git is spawned: `fds` become its fds 3, 4, … (where the sandbox reads its options) */
interface GitCommand {
  argv: string[];
  env: NodeJS.ProcessEnv;
  fds?: Uint8Array[];
}

/**
 * How a private repository is read: an HTTP header (a token as Basic credentials) sent with each
 * of git's requests, or an SSH key (with the host keys to trust). Both travel in git's
 * environment (which only its own uid and root can read), never on a command line; the key is
 * written to a file only inside the clone's private /tmp (or a 0700 temp dir on the host).
 */
export interface GitAuth {
  header?: string;
  sshKey?: string;
  /** known_hosts lines for the SSH host; absent: the host's /etc/ssh/ssh_known_hosts */
  knownHosts?: string;
}

export interface GitSandbox {
  /** the clone's directory as git inside the sandbox sees it */
  dir: string;
  /** the command that runs `argv` inside, with `env` as its whole environment */
  command(argv: string[], env: Record<string, string>): GitCommand;
  /** ends what a stopped clone left running inside (e.g. its cgroup) */
  killAll?(): Promise<void>;
}

function gitError(message: string, cause?: unknown): CellhostError {
  return new CellhostError('ERR_SOURCE_GIT', redactUrl(message), { cause });
}

/** what git said went wrong: its first fatal line (what follows is advice), else its last line */
function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => l.startsWith('fatal:')) ?? (lines.length > 0 ? lines[lines.length - 1] : '');
}

// settings that keep git from waiting for a password that will never come
const NO_PROMPTS = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '', GCM_INTERACTIVE: 'never', LC_ALL: 'C' };

// On the host, the operator's git settings (credential helpers, SSH keys) still apply; variables
// that would point git at another repository, re-allow transports or wait for a password do not.
function hostGitEnv(base: NodeJS.ProcessEnv, policy: GitUrlPolicy): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith('GIT_') && k !== 'GIT_SSH_COMMAND' && k !== 'GIT_SSH') continue;
    env[k] = v;
  }
  Object.assign(env, NO_PROMPTS, { GIT_ALLOW_PROTOCOL: allowedProtocols(policy) });
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return env;
}

// git refuses to read a repository another user owns (a local one, where those are allowed), so
// that repository's config cannot run commands as the reader. In the sandbox the reader is the
// service's own uid, which may run anything there anyway, so every repository is let through.
// git reads that setting only from its global config (not from -c): the sandbox's home gets one.
function inSandbox(argv: string[]): string[] {
  return ['/bin/sh', '-c', `printf "[safe]\\n\\tdirectory = *\\n" > "$HOME/.gitconfig" && ${WRITE_KEY} && exec "$@"`, 'git', ...argv];
}

// An SSH deploy key, and the host keys to trust, from the environment into files only this uid can
// read, then out of the environment (git and ssh need the files, not the variables).
const WRITE_KEY =
  'umask 077 && if [ -n "${CELLHOST_GIT_SSH_KEY:-}" ]; then printf "%s\\n" "$CELLHOST_GIT_SSH_KEY" > "$HOME/.cellhost-git-key"; fi' +
  ' && if [ -n "${CELLHOST_GIT_KNOWN_HOSTS:-}" ]; then printf "%s\\n" "$CELLHOST_GIT_KNOWN_HOSTS" > "$HOME/.cellhost-known-hosts"; fi' +
  ' && unset CELLHOST_GIT_SSH_KEY CELLHOST_GIT_KNOWN_HOSTS';

/** ssh as git runs it: never asks, and with a key, uses only that key and the given host keys */
function sshCommand(home: string, auth: GitAuth | undefined): string {
  if (!auth?.sshKey) return 'ssh -o BatchMode=yes';
  const hosts = auth.knownHosts ? `${home}/.cellhost-known-hosts` : '/etc/ssh/ssh_known_hosts';
  return `ssh -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -i ${home}/.cellhost-git-key -o UserKnownHostsFile=${hosts} -F /dev/null`;
}

/** git settings for the credentials, as GIT_CONFIG_* variables; a header is not sent on to a redirect's host */
function authEnv(auth: GitAuth | undefined): Record<string, string> {
  if (!auth?.header) return {};
  return { GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: auth.header, GIT_CONFIG_KEY_1: 'http.followRedirects', GIT_CONFIG_VALUE_1: 'false' };
}

// In the sandbox nothing of the host's environment: the service uid has no keys or credential
// helpers anyway. ssh learns host keys from /etc/ssh/ssh_known_hosts (or is refused: BatchMode).
function sandboxGitEnv(policy: GitUrlPolicy, auth?: GitAuth): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    ...NO_PROMPTS,
    GIT_ALLOW_PROTOCOL: allowedProtocols(policy),
    GIT_SSH_COMMAND: sshCommand('/tmp', auth),
    ...authEnv(auth),
    ...(auth?.sshKey ? { CELLHOST_GIT_SSH_KEY: auth.sshKey } : {}),
    ...(auth?.knownHosts ? { CELLHOST_GIT_KNOWN_HOSTS: auth.knownHosts } : {}),
  };
}

interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runGit(command: GitCommand, signal: AbortSignal): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout also ends the ssh / remote helper / upload-pack it
    // started; in the sandbox, ending bubblewrap ends everything inside.
    const child = spawn(command.argv[0]!, command.argv.slice(1), { env: command.env, stdio: ['ignore', 'pipe', 'pipe', ...fdPipes(command.fds)], detached: true });
    feedFds(child, command.fds);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < STDERR_KEEP) stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
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
      reject(err.code === 'ENOENT' ? gitError(`${command.argv[0]} is not installed on this host${command.argv[0] === 'git' ? ' (install the git package)' : ''}`, err) : err);
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
  /** which URLs are cloned (default: https, ssh and scp-style only) */
  policy?: GitUrlPolicy;
  /** run git in this sandbox (its `dir` is `dir` inside) instead of on the host */
  sandbox?: GitSandbox;
  /** on the host: the environment git runs with (default this process's); GIT_* overrides are dropped */
  env?: NodeJS.ProcessEnv;
  /** credentials for a private repository */
  auth?: GitAuth;
}

/**
 * Clones `url` at `ref` (branch, tag or commit; default branch when absent) into `dir`, which must
 * exist and be empty. Returns the commit checked out. Leaves no `.git` behind.
 */
export async function cloneGitSource(url: string, ref: string | undefined, dir: string, opts: GitCloneOptions = {}): Promise<{ commit: string }> {
  const policy = opts.policy ?? DEFAULT_GIT_POLICY;
  checkGitUrl(url, policy);
  if (ref !== undefined && (ref === '' || ref.startsWith('-') || /[\s\0-\x1f\x7f~^:?*[\\]|\.\./.test(ref))) {
    throw gitError(`invalid git ref '${ref}'`);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const shown = redactUrl(url);
  const sandbox = opts.sandbox;
  const config = [...SAFE_CONFIG, ...protocolConfig(policy)];
  const inside = sandbox ? sandbox.dir : dir;
  // on the host, a key goes in a temp dir of root's own, removed after the clone
  const keyHome = !sandbox && opts.auth?.sshKey ? await mkdtemp(join(tmpdir(), 'cellhost-git-key-')) : null;
  if (keyHome) {
    await writeFile(join(keyHome, '.cellhost-git-key'), opts.auth!.sshKey!.trimEnd() + '\n', { mode: 0o600 });
    if (opts.auth!.knownHosts) await writeFile(join(keyHome, '.cellhost-known-hosts'), opts.auth!.knownHosts.trimEnd() + '\n', { mode: 0o600 });
  }
  const hostEnv = sandbox
    ? null
    : { ...hostGitEnv(opts.env ?? process.env, policy), ...authEnv(opts.auth), ...(keyHome ? { GIT_SSH_COMMAND: sshCommand(keyHome, opts.auth) } : {}) };

  const run = async (args: string[], what: string): Promise<GitRun> => {
    const argv = ['git', ...config, ...args];
    const result = await runGit(sandbox ? sandbox.command(inSandbox(argv), sandboxGitEnv(policy, opts.auth)) : { argv, env: hostEnv! }, signal);
    if (signal.aborted) {
      await sandbox?.killAll?.();
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw gitError(`git ${what} of ${shown} timed out after ${Math.round(timeoutMs / 1000)} s`);
    }
    return result;
  };
  const fail = (what: string, r: GitRun): never => {
    throw gitError(`git ${what} of ${shown} failed: ${lastLine(r.stderr) || `exit code ${r.code}`}`);
  };

  try {
    return await cloneWith(run, fail, { url, ref, dir, inside, shown, log: opts.log });
  } finally {
    if (keyHome) await rm(keyHome, { recursive: true, force: true });
  }
}

async function cloneWith(
  run: (args: string[], what: string) => Promise<GitRun>,
  fail: (what: string, r: GitRun) => never,
  o: { url: string; ref: string | undefined; dir: string; inside: string; shown: string; log?: Logger },
): Promise<{ commit: string }> {
  const { url, ref, dir, inside, shown } = o;
  // --no-local: a plain path (when allowed) is fetched like a remote (so --depth works) instead of
  // hard-linking the other repository's objects.
  const shallow = ['clone', '--quiet', '--no-local', '--depth', '1', ...(ref ? ['--branch', ref] : []), '--', url, inside];
  let result = await run(shallow, 'clone');
  if (result.code !== 0) {
    // A commit id is not something --branch takes: fetch everything and check it out.
    if (!ref || !SHA_LIKE.test(ref)) fail('clone', result);
    o.log?.debug('source.git_full_clone', { ref });
    await emptyDir(dir);
    result = await run(['clone', '--quiet', '--no-local', '--no-checkout', '--', url, inside], 'clone');
    if (result.code !== 0) fail('clone', result);
    const resolved = await run(['-C', inside, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], 'rev-parse');
    if (resolved.code !== 0) {
      throw gitError(`git ref '${ref}' is not a branch, tag or commit of ${shown}`);
    }
    result = await run(['-C', inside, 'checkout', '--quiet', '--detach', resolved.stdout.trim()], 'checkout');
    if (result.code !== 0) fail('checkout', result);
  }
  const head = await run(['-C', inside, 'rev-parse', 'HEAD'], 'rev-parse');
  if (head.code !== 0) throw gitError(`${shown} has no commit to check out (an empty repository?)`);
  await rm(join(dir, '.git'), { recursive: true, force: true });
  return { commit: head.stdout.trim() };
}
