// Two platforms must not share a data dir or a host's cgroup and namespace names: the second
// would reclaim the first's instances as leftovers. It refuses to start, saying why.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';
import { claimTestSubnet } from '../helpers/subnets.ts';

const dirs = [tempDir('cellhost-one-a-'), tempDir('cellhost-one-b-'), tempDir('cellhost-one-c-')];
let first: ChildServer | null = null;

afterAll(async () => {
  await stopServer(first);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('one platform per data dir and per host names', () => {
  it('a second serve on the same data dir, or with the same host names, refuses to start', async () => {
    first = await spawnServer(dirs[0]!, { http: await freePortSync(), admin: await freePortSync() });
    const sameData = spawnServer(dirs[0]!, { http: await freePortSync(), admin: await freePortSync() });
    await expect(sameData).rejects.toThrow(/already uses .*one platform per data dir/);
    const sameNames = spawnServer(dirs[1]!, { http: await freePortSync(), admin: await freePortSync() });
    await expect(sameNames).rejects.toThrow(/another cellhost \(pid \d+\) uses the host names of this one/);
    // the first is untouched
    expect((await fetch(first.adminUrl + '/api/v1/health')).status).toBe(200);
  }, 60_000);

  it.skipIf(process.getuid?.() !== 0)('an owner.pid left by a crash, its pid now another process\u2019s, does not block a start', async () => {
    const runDir = `/run/cellhost-stale-${process.pid}`;
    const names = {
      CELLHOST_HOST_RUN_DIR: runDir,
      CELLHOST_CGROUP_PREFIX: `cellhost-stale-${process.pid}`,
      CELLHOST_NETNS_PREFIX: `s${(process.pid % 1296).toString(36)}`,
      CELLHOST_NETNS_SUBNET: claimTestSubnet(),
    };
    // a live process that is not a cellhost, under a pid the file names with another start time
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    let server: ChildServer | null = null;
    try {
      fs.mkdirSync(runDir, { recursive: true });
      fs.writeFileSync(`${runDir}/owner.pid`, `${other.pid} 1`);
      server = await spawnServer(dirs[2]!, { http: await freePortSync(), admin: await freePortSync() }, names);
      expect((await fetch(server.adminUrl + '/api/v1/health')).status).toBe(200);
      const [pid, start] = fs.readFileSync(`${runDir}/owner.pid`, 'utf8').split(' ');
      expect(Number(pid)).toBe(server.proc.pid);
      expect(Number(start)).toBeGreaterThan(1);
    } finally {
      other.kill('SIGKILL');
      await stopServer(server);
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  }, 60_000);
});
