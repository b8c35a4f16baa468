// Children the bench starts: started until they say they are ready, stopped with SIGTERM, then
// SIGKILL if they have not exited within the grace.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { deferCleanup } from './cleanup.ts';
import { sleep } from './stats.ts';

export async function stopChild(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)])) return;
  proc.kill('SIGKILL');
  await exited;
}

/** starts a child and resolves once its stdout says `ready` (or `listening`), bounded */
export async function startChild(command: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = deferCleanup(() => stopChild(proc, 3000));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path.basename(args.at(-1) ?? command)} did not start: ${out}`)), 15_000);
    const onData = (b: Buffer) => {
      out += b;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (b) => (out += b));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before it was ready: ${out}`));
    });
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  return { proc, stop };
}
