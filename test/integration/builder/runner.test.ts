// The build command runner stops a build whose service is deleted. A delete can come while the
// build is still being prepared (its sandbox set up, before the command is spawned) or just as it
// is spawned, before the child has made its own process group: in CI such a build ran its
// `sleep 60` to the end, and the delete waited for it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runBuildCommand, type BuildCommand } from '../../../builder/runner.ts';

let dir: string | null = null;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** a build that marks it ran, then sleeps a minute */
function sleeper(): { cmd: BuildCommand; ran: () => boolean; released: () => boolean } {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-runner-'));
  const mark = path.join(dir, 'ran');
  let released = false;
  return {
    cmd: {
      argv: ['bash', '-c', `touch ${mark}; exec sleep 60`],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      release: async () => void (released = true),
    },
    ran: () => fs.existsSync(mark),
    released: () => released,
  };
}

describe('runBuildCommand', () => {
  it('stopped before it is spawned: nothing runs, its launch is released, ERR_BUILD_INTERRUPTED', async () => {
    const b = sleeper();
    const stop = new AbortController();
    stop.abort();
    const t0 = Date.now();
    await expect(runBuildCommand(b.cmd, { timeoutMs: 120_000, signal: stop.signal, onOutput: () => {} })).rejects.toMatchObject({ code: 'ERR_BUILD_INTERRUPTED' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.ran()).toBe(false);
    expect(b.released()).toBe(true);
  });

  it('stopped the moment it is spawned: it ends at once', async () => {
    for (let i = 0; i < 20; i++) {
      const b = sleeper();
      const stop = new AbortController();
      const t0 = Date.now();
      const run = runBuildCommand(b.cmd, { timeoutMs: 120_000, signal: stop.signal, onOutput: () => {} });
      // the runner spawns synchronously up to its first await: this lands right after the spawn
      stop.abort();
      await expect(run).rejects.toMatchObject({ code: 'ERR_BUILD_INTERRUPTED' });
      expect(Date.now() - t0, `round ${i}`).toBeLessThan(5000);
      fs.rmSync(dir!, { recursive: true, force: true });
      dir = null;
    }
  });

  it('a kill at the stop that fails is not left unhandled, and the kill and release after the exit run after it', async () => {
    const b = sleeper();
    const calls: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let kills = 0;
      const cmd: BuildCommand = {
        ...b.cmd,
        // the first kill is slow and then fails, as a write to a cgroup removed meanwhile does
        killAll: async () => {
          const n = ++kills;
          calls.push(`kill ${n} start`);
          if (n === 1) {
            await new Promise((r) => setTimeout(r, 300));
            calls.push('kill 1 failed');
            throw new Error('ENOENT: cgroup.procs');
          }
          calls.push(`kill ${n} done`);
        },
        release: async () => void calls.push('release'),
      };
      const stop = new AbortController();
      const run = runBuildCommand(cmd, { timeoutMs: 120_000, signal: stop.signal, onOutput: () => {} });
      await waitForFile(path.join(dir!, 'ran'));
      stop.abort();
      await expect(run).rejects.toMatchObject({ code: 'ERR_BUILD_INTERRUPTED' });
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      expect(calls).toEqual(['kill 1 start', 'kill 1 failed', 'kill 2 start', 'kill 2 done', 'release']);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

async function waitForFile(file: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
