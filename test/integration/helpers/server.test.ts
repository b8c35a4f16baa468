// The test server helper: a platform that fails to start takes its data dir with it.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../../helpers/server.ts';

const taken = net.createServer();

afterAll(() => new Promise<void>((r) => taken.close(() => r())));

const testDirs = () => new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cellhost-test-')));

describe('startTestServer', () => {
  it('removes the data dir it made when the platform does not start', async () => {
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as net.AddressInfo;
    const before = testDirs();
    await expect(startTestServer({ env: { CELLHOST_HTTP_ADDR: `127.0.0.1:${port}` } })).rejects.toThrow(/EADDRINUSE/);
    expect([...testDirs()].filter((n) => !before.has(n))).toEqual([]);
  });
});
