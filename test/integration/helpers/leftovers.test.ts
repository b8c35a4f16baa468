// A test or bench platform whose process died without closing (kill -9, as a worker killed at a
// timeout dies) leaves its cgroups, network namespace and host run dir; the sweep run before each
// test and bench run reclaims them, and leaves a live server's alone.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { existingCgroupParents, leftoverCgroups } from '../../helpers/cgroups.ts';
import { networkLeftovers } from '../../helpers/host.ts';
import { reclaimDeadServers } from '../../helpers/leftovers.ts';
import { isAlive, startTestServer, type TestServer } from '../../helpers/server.ts';

const CHILD = fileURLToPath(new URL('../../helpers/test-server-process.ts', import.meta.url));
const dirs: string[] = [];
let live: TestServer | null = null;
let child: ChildProcess | null = null;

afterAll(async () => {
  // a test that failed before its kill: its server process goes the same way
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await live?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe.skipIf(process.getuid?.() !== 0)('leftovers of dead test and bench platforms', () => {
  it.each(['test', 'bench'])('a %s platform\'s are reclaimed after kill -9 of its process; a live server is left alone', async (kind) => {
    const proc = (child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...(kind === 'bench' ? ['bench'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const exited = new Promise((r) => proc.once('exit', r));
    const line = await Promise.race([
      readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next().then((r) => r.value as string),
      exited.then(() => {
        throw new Error('the test server process exited before it was up');
      }),
    ]);
    const up = JSON.parse(line) as { pid: number; dataDir: string; names: Record<string, string>; deployment: string; status: number; appPid: number };
    dirs.push(up.dataDir);
    expect(up.deployment).toBe('live');
    expect(up.status).toBe(200);
    const cgroupPrefix = up.names.CELLHOST_CGROUP_PREFIX!;
    expect(cgroupPrefix).toBe(`cellhost-${kind}-${up.pid}-${kind === 'bench' ? 1 : 0}`);
    const netnsPrefix = up.names.CELLHOST_NETNS_PREFIX!;
    const runDir = up.names.CELLHOST_HOST_RUN_DIR!;

    proc.kill('SIGKILL');
    await exited;
    // what it left: no process of it closed anything
    expect(fs.existsSync(runDir)).toBe(true);
    expect(await existingCgroupParents(cgroupPrefix)).not.toEqual([]);
    expect(await networkLeftovers(netnsPrefix)).not.toEqual([]);

    live ??= await startTestServer();
    const reclaimed = await reclaimDeadServers();
    expect(reclaimed).toContain(runDir);
    expect(reclaimed).not.toContain(live.isolation.CELLHOST_HOST_RUN_DIR);

    expect(fs.existsSync(runDir)).toBe(false);
    expect(await leftoverCgroups(cgroupPrefix)).toEqual([]);
    expect(await existingCgroupParents(cgroupPrefix)).toEqual([]);
    expect(await networkLeftovers(netnsPrefix)).toEqual([]);
    if (up.appPid) expect(isAlive(up.appPid)).toBe(false);
    // the live one still serves
    expect(fs.existsSync(live.isolation.CELLHOST_HOST_RUN_DIR!)).toBe(true);
    expect((await live.api('GET', '/api/v1/health')).status).toBe(200);
  }, 120_000);
});
