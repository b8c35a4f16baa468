// Stopping a child the bench started: SIGTERM, then SIGKILL if it has not exited within the grace.
import type { ChildProcess } from 'node:child_process';
import { sleep } from './stats.ts';

export async function stopChild(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  proc.kill('SIGKILL');
  await exited;
}
