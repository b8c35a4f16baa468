// Two platforms must not share a data dir or a host's cgroup and namespace names: the second
// would reclaim the first's instances as leftovers. It refuses to start, saying why.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/server.ts';
import { freePortSync, spawnServer, type ChildServer } from '../helpers/subprocess-server.ts';

const dirs = [tempDir('cellhost-one-a-'), tempDir('cellhost-one-b-')];
let first: ChildServer | null = null;

afterAll(async () => {
  if (first && first.proc.exitCode === null) {
    first.proc.kill('SIGTERM');
    await first.exited;
  }
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
});
