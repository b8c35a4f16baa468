// Running the host tools the sandbox is built from (ip, tc, nft, iptables, mount, bwrap probes).
// Output is collected whole: these commands print little, and a failure's stderr is the message.
import { spawn, type ChildProcess, type StdioPipe } from 'node:child_process';
import type { Writable } from 'node:stream';
import { CellhostError, type ErrorCode } from '../core/errors.ts';

/** System tools get a fixed, minimal environment: their behaviour must not depend on the platform's. */
export const TOOL_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C',
  LC_ALL: 'C',
});

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** spawn itself failed (ENOENT: the tool is not installed) */
  spawnError?: NodeJS.ErrnoException;
}

export interface CommandOptions {
  input?: string;
  timeoutMs?: number;
  /** undefined → TOOL_ENV; 'inherit' → the platform's own environment (toolchain discovery needs HOME) */
  env?: Record<string, string> | 'inherit';
  /** data the command reads on fds 3, 4, … (a sandbox's options and seccomp program) */
  fds?: readonly Uint8Array[];
}

/** the stdio entries that give a child fds 3, 4, … as pipes (see feedFds) */
export function fdPipes(fds: readonly Uint8Array[] | undefined): StdioPipe[] {
  return (fds ?? []).map(() => 'pipe');
}

/**
 * Writes each buffer into the child's fd 3, 4, … and closes our end, so the child reads it to
 * EOF. A child that exits before reading must not turn into an EPIPE crash here.
 */
export function feedFds(child: ChildProcess, fds: readonly Uint8Array[] | undefined): void {
  (fds ?? []).forEach((data, i) => {
    const pipe = child.stdio[3 + i] as Writable | null | undefined;
    if (!pipe) return;
    pipe.on('error', () => undefined);
    pipe.end(data);
  });
}

export function runCommand(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...fdPipes(opts.fds)],
      env: opts.env === 'inherit' ? undefined : (opts.env ?? TOOL_ENV),
    });
    feedFds(child, opts.fds);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: NodeJS.ErrnoException | undefined;
    const timer =
      opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs).unref();
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    if (opts.input !== undefined) {
      // a tool that exits before reading all its input (bad first line) must not crash us with EPIPE
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        spawnError,
      });
    });
  });
}

/** one argument for /bin/sh, whatever it contains */
export function quoteShell(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs a command that must succeed; a failure becomes `code` with the tool's stderr as the message. */
export async function runChecked(
  code: ErrorCode,
  file: string,
  args: readonly string[],
  opts: CommandOptions = {},
): Promise<string> {
  const r = await runCommand(file, args, opts);
  if (r.spawnError) {
    throw new CellhostError(code, `${file} could not be started: ${r.spawnError.message}`, { cause: r.spawnError });
  }
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').slice(-3).join('; ') || `exit ${r.code ?? r.signal}`;
    throw new CellhostError(code, `${file} ${args.slice(0, 3).join(' ')} failed: ${why}`, {
      details: { command: [file, ...args].join(' '), exitCode: r.code, signal: r.signal },
    });
  }
  return r.stdout;
}
