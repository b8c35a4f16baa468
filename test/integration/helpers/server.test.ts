// The test server helper: a platform that fails to start takes its data dir with it, and undoes
// what it set up before the step that failed (its cgroup parents).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../../helpers/server.ts';

const taken = net.createServer();

afterAll(() => new Promise<void>((r) => taken.close(() => r())));

const testDirs = () => new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cellhost-test-')));
/** this process's test platforms' cgroup prefixes, as the pids hierarchy (v1) or the tree (v2) shows them */
const myCgroupPrefixes = () =>
  ['/sys/fs/cgroup/pids', '/sys/fs/cgroup'].flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : [])).filter((n) => n.startsWith(`cellhost-test-${process.pid}-`));

describe('startTestServer', () => {
  it('removes the data dir it made, and the platform its cgroups, when the platform does not start', async () => {
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as net.AddressInfo;
    const before = testDirs();
    await expect(startTestServer({ env: { CELLHOST_HTTP_ADDR: `127.0.0.1:${port}` } })).rejects.toThrow(/EADDRINUSE/);
    expect([...testDirs()].filter((n) => !before.has(n))).toEqual([]);
    expect(myCgroupPrefixes()).toEqual([]);
  });
});
