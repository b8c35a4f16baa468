// The host's git as a client of the platform: async only, since the platform under test runs in
// the test's own process (a sync git call would block the server it talks to).
import { spawn } from 'node:child_process';
import { GIT_ENV } from './git-repos.ts';

export interface GitResult {
  code: number;
  /** stdout and stderr as git printed them */
  out: string;
}

/** runs git in `cwd` with the test's identity; resolves with its exit code and all it printed */
export function gitRun(cwd: string, args: string[], env: Record<string, string> = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: { ...GIT_ENV, GIT_TERMINAL_PROMPT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** what git printed from the remote: each `remote: ` line without its prefix, colours and padding */
export const remoteLines = (out: string) =>
  out
    .split(/\r?\n|\r/)
    .filter((l) => l.startsWith('remote: '))
    .map((l) => l.slice('remote: '.length).replace(/\x1b\[[0-9;]*m/g, '').trimEnd());
