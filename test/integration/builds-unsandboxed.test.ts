// Builds without the sandbox (CELLHOST_ISOLATION=off, or a host without bubblewrap): the build
// runs as its pty's session, and a hangup of that pty must not kill it. In a `cellhost serve`
// process, one-line builds that exit within a few ms used to fail ~1 in 4 as "signal 1".
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { adminApi, FIXTURES, tempDir } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const dataDir = tempDir('cellhost-unsandboxed-');
let server: ChildServer;
const api = adminApi(() => server.adminUrl);

/** deploy and wait for the outcome: 'live', or the failure's message */
async function deploy(name: string, archive: Uint8Array): Promise<string> {
  expect((await api('POST', '/api/v1/services', { name, runtime: 'node', startCommand: 'node app.js', buildCommand: 'rm -f nothing-here' })).status).toBe(201);
  const created = await api('POST', `/api/v1/services/${name}/deployments`, archive, { 'content-type': 'application/gzip' });
  expect(created.status).toBe(202);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { body } = await api('GET', `/api/v1/deployments/${created.body.id}`);
    if (body.status === 'live') return 'live';
    if (!['queued', 'building', 'ready'].includes(body.status)) return `${body.status}: ${body.error?.message}`;
    if (Date.now() > deadline) return `still ${body.status}`;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('builds without the sandbox', () => {
  beforeAll(async () => {
    server = await spawnServer(dataDir, { http: await freePortSync(), admin: await freePortSync() }, { CELLHOST_ISOLATION: 'off' });
  });
  afterAll(async () => {
    await stopServer(server);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('twenty quick one-line builds in a row all succeed', async () => {
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')));
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) outcomes.push(await deploy(`quick${i}`, archive));
    expect(outcomes.filter((o) => o !== 'live')).toEqual([]);
  }, 120_000);
});
