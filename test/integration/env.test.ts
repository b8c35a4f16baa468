// Env vars: encrypted at rest, private, masked, applied without a redeploy.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { runCli } from '../../runtime/cli/index.ts';
import { loadConfig } from '../../runtime/core/config.ts';
import { startServer } from '../../runtime/server.ts';
import { openStore } from '../../runtime/store/index.ts';
import { createEnvStore } from '../../runtime/store/env.ts';
import { loadMasterKey } from '../../runtime/store/secrets.ts';
import { FIXTURES, instancePids, isAlive, startTestServer, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

const SECRET = 'sk_live_5f1e2d3c4b5a69788796a5b4c3d2e1f0';
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.deploy('hello', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', buildCommand: 'echo "token is $API_KEY"' });
});
afterAll(async () => {
  await server?.close();
  if (server) fs.rmSync(server.dataDir, { recursive: true, force: true });
});

describe('applied without a redeploy', () => {
  it('new requests get the new value; the warm instance is replaced without a cold-start wait', async () => {
    const before = await server.app('hello');
    expect(before.json.env).toBeNull();
    const [oldPid] = await instancePids(server, 'hello');
    const deployments = (await server.api('GET', '/api/v1/services/hello/deployments')).body.deployments.length;

    const set = await server.api('PUT', '/api/v1/services/hello/env/GREETING', { value: 'bonjour' });
    expect(set.status).toBe(200);
    // during the switch, every request is answered promptly by the old or the new instance
    const seen = new Set<string | null>();
    const deadline = Date.now() + 10_000;
    let maxMs = 0;
    while (Date.now() < deadline) {
      const t0 = Date.now();
      const r = await server.app('hello');
      maxMs = Math.max(maxMs, Date.now() - t0);
      expect(r.status).toBe(200);
      seen.add(r.json.env);
      if (r.json.env === 'bonjour') break;
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(seen.has('bonjour')).toBe(true);
    await waitFor(() => !isAlive(oldPid!), { what: 'old instance drained and stopped' });
    expect((await server.api('GET', '/api/v1/services/hello/deployments')).body.deployments.length).toBe(deployments);
    expect(maxMs).toBeLessThan(1000);
  });

  it('records the change as an event with names and who, never values', async () => {
    await server.api('PUT', '/api/v1/services/hello/env/API_KEY', { value: SECRET });
    const { body } = await server.api('GET', '/api/v1/services/hello/logs?q=environment');
    const ev = body.entries.filter((e: any) => e.event === 'env_changed');
    expect(ev.length).toBeGreaterThanOrEqual(2);
    expect(ev[ev.length - 1].message).toContain('API_KEY');
    expect(ev[ev.length - 1].message).toContain('admin');
    expect(JSON.stringify(body)).not.toContain(SECRET);
  });
});

describe('hot apply under load', () => {
  it('50 req/s for 10 s, the value changes mid-way: no failed request, the new value everywhere 2 s later, no deployment', async () => {
    await server.api('PUT', '/api/v1/services/hello/env/GREETING', { value: 'before' });
    await server.app('hello');
    const deployments = (await server.api('GET', '/api/v1/services/hello/deployments')).body.deployments.length;
    const results: { t: number; status: number; env: string | null }[] = [];
    const start = Date.now();
    let changedAt = 0;
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < 500 && Date.now() - start < 10_000; i++) {
      if (!changedAt && Date.now() - start >= 5000) {
        changedAt = Date.now();
        inflight.push(server.api('PUT', '/api/v1/services/hello/env/GREETING', { value: 'after' }).then(() => {}));
      }
      inflight.push(
        server.app('hello').then(
          (r) => void results.push({ t: Date.now(), status: r.status, env: r.json?.env ?? null }),
          () => void results.push({ t: Date.now(), status: 0, env: null }),
        ),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(inflight);
    expect(results.length).toBeGreaterThan(300);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    const late = results.filter((r) => r.t > changedAt + 2000);
    expect(late.length).toBeGreaterThan(50);
    expect(late.every((r) => r.env === 'after')).toBe(true);
    expect((await server.api('GET', '/api/v1/services/hello/deployments')).body.deployments.length).toBe(deployments);
  }, 30_000);
});

describe('privacy', () => {
  it('lists names with masked values; values only with ?reveal=1', async () => {
    const list = await server.api('GET', '/api/v1/services/hello/env');
    const key = list.body.vars.find((v: any) => v.name === 'API_KEY');
    expect(key).toMatchObject({ name: 'API_KEY', value: '****', size: SECRET.length, updatedAt: expect.any(String) });
    expect(JSON.stringify(list.body)).not.toContain(SECRET);
    const revealed = await server.api('GET', '/api/v1/services/hello/env?reveal=1');
    expect(revealed.body.vars.find((v: any) => v.name === 'API_KEY').value).toBe(SECRET);
  });

  it('masks values in build logs (stored and live) and runtime logs', async () => {
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello')));
    const created = await server.api('POST', '/api/v1/services/hello/deployments', archive, { 'content-type': 'application/gzip' });
    const live = await fetch(`${server.adminUrl}/api/v1/deployments/${created.body.id}/logs?follow=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const stream = await live.text();
    expect(stream).toContain('token is ****');
    expect(stream).not.toContain(SECRET);
    const dep = await server.waitDeployment(created.body.id);
    expect(dep.status).toBe('live');
    const log = await server.api('GET', `/api/v1/deployments/${dep.id}/logs`);
    expect(log.body).toContain('token is ****');
    expect(log.body).not.toContain(SECRET);
    await server.api('PATCH', '/api/v1/services/hello', { startCommand: 'echo "starting with $API_KEY"; node app.js' });
    expect((await server.app('hello')).status).toBe(200);
    const rt = await server.api('GET', '/api/v1/services/hello/logs?q=starting');
    expect(rt.body.entries.some((e: any) => e.message === 'starting with ****')).toBe(true);
    expect(JSON.stringify(rt.body)).not.toContain(SECRET);
  });

  it('the SQLite file and its WAL hold no plaintext value', async () => {
    for (const f of ['cellhost.db', 'cellhost.db-wal']) {
      const file = path.join(server.dataDir, f);
      if (fs.existsSync(file)) expect(fs.readFileSync(file).includes(Buffer.from(SECRET))).toBe(false);
    }
    const keyFile = path.join(server.dataDir, 'master.key');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
  });
});

describe('validation', () => {
  it.each([
    ['PORT', 'reserved'],
    ['CELLHOST_X', 'reserved'],
    ['1ABC', 'variable name'],
    ['A-B', 'variable name'],
  ])('refuses the name %s', async (name, words) => {
    const r = await server.api('PUT', `/api/v1/services/hello/env/${name}`, { value: 'x' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('ERR_VALIDATION');
    expect(r.body.error.message).toContain(words);
  });

  it('refuses more than 64 KB in all, atomically', async () => {
    const before = (await server.api('GET', '/api/v1/services/hello/env?reveal=1')).body.vars;
    const r = await server.api('PUT', '/api/v1/services/hello/env', { vars: { A: 'x'.repeat(40_000), B: 'y'.repeat(30_000) } });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('64 KB');
    expect((await server.api('GET', '/api/v1/services/hello/env?reveal=1')).body.vars).toEqual(before);
  });

  it('replace-all swaps the whole set; unset of a missing name is 404', async () => {
    const r = await server.api('PUT', '/api/v1/services/hello/env', { vars: { API_KEY: SECRET, MODE: 'prod' } });
    expect(r.status).toBe(200);
    expect(r.body.vars.map((v: any) => v.name)).toEqual(['API_KEY', 'MODE']);
    expect((await server.api('DELETE', '/api/v1/services/hello/env/MODE')).status).toBe(204);
    const gone = await server.api('DELETE', '/api/v1/services/hello/env/MODE');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('ERR_ENV_NOT_FOUND');
  });

  it('the CLI sets, imports and lists', async () => {
    let out = '';
    const io = { env: { CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN, HOME: server.dataDir }, cwd: server.dataDir, out: (t: string) => void (out += t), err: (t: string) => void (out += t), isTTY: false };
    fs.writeFileSync(path.join(server.dataDir, 'x.env'), '# comment\nexport DB_URL="postgres://u:p@db/x"\nFLAG=on # trailing\n');
    expect(await runCli(['env', 'set', 'hello', 'COLOR=blue'], io)).toBe(0);
    expect(await runCli(['env', 'import', 'hello', 'x.env'], io)).toBe(0);
    expect(await runCli(['env', 'ls', 'hello'], io)).toBe(0);
    expect(out).toMatch(/COLOR\s+4 B/);
    const vars = (await server.api('GET', '/api/v1/services/hello/env?reveal=1')).body.vars;
    expect(Object.fromEntries(vars.map((v: any) => [v.name, v.value]))).toMatchObject({ COLOR: 'blue', DB_URL: 'postgres://u:p@db/x', FLAG: 'on', API_KEY: SECRET });
  });
});

describe('keys', () => {
  it('a ciphertext moved to another variable does not decrypt', async () => {
    const store = openStore(path.join(server.dataDir, 'cellhost.db'));
    try {
      const { key } = loadMasterKey({ file: path.join(server.dataDir, 'master.key'), create: false });
      const original = store.db.prepare("SELECT value FROM env_vars WHERE service = 'hello' AND name = 'COLOR'").get() as { value: Buffer };
      store.db.prepare("UPDATE env_vars SET value = (SELECT value FROM env_vars WHERE service = 'hello' AND name = 'API_KEY') WHERE service = 'hello' AND name = 'COLOR'").run();
      const env = createEnvStore(store.db, () => key);
      expect(() => env.values('hello')).toThrow(/does not decrypt.*another variable/);
      store.db.prepare("UPDATE env_vars SET value = ? WHERE service = 'hello' AND name = 'COLOR'").run(original.value);
      expect(env.values('hello').COLOR).toBe('blue');
    } finally {
      store.close();
    }
  });

  it('a wrong master key fails at start with a clear error; rotation keeps values and retires the old key', async () => {
    // the platform's own per-service secrets are under the same key
    const cronSecret = (await server.api('GET', '/api/v1/services/hello/cron-secret')).body.secret;
    const taskToken = (await server.api('GET', '/api/v1/services/hello/task-token')).body.token;
    await server.stop();
    const wrong = loadConfig({ env: { CELLHOST_DATA: server.dataDir, CELLHOST_HTTP_ADDR: '127.0.0.1:0', CELLHOST_ADMIN_ADDR: '127.0.0.1:0', CELLHOST_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') } });
    await expect(startServer(wrong, { announce: () => {} })).rejects.toThrow(/master key does not match/);
    const malformed = loadConfig({ env: { CELLHOST_DATA: server.dataDir, CELLHOST_HTTP_ADDR: '127.0.0.1:0', CELLHOST_ADMIN_ADDR: '127.0.0.1:0', CELLHOST_MASTER_KEY: 'short' } });
    await expect(startServer(malformed, { announce: () => {} })).rejects.toThrow(/32 bytes in base64/);

    const oldKey = fs.readFileSync(path.join(server.dataDir, 'master.key'), 'utf8').trim();
    let out = '';
    const io = { env: {}, cwd: '/', out: (t: string) => void (out += t), err: (t: string) => void (out += t), isTTY: false };
    const code = await runCli(['keys', 'rotate', '--data', server.dataDir], io);
    expect(out).toContain('Re-encrypted');
    expect(code).toBe(0);
    expect(out).toContain('Re-encrypted');
    const newKey = fs.readFileSync(path.join(server.dataDir, 'master.key'), 'utf8').trim();
    expect(newKey).not.toBe(oldKey);
    const withOld = loadConfig({ env: { CELLHOST_DATA: server.dataDir, CELLHOST_HTTP_ADDR: '127.0.0.1:0', CELLHOST_ADMIN_ADDR: '127.0.0.1:0', CELLHOST_MASTER_KEY: oldKey } });
    await expect(startServer(withOld, { announce: () => {} })).rejects.toThrow(/master key does not match/);
    server = await startTestServer({ dataDir: server.dataDir, env: { CELLHOST_CGROUP_PREFIX: server.cgroupPrefix } });
    const vars = (await server.api('GET', '/api/v1/services/hello/env?reveal=1')).body.vars;
    expect(vars.find((v: any) => v.name === 'API_KEY').value).toBe(SECRET);
    expect((await server.api('GET', '/api/v1/services/hello/cron-secret')).body.secret).toBe(cronSecret);
    expect((await server.api('GET', '/api/v1/services/hello/task-token')).body.token).toBe(taskToken);
  });
});
