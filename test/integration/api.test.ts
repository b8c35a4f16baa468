// The management API's contract: auth, validation with stable codes, shapes, OpenAPI.
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, TOKEN, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_MAX_UPLOAD_BYTES: String(64 * 1024) } });
});
afterAll(async () => {
  await server?.close();
});

describe('auth', () => {
  it('health needs no token and reports isolation', async () => {
    const res = await fetch(server.adminUrl + '/api/v1/health');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: 'ok', version: expect.any(String), isolation: { features: expect.any(Object) } });
  });

  it.each([
    ['GET', '/api/v1/services'],
    ['POST', '/api/v1/services'],
    ['GET', '/api/v1/services/x'],
    ['PATCH', '/api/v1/services/x'],
    ['DELETE', '/api/v1/services/x'],
    ['POST', '/api/v1/services/x/deployments'],
    ['GET', '/api/v1/deployments/d-1'],
    ['POST', '/api/v1/deployments/d-1/promote'],
    ['GET', '/api/v1/tokens'],
  ])('%s %s without a token is 401', async (method, p) => {
    const res = await fetch(server.adminUrl + p, { method });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('ERR_AUTH_MISSING');
    const bad = await fetch(server.adminUrl + p, { method, headers: { authorization: 'Bearer nope' } });
    expect(bad.status).toBe(401);
    expect((await bad.json()).error.code).toBe('ERR_AUTH_INVALID');
  });

  it('tokens: create shows the secret once, it works, revoke ends it, stored hashed', async () => {
    const created = await server.api('POST', '/api/v1/tokens', { name: 'ci' });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^ch_/);
    const list = await server.api('GET', '/api/v1/tokens');
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    const withNew = await fetch(server.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer ${created.body.token}` } });
    expect(withNew.status).toBe(200);
    expect((await server.api('DELETE', `/api/v1/tokens/${created.body.id}`)).status).toBe(204);
    const after = await fetch(server.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer ${created.body.token}` } });
    expect(after.status).toBe(401);
    const fs = await import('node:fs');
    const raw = fs.readFileSync(path.join(server.dataDir, 'cellhost.db'));
    expect(raw.includes(Buffer.from(TOKEN))).toBe(false);
  });
});

describe('validation', () => {
  it.each([
    [{ name: 'Bad_Name', runtime: 'node' }, 'ERR_VALIDATION', 'name'],
    [{ name: 'ok', runtime: 'cobol' }, 'ERR_VALIDATION', 'runtime'],
    [{ name: 'ok', runtime: 'node', memoryMb: 64 }, 'ERR_VALIDATION', 'memoryMb'],
    [{ name: 'ok', runtime: 'node', memoryMb: 8000 }, 'ERR_VALIDATION', 'memoryMb'],
    [{ name: 'ok', runtime: 'node', port: 0 }, 'ERR_VALIDATION', 'port'],
    [{ name: 'ok', runtime: 'node', bogus: 1 }, 'ERR_VALIDATION', 'bogus'],
    [{ name: 'ok', runtime: 'node', minInstances: 5, maxInstances: 2 }, 'ERR_VALIDATION', 'minInstances'],
    [{ runtime: 'node' }, 'ERR_VALIDATION', 'name'],
  ])('create %j → 400 %s', async (body, code, mention) => {
    const res = await server.api('POST', '/api/v1/services', body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toContain(mention);
  });

  it('missing and malformed bodies', async () => {
    const empty = await server.api('POST', '/api/v1/services', '');
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('ERR_BODY_MISSING');
    const broken = await server.api('POST', '/api/v1/services', '{"name":');
    expect(broken.body.error.code).toBe('ERR_VALIDATION');
  });

  it('unknown service and deployment', async () => {
    const svc = await server.api('GET', '/api/v1/services/ghost');
    expect(svc.status).toBe(404);
    expect(svc.body.error.code).toBe('ERR_SERVICE_NOT_FOUND');
    const patch = await server.api('PATCH', '/api/v1/services/ghost', { memoryMb: 256 });
    expect(patch.body.error.code).toBe('ERR_SERVICE_NOT_FOUND');
    const dep = await server.api('POST', '/api/v1/services/ghost/deployments', new Uint8Array([1, 2, 3]), { 'content-type': 'application/gzip' });
    expect(dep.body.error.code).toBe('ERR_SERVICE_NOT_FOUND');
    const d = await server.api('GET', '/api/v1/deployments/d-nope');
    expect(d.status).toBe(404);
    expect(d.body.error.code).toBe('ERR_DEPLOYMENT_NOT_FOUND');
    const route = await server.api('GET', '/api/v1/nothing-here');
    expect(route.body.error.code).toBe('ERR_NOT_FOUND');
  });

  it('deployment bodies: empty, not an archive, oversize (413), corrupt archive', async () => {
    expect((await server.api('POST', '/api/v1/services', { name: 'up', runtime: 'node' })).status).toBe(201);
    const empty = await server.api('POST', '/api/v1/services/up/deployments', new Uint8Array(0), { 'content-type': 'application/gzip' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('ERR_BODY_MISSING');
    const text = await server.api('POST', '/api/v1/services/up/deployments', new TextEncoder().encode('hello'), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('ERR_UNSUPPORTED_MEDIA');
    const big = await server.api('POST', '/api/v1/services/up/deployments', new Uint8Array(65 * 1024), { 'content-type': 'application/gzip' });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('ERR_BODY_TOO_LARGE');
    const corrupt = await server.api('POST', '/api/v1/services/up/deployments', new Uint8Array(zlib.gzipSync(Buffer.from('not a tar')).subarray(0, 20)), { 'content-type': 'application/gzip' });
    expect(corrupt.status).toBe(202);
    const dep = await server.waitDeployment(corrupt.body.id);
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_SOURCE_INVALID');
    const git = await server.api('POST', '/api/v1/services/up/deployments', { git: '' });
    expect(git.body.error.code).toBe('ERR_VALIDATION');
  });

  it('a name already taken is 409', async () => {
    const again = await server.api('POST', '/api/v1/services', { name: 'up', runtime: 'node' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('ERR_SERVICE_EXISTS');
  });
});

describe('shapes', () => {
  it('service: the create body plus url, liveDeploymentId, createdAt', async () => {
    const res = await server.api('POST', '/api/v1/services', { name: 'shape', runtime: 'python', memoryMb: 512, startCommand: 'python3 app.py' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'shape',
      runtime: 'python',
      memoryMb: 512,
      startCommand: 'python3 app.py',
      port: 8080,
      plan: 'hobby',
      minInstances: 0,
      maxInstances: 10,
      concurrency: 100,
      liveDeploymentId: null,
      createdAt: expect.any(String),
      url: expect.stringMatching(/^http:\/\/shape\.localhost:\d+$/),
    });
  });

  it('deployment history paginates with limit and cursor', async () => {
    for (let i = 0; i < 3; i++) await server.deploy('pages', path.join(FIXTURES, 'node-hello'));
    const first = await server.api('GET', '/api/v1/services/pages/deployments?limit=2');
    expect(first.body.deployments).toHaveLength(2);
    expect(first.body.deployments[0]).toMatchObject({ service: 'pages', status: 'live', createdAt: expect.any(String), finishedAt: expect.any(String) });
    const next = await server.api('GET', `/api/v1/services/pages/deployments?limit=2&cursor=${first.body.nextCursor}`);
    expect(next.body.deployments).toHaveLength(1);
    expect(next.body.nextCursor).toBeNull();
  });

  it('delete stops instances and removes images', async () => {
    const fs = await import('node:fs');
    const dep = await server.deploy('gone', path.join(FIXTURES, 'node-hello'));
    expect((await server.app('gone')).status).toBe(200);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id))).toBe(true);
    expect((await server.api('DELETE', '/api/v1/services/gone')).status).toBe(204);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id))).toBe(false);
    expect((await server.app('gone')).status).toBe(404);
  });

  it('OpenAPI 3 document lists the routes', async () => {
    const res = await fetch(server.adminUrl + '/api/openapi.json');
    const doc = await res.json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/api/v1/services', '/api/v1/services/{name}/deployments', '/api/v1/deployments/{id}/promote', '/api/v1/tokens', '/api/v1/services/{name}/env', '/api/v1/services/{name}/logs', '/api/v1/usage', '/api/v1/services/{name}/metrics', '/metrics']) {
      expect(doc.paths[p]).toBeDefined();
    }
    expect(doc.components.schemas.ServiceCreate.properties.memoryMb).toMatchObject({ minimum: 128, maximum: 7076 });
  });
});

describe('token guessing', () => {
  it('30 invalid tokens a minute from one address, then 429 with Retry-After', async () => {
    const own = await startTestServer();
    try {
      for (let i = 0; i < 30; i++) {
        const res = await fetch(own.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer guess-${i}` } });
        expect(res.status).toBe(401);
      }
      const limited = await fetch(own.adminUrl + '/api/v1/services', { headers: { authorization: 'Bearer guess-x' } });
      expect(limited.status).toBe(429);
      expect((await limited.json()).error.code).toBe('ERR_AUTH_RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await own.close();
    }
  });
});
