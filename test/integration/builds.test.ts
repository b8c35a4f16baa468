// Builds like Leapcell's: runtimes with their defaults, time limits, the queue, caches, retention.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { findMissingToolchain } from '../../builder/runtimes/index.ts';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function upload(service: string, dir: string) {
  const res = await server.api('POST', `/api/v1/services/${service}/deployments`, new Uint8Array(await packDirectory(dir)), { 'content-type': 'application/gzip' });
  expect(res.status).toBe(202);
  return res.body;
}

describe('runtimes', () => {
  it('python: a venv that sees the system packages; Flask under gunicorn', async () => {
    const dep = await server.deploy('flask', path.join(FIXTURES, 'python-flask'), { runtime: 'python', startCommand: 'gunicorn -w 1 -b :$PORT app:app' });
    expect(dep.status).toBe('live');
    const r = await server.app('flask');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('flask');
    expect(r.json.venv).toMatch(/\.venv$/);
  });

  it('go: default build (go build -o app .) and start (./app)', async () => {
    const dep = await server.deploy('gohello', path.join(FIXTURES, 'go-hello'), { runtime: 'go' });
    expect(dep.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body;
    expect(log).toContain('go build -o app .');
    const r = await server.app('gohello');
    expect(r.json.hello).toBe('go');
  });

  it('node: npm ci with the lockfile, dependencies from a per-service cache outside the image', async () => {
    const dep = await server.deploy('nodedep', path.join(FIXTURES, 'node-dep'));
    expect(dep.status).toBe('live');
    expect((await server.app('nodedep')).json.hour).toBe(3_600_000);
    const cache = path.join(server.dataDir, 'cache', 'nodedep', 'npm');
    expect(fs.readdirSync(cache).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id, 'node_modules', 'ms'))).toBe(true);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id, 'npm'))).toBe(false);
    // a rebuild with the same lockfile takes node_modules from the live image and npm only checks it
    const again = await server.deploy('nodedep', path.join(FIXTURES, 'node-dep'));
    expect(again.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${again.id}/logs`)).body as string;
    expect(log).toContain(`Reusing node_modules (package-lock.json unchanged) from ${dep.id}`);
    expect((await server.app('nodedep')).json.hour).toBe(3_600_000);
  });

  it.skipIf(findMissingToolchain('rust').length === 0)('a runtime whose toolchain is missing fails at once, naming what to install', async () => {
    await server.api('POST', '/api/v1/services', { name: 'rusty', runtime: 'rust' });
    const r = await server.api('POST', '/api/v1/services/rusty/deployments', new Uint8Array(await packDirectory(path.join(FIXTURES, 'go-hello'))), { 'content-type': 'application/gzip' });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('ERR_RUNTIME_MISSING');
    expect(r.body.error.message).toContain('apt-get install cargo');
  });
});

describe('the build queue and limits', () => {
  it('a build past its time limit is stopped with a clear last line', async () => {
    // a platform of its own with a 3 s limit: the real builds above (npm ci, go build) took longer
    // than that on a busy machine
    const short = await startTestServer({ env: { CELLHOST_BUILD_TIMEOUT_S: '3' } });
    try {
      const dep = await short.deploy('slowbuild', path.join(FIXTURES, 'node-hello'), { buildCommand: 'echo starting; sleep 30' });
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_BUILD_TIMEOUT');
      const log = (await short.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
      expect(log).toContain('starting');
      expect(log.trim().split('\n').pop()).toContain('ran longer than 3 s');
    } finally {
      await short.close();
    }
  });

  it('a newer deploy cancels a queued older one of the same service', async () => {
    await server.api('POST', '/api/v1/services', { name: 'queue', runtime: 'node', buildCommand: 'sleep 0.5' });
    const a = await upload('queue', path.join(FIXTURES, 'node-hello'));
    const b = await upload('queue', path.join(FIXTURES, 'node-hello'));
    const c = await upload('queue', path.join(FIXTURES, 'node-hello'));
    const [da, db, dc] = [await server.waitDeployment(a.id), await server.waitDeployment(b.id), await server.waitDeployment(c.id)];
    expect(db.status).toBe('superseded');
    expect(db.error.code).toBe('ERR_BUILD_CANCELLED');
    expect(['live', 'superseded']).toContain(da.status);
    expect(dc.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${b.id}/logs`)).body;
    expect(log).toContain('Cancelled');
  });

  it('keeps 3 images for rollback on hobby, removes the rest and says how much it freed', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await server.deploy('keep', path.join(FIXTURES, 'node-hello'), i === 0 ? { buildCommand: 'true' } : {})).id);
    // the deployment is live (and the deploy call returns) before the old images are removed:
    // the log's last line says when that is done
    const log = await waitFor(
      async () => {
        const body = (await server.api('GET', `/api/v1/deployments/${ids[4]}/logs`)).body as string;
        return /Removed 1 old image\(s\)/.test(body) && body;
      },
      { what: 'the prune of old images' },
    );
    expect(log).toMatch(/Removed 1 old image\(s\) beyond the 3 kept for rollback, freeing [\d.]+ (B|KB|MB)/);
    const images = fs.readdirSync(path.join(server.dataDir, 'images'));
    expect(ids.filter((id) => images.includes(id))).toEqual(ids.slice(2));
    const old = await server.api('POST', `/api/v1/deployments/${ids[0]}/promote`);
    expect(old.status).toBe(409);
    expect(old.body.error.message).toContain('no image any more');
    expect((await server.api('POST', `/api/v1/deployments/${ids[2]}/promote`)).status).toBe(200);
  });
});

describe('build memory', () => {
  it('a build past its memory limit is stopped, and the last line says so', async () => {
    const own = await startTestServer({ env: { CELLHOST_BUILD_MEMORY_MB: '200' } });
    try {
      const dep = await own.deploy('hungry', path.join(FIXTURES, 'node-hello'), {
        buildCommand: `echo allocating; node -e 'const a = []; for (;;) a.push(Buffer.alloc(16 << 20, 1))'`,
      });
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_BUILD_FAILED');
      expect(dep.error.message).toContain('ran out of memory (limit 200 MB');
      const log = (await own.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
      expect(log).toContain('allocating');
      expect(log.trim().split('\n').pop()).toContain('ran out of memory (limit 200 MB');
    } finally {
      await own.close();
    }
  });
});
