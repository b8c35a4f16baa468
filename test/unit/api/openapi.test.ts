// The API document is generated from the routes: every route the admin app registers is in it
// (the web UI's, listed below, aside), and the response check the API tests run fails on any
// response the document does not describe.
import { describe, expect, it } from 'vitest';
import { createApi, type ApiDeps } from '../../../runtime/api/app.ts';
import { silentLogger } from '../../../runtime/core/log.ts';
import type { TokenInfo } from '../../../runtime/store/tokens.ts';
import { createUi } from '../../../ui/app.tsx';
import { createSessions } from '../../../ui/session.ts';
import { createResponseChecker } from '../../helpers/openapi-check.ts';

const token: TokenInfo = { id: 'tok_1', name: 'admin', createdAt: '2024-01-01T00:00:00.000Z', lastUsedAt: null };

/** the admin listener's app as the server builds it, with control objects that only answer what these tests ask */
function adminApp() {
  const tokens = { verify: (secret: string) => (secret === 'good' ? token : undefined), list: () => [token] };
  const deps = {
    version: '9.9.9',
    store: { tokens },
    services: { get: () => ({}), list: () => [] },
    isolation: () => ({ features: { cgroups: true }, reasons: [] }),
    now: () => new Date().toISOString(),
    log: silentLogger,
    uploadDir: '/nonexistent',
    maxUploadBytes: 1024,
    git: { serve: async () => {} },
    previews: { list: () => [] },
    hooks: { hooks: {}, hookUrl: () => '', checkRepository: () => {} },
  } as unknown as ApiDeps;
  const app = createApi(deps);
  app.route('/', createUi({ ...deps, sessions: createSessions({ tokens: tokens as never, now: () => Date.now() }) } as never));
  return app;
}

// The web UI's routes: HTML pages, their form posts (answered with redirects or pages), the
// static files they load, and the build log stream of the deployment page. They are for a browser
// with a session cookie, not for API clients, so the API document leaves them out.
const UI_ROUTES = [
  'GET /',
  'GET /login',
  'POST /login',
  'POST /logout',
  'GET /services',
  'GET /services/:name',
  'GET /services/:name/env',
  'POST /services/:name/env',
  'POST /services/:name/env/:key/delete',
  'GET /services/:name/domains',
  'POST /services/:name/domains',
  'POST /services/:name/domains/settings',
  'POST /services/:name/domains/:domain/check',
  'POST /services/:name/domains/:domain/delete',
  'GET /services/:name/observability',
  'GET /services/:name/settings',
  'POST /services/:name/settings',
  'POST /services/:name/delete',
  'GET /tokens',
  'POST /tokens',
  'POST /tokens/:id/revoke',
  'GET /services/:name/cron',
  'POST /services/:name/cron',
  'GET /services/:name/cron/:job',
  'POST /services/:name/cron/:job/run',
  'POST /services/:name/cron/:job/toggle',
  'POST /services/:name/cron/:job/delete',
  'POST /services/:name/cron/secret',
  'GET /services/:name/tasks',
  'GET /services/:name/tasks/:id',
  'POST /services/:name/tasks/:id/retry',
  'POST /services/:name/tasks/settings',
  'POST /services/:name/tasks/token',
  'GET /services/:name/git',
  'POST /services/:name/git/settings',
  'POST /services/:name/git/repository',
  'POST /services/:name/git/secret',
  'GET /deploy',
  'POST /deploy',
  'GET /deployments/:id',
  'POST /deployments/:id/promote',
  'POST /deployments/:id/rebuild',
  'GET /deployments/:id/log/stream',
  'GET /usage',
  'GET /favicon.ico',
  'GET /static/app.css',
  'GET /static/app.js',
  'GET /static/icon.svg',
];

// Hono lists middleware (use) as method ALL: they answer only when a request is refused, with
// the responses each route's document lists (the token check's 401/429, the UI's redirects).
const MIDDLEWARE = [
  'ALL /api/v1/*', // the token check of every /api/v1 route
  'ALL /metrics', // the token check of /metrics (no session cookie)
  'ALL /*', // the UI's session and CSRF checks, and its not-found page (which passes /api/ on)
  'ALL /deploy', // the UI's upload size limit on the deploy form
];

async function documentOf(app: ReturnType<typeof adminApp>) {
  const res = await app.request('/api/openapi.json');
  expect(res.status).toBe(200);
  return res.json();
}

describe('the API document', () => {
  it('lists every route the admin app registers, and nothing else', async () => {
    const app = adminApp();
    const doc = await documentOf(app);
    const documented = new Set<string>();
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${p}`);
    }
    const registered = new Set(app.routes.map((r) => `${r.method} ${r.path}`));
    const missing: string[] = [];
    for (const route of registered) {
      if (UI_ROUTES.includes(route) || MIDDLEWARE.includes(route)) continue;
      const asDocumented = route.replace(/:(\w+)/g, '{$1}');
      if (!documented.has(asDocumented)) missing.push(route);
    }
    expect(missing, 'routes missing from the API document').toEqual([]);
    // the lists above name only routes that exist, and the document only routes that are mounted
    expect([...UI_ROUTES, ...MIDDLEWARE].filter((r) => !registered.has(r))).toEqual([]);
    const mounted = new Set([...registered].map((r) => r.replace(/:(\w+)/g, '{$1}')));
    expect([...documented].filter((r) => !mounted.has(r))).toEqual([]);
    // what this document has that the hand-written one missed
    for (const p of ['/api/v1/services/{name}/env', '/api/v1/services/{name}/env/{key}', '/api/v1/services/{name}/logs', '/api/v1/services/{name}/metrics', '/api/v1/usage', '/metrics', '/api/openapi.json']) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });

  it('is OpenAPI 3.1 with the bearer scheme on every route but health and itself', async () => {
    const doc = await documentOf(adminApp());
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('9.9.9');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/api/v1/health'].get.security).toEqual([]);
    expect(doc.paths['/api/openapi.json'].get.security).toEqual([]);
    expect(doc.paths['/api/v1/services'].get.security).toBeUndefined();
    // every route behind the token says so, with the codes it answers
    expect(doc.paths['/api/v1/services'].get.responses['401']).toBeDefined();
    expect(doc.paths['/api/v1/health'].get.responses['401']).toBeUndefined();
  });

  it('describes bodies by media type: archives, JSON, text, server-sent events, Prometheus text', async () => {
    const doc = await documentOf(adminApp());
    const upload = doc.paths['/api/v1/services/{name}/deployments'].post.requestBody.content;
    expect(Object.keys(upload)).toEqual(expect.arrayContaining(['application/gzip', 'application/zip', 'application/json']));
    expect(upload['application/gzip'].schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(upload['application/json'].schema).toEqual({ $ref: '#/components/schemas/GitSource' });
    expect(Object.keys(doc.paths['/api/v1/deployments/{id}/logs'].get.responses['200'].content)).toEqual(['text/plain; charset=utf-8', 'text/event-stream']);
    expect(Object.keys(doc.paths['/api/v1/services/{name}/logs'].get.responses['200'].content)).toEqual(['application/json', 'text/event-stream']);
    expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain; version=0.0.4; charset=utf-8']);
    expect(doc.components.schemas.ServiceCreate.properties.memoryMb).toMatchObject({ minimum: 128, maximum: 7076 });
    // each error status names its codes
    expect(doc.paths['/api/v1/services/{name}'].get.responses['404'].content['application/json'].schema.allOf[1].properties.error.properties.code.enum).toEqual(['ERR_SERVICE_NOT_FOUND']);
  });
});

describe('requests the routes refuse', () => {
  const auth = { authorization: 'Bearer good' };

  it('a query failing its schema is 400 ERR_VALIDATION in the API error shape', async () => {
    const res = await adminApp().request('/api/v1/services/web/deployments?limit=0', { headers: auth });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toEqual({ error: { code: 'ERR_VALIDATION', message: expect.stringMatching(/^limit: /), details: { field: 'limit' } } });
  });

  it('JSON bodies are read by the route: empty is ERR_BODY_MISSING, malformed or of another type ERR_VALIDATION, never a 415 or 500', async () => {
    const app = adminApp();
    const post = (body: string, type?: string) =>
      app.request('/api/v1/tokens', { method: 'POST', body, headers: { ...auth, ...(type ? { 'content-type': type } : {}) } });
    expect(await (await post('', 'application/json')).json()).toMatchObject({ error: { code: 'ERR_BODY_MISSING' } });
    expect(await (await post('{"name":', 'application/json')).json()).toMatchObject({ error: { code: 'ERR_VALIDATION', message: 'the body is not valid JSON' } });
    const textType = await post('{"name":""}', 'text/plain');
    expect(textType.status).toBe(400);
    expect(await textType.json()).toMatchObject({ error: { code: 'ERR_VALIDATION', message: expect.stringMatching(/^name: /) } });
  });

  it('the token check comes first and answers in the same shape', async () => {
    const res = await adminApp().request('/api/v1/services/web/deployments?limit=0');
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('ERR_AUTH_MISSING');
    const metrics = await adminApp().request('/metrics');
    expect(metrics.status).toBe(401);
  });
});

describe('the response check the API tests run', () => {
  const docPromise = documentOf(adminApp());
  const deployment = { id: 'd-1', service: 'web', seq: 1, status: 'live', source: 'upload:tar.gz', createdAt: '2024-01-01T00:00:00.000Z' };
  const json = (method: string, path: string, status: number, body: unknown) => ({ method, path, status, contentType: 'application/json', text: JSON.stringify(body) });

  it('passes what the document describes', async () => {
    const check = createResponseChecker(await docPromise);
    check(json('GET', '/api/v1/deployments/d-1', 200, deployment));
    check(json('GET', '/api/v1/deployments/d-1', 404, { error: { code: 'ERR_DEPLOYMENT_NOT_FOUND', message: 'no deployment "d-1"' } }));
    check(json('POST', '/api/v1/services', 400, { error: { code: 'ERR_VALIDATION', message: 'name: x', details: { field: 'name' } } }));
    check({ method: 'DELETE', path: '/api/v1/tokens/tok_1', status: 204, contentType: null, text: '' });
    check({ method: 'GET', path: '/api/v1/deployments/d-1/logs', status: 200, contentType: 'text/plain; charset=UTF-8', text: 'building' });
    check(json('GET', '/api/v1/nothing-here', 404, { error: { code: 'ERR_NOT_FOUND', message: 'no route GET /api/v1/nothing-here' } }));
  });

  it.each([
    ['a field of the wrong type', json('GET', '/api/v1/deployments/d-1', 200, { ...deployment, seq: '1' }), /seq/],
    ['a missing field', json('GET', '/api/v1/deployments/d-1', 200, { ...deployment, status: undefined }), /status/],
    ['a field the document does not have', json('GET', '/api/v1/deployments/d-1', 200, { ...deployment, imageDir: '/x' }), /additional properties/],
    ['a value outside its enum', json('GET', '/api/v1/deployments/d-1', 200, { ...deployment, status: 'done' }), /allowed values/],
    ['an error code the route does not list', json('GET', '/api/v1/deployments/d-1', 404, { error: { code: 'ERR_SERVICE_NOT_FOUND', message: 'x' } }), /allowed values/],
    ['an error without the {error: {code, message}} shape', json('GET', '/api/v1/deployments/d-1', 404, { code: 'ERR_DEPLOYMENT_NOT_FOUND' }), /does not match/],
    ['a status the route does not list', json('GET', '/api/v1/deployments/d-1', 409, { error: { code: 'ERR_DEPLOYMENT_NOT_READY', message: 'x' } }), /status 409 is not listed/],
    ['a media type the route does not list', { ...json('GET', '/api/v1/deployments/d-1', 200, deployment), contentType: 'text/html' }, /content-type "text\/html"/],
    ['a body where there is none', { method: 'DELETE', path: '/api/v1/tokens/tok_1', status: 204, contentType: 'application/json', text: '{}' }, /a body where/],
    ['a success from a route the document does not list', json('GET', '/api/v1/nowhere', 200, {}), /does not list answered with success/],
    ['an unrouted error whose code is not of its status', json('GET', '/api/v1/nowhere', 404, { error: { code: 'ERR_VALIDATION', message: 'x' } }), /not a 404 code/],
  ])('fails on %s', async (_what, res, why) => {
    const check = createResponseChecker(await docPromise);
    expect(() => check(res)).toThrow(why);
  });
});
