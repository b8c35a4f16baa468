// Process-side helpers shared by both drivers: the join wrapper, killing by pid, polling.
import { setTimeout as sleep } from 'node:timers/promises';
import { quoteShell } from '../run-command.ts';
import { CellhostError } from '../../core/errors.ts';
import { errnoOf, toCgroupError } from './fs.ts';

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** group and prefix names become path segments: refuse anything that could walk out of the parent */
export function assertGroupName(name: string, what = 'cgroup name'): void {
  if (!GROUP_NAME.test(name)) {
    throw new CellhostError('ERR_CGROUP_FAILED', `${what} "${name}" is not a plain path segment (letters, digits, . _ -)`, {
      details: { name },
    });
  }
}

/**
 * argv for a tiny /bin/sh that writes its own pid into each cgroup.procs, then execs `argv`.
 * The process is inside every hierarchy before the app's first instruction, so nothing it
 * forks can escape; if any join fails the shell exits non-zero and the app never runs.
 */
export function buildJoinArgv(procsFiles: string[], argv: string[]): string[] {
  const joins = procsFiles.map((f) => `echo $$ > ${quoteShell(f)}`);
  return ['/bin/sh', '-c', [...joins, 'exec "$@"'].join(' && '), 'cellhost-cg', ...argv];
}

/** SIGKILL each pid; one that has gone already is fine */
export function killPids(pids: Iterable<number>): number {
  let signalled = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      signalled++;
    } catch (err) {
      if (errnoOf(err) !== 'ESRCH') throw err;
    }
  }
  return signalled;
}

/** poll `check` until it is true or `timeoutMs` passes; returns the last answer */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export interface EmptyGroupOps {
  listPids(): Promise<number[]>;
  /** v2's cgroup.kill: the kernel kills every process, including ones forked meanwhile */
  killByKernel?: () => Promise<void>;
  /** stop the group so nothing forks between reading its pids and killing them; false if it did not settle */
  freeze?: () => Promise<boolean>;
  thaw?: () => Promise<void>;
}

/**
 * Kill every process in a group and wait until it is empty. The first round signals what it
 * sees at once (the usual group of a few processes is gone in a few ms); later rounds freeze
 * first, because something forked between reading the pids and killing them (a fork bomb).
 */
export async function emptyGroup(ops: EmptyGroupOps, timeoutMs = 5_000): Promise<{ remaining: number[] }> {
  const deadline = Date.now() + timeoutMs;
  let remaining = await ops.listPids();
  for (let round = 0; remaining.length > 0; round++) {
    if (ops.killByKernel) {
      await ops.killByKernel();
    } else if (round === 0 || !ops.freeze) {
      killPids(remaining);
    } else {
      const frozen = await ops.freeze();
      try {
        killPids(frozen ? await ops.listPids() : remaining);
      } finally {
        // a frozen process only acts on SIGKILL once thawed
        if (ops.thaw) await ops.thaw();
      }
    }
    const budget = Math.max(0, Math.min(round === 0 ? 100 : 1_000, deadline - Date.now()));
    await waitUntil(async () => (remaining = await ops.listPids()).length === 0, budget);
    if (remaining.length > 0 && Date.now() >= deadline) break;
  }
  return { remaining };
}

export { sleep };

/** rmdir a group's directory; EBUSY means a task is still on its way out: kill again and retry */
export async function removeGroupDir(fs: { rmdir(path: string): Promise<void> }, dir: string, killAll: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.rmdir(dir);
      return;
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT') return;
      if (errno === 'EBUSY' && attempt < 20) {
        await sleep(10);
        await killAll();
        continue;
      }
      throw toCgroupError('remove', dir, err);
    }
  }
}
