// The test server helper: a platform that fails to start takes its data dir with it, and undoes
// what it set up before the step that failed (its cgroup parents).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { existingCgroupParents } from '../../helpers/cgroups.ts';
import { startTestServer } from '../../helpers/server.ts';
import { testServerNames } from '../../helpers/server-names.ts';

const taken = net.createServer();

afterAll(() => new Promise<void>((r) => taken.close(() => r())));

const testDirs = () => new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cellhost-test-')));
/** the cgroup dirs of every test platform this process may have started, in whichever hierarchy the host has */
const myCgroupParents = async () =>
  (await Promise.all(Array.from({ length: 8 }, (_, n) => existingCgroupParents(testServerNames(process.pid, n).CELLHOST_CGROUP_PREFIX!)))).flat();

describe('startTestServer', () => {
  it('removes the data dir it made, and the platform its cgroups, when the platform does not start', async () => {
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as net.AddressInfo;
    const before = testDirs();
    await expect(startTestServer({ env: { CELLHOST_HTTP_ADDR: `127.0.0.1:${port}` } })).rejects.toThrow(/EADDRINUSE/);
    expect([...testDirs()].filter((n) => !before.has(n))).toEqual([]);
    expect(await myCgroupParents()).toEqual([]);
  });
});
