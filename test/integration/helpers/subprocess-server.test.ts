// A platform started as a child process stops when the process that started it dies, however it
// dies (kill -9 here, as a vitest worker killed at a timeout or a bench killed outright dies): it
// gets SIGTERM and stops cleanly, so nothing of it runs on as an orphan.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { existingCgroupParents } from '../../helpers/cgroups.ts';
import { isAlive } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

const PARENT = fileURLToPath(new URL('../../helpers/spawned-server-process.ts', import.meta.url));
let parent: ChildProcess | null = null;
let platformPid = 0;
let dataDir = '';

afterAll(async () => {
  if (parent && parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  // a test that failed before the platform stopped: it goes too
  if (platformPid && isAlive(platformPid)) process.kill(platformPid, 'SIGTERM');
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(process.getuid?.() !== 0)('a platform started as a child process', () => {
  it('stops cleanly when the process that started it is killed with kill -9', async () => {
    const proc = (parent = spawn(process.execPath, ['--import', 'tsx', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const exited = new Promise((r) => proc.once('exit', r));
    const line = await Promise.race([
      readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next().then((r) => r.value as string),
      exited.then(() => {
        throw new Error('the parent process exited before its platform was up');
      }),
    ]);
    const up = JSON.parse(line) as { pid: number; platformPid: number; dataDir: string; names: Record<string, string>; health: number };
    platformPid = up.platformPid;
    dataDir = up.dataDir;
    expect(up.health).toBe(200);
    const runDir = up.names.CELLHOST_HOST_RUN_DIR!;
    const cgroupPrefix = up.names.CELLHOST_CGROUP_PREFIX!;
    expect(fs.readFileSync(`${runDir}/owner.pid`, 'utf8').split(/\s+/)[0]).toBe(String(up.platformPid));

    proc.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 20_000;
    while (isAlive(up.platformPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(isAlive(up.platformPid)).toBe(false);
    // its clean stop removed what it made on the host
    expect(fs.existsSync(runDir)).toBe(false);
    expect(await existingCgroupParents(cgroupPrefix)).toEqual([]);
  }, 60_000);
});

describe('freePortSync', () => {
  // a test takes several ports before it binds any: one handed out twice made two servers share
  // it (500 random picks from the 20,000 below the ephemeral range would repeat one ~99.8 % of
  // the time)
  it('never hands out the same port twice', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 500; i++) ports.push(await freePortSync());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
