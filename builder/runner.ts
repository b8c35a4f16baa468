// Runs a build command in a pty, so tools keep their colours and progress output, and
// streams what it prints. The command line comes from a BuildLauncher: plain bash here, the
// sandbox (uid, cgroup, bubblewrap) when isolation is on.
import pty from 'node-pty';
import { CellhostError } from '../runtime/core/errors.ts';

export interface BuildCommand {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** frees what the launcher set up (cgroup); idempotent */
  release?(): Promise<void>;
  /** kill every process the build made */
  killAll?(): Promise<void>;
  /** after a failed exit: a better reason than the exit status, if known (out of memory) */
  diagnose?(): Promise<string | null>;
}

export interface RunBuildOptions {
  timeoutMs: number;
  /** stops the build: ERR_BUILD_INTERRUPTED, or the abort reason when it is a CellhostError (a limit passed) */
  signal?: AbortSignal;
  onOutput(text: string): void;
}

export interface BuildResult {
  exitCode: number;
  signal: number | null;
  durationMs: number;
}

/** resolves when the command exits 0; throws ERR_BUILD_FAILED / ERR_BUILD_TIMEOUT / ERR_BUILD_INTERRUPTED, or the signal's coded reason */
export async function runBuildCommand(cmd: BuildCommand, opts: RunBuildOptions): Promise<BuildResult> {
  const started = Date.now();
  // stopped while it was being prepared (its service deleted): nothing is started
  if (opts.signal?.aborted) {
    await cmd.release?.();
    throw stoppedError(opts.signal.reason);
  }
  const child = pty.spawn(cmd.argv[0]!, cmd.argv.slice(1), {
    name: 'xterm-256color',
    cols: 120,
    rows: 40,
    cwd: cmd.cwd,
    env: cmd.env,
  });
  let why = null as 'timeout' | 'aborted' | CellhostError | null;
  /**
   * the kill of everything the build made, started at a stop: awaited before the kill and the
   * release after the exit, which report a failure. Left to run on its own, it raced the release:
   * a write of its (to the cgroup's CPU limit or freezer) after the release removed the group
   * failed, and that rejection, handled by no one, ended the platform.
   */
  let killing: Promise<void> = Promise.resolve();
  const kill = (reason: 'timeout' | 'aborted' | CellhostError) => {
    why ??= reason;
    try {
      // node-pty makes the child a session leader: its pid is the group id
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // no such group yet (the child has not called setsid: a kill right after the spawn), or
      // it is gone: the child itself
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (cmd.killAll) killing = killing.then(() => cmd.killAll!()).catch(() => {});
  };
  const timer = setTimeout(() => kill('timeout'), opts.timeoutMs);
  const onAbort = () => kill(opts.signal?.reason instanceof CellhostError ? opts.signal.reason : 'aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  child.onData((text) => opts.onOutput(text));
  const exit = await new Promise<{ exitCode: number; signal?: number }>((resolve) => child.onExit(resolve));
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  const failed = exit.exitCode !== 0 || Boolean(exit.signal);
  const diagnosis = failed && !why ? await cmd.diagnose?.().catch(() => null) : null;
  await killing;
  await cmd.killAll?.();
  await cmd.release?.();
  const result: BuildResult = { exitCode: exit.exitCode, signal: exit.signal || null, durationMs: Date.now() - started };
  if (why instanceof CellhostError) throw why;
  if (why === 'timeout') throw new CellhostError('ERR_BUILD_TIMEOUT', `the build ran longer than ${Math.round(opts.timeoutMs / 1000)} s and was stopped`);
  if (why === 'aborted') throw stoppedError(undefined);
  if (diagnosis) throw new CellhostError('ERR_BUILD_FAILED', diagnosis, { details: { exitCode: exit.exitCode } });
  if (failed) {
    throw new CellhostError('ERR_BUILD_FAILED', `the build command failed (${result.signal ? `signal ${result.signal}` : `exit code ${exit.exitCode}`})`, { details: { exitCode: exit.exitCode } });
  }
  return result;
}

/** a stop's coded reason (a limit passed), or ERR_BUILD_INTERRUPTED */
function stoppedError(reason: unknown): CellhostError {
  return reason instanceof CellhostError ? reason : new CellhostError('ERR_BUILD_INTERRUPTED', 'the build was stopped before it finished');
}
