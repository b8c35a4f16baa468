// The task intake behind the real router (createRouter on loopback, no app, no platform around it):
// which requests it takes, what it stores, its refusals, and a client dripping a body.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CellhostError } from '../../../runtime/core/errors.ts';
import { silentLogger } from '../../../runtime/core/log.ts';
import type { Pool } from '../../../runtime/instances/pool/types.ts';
import type { RouterServer as Http1Server } from '../../../runtime/router/request.ts';
import { isPlatformHost } from '../../../runtime/router/platform-hosts.ts';
import { createRouter } from '../../../runtime/router/proxy.ts';
import { createRouteTable } from '../../../runtime/router/route-table.ts';
import type { NewTask } from '../../../runtime/store/tasks.ts';
import { createTaskIntake } from '../../../runtime/tasks/intake.ts';

const TOKEN = 'cht_test-token';
let router: Http1Server;
let port: number;
const stored: NewTask[] = [];
let free = 1e12;

beforeAll(async () => {
  const intake = createTaskIntake({
    serviceExists: (name) => name === 'web',
    tokenFor: (name) => (name === 'web' ? TOKEN : null),
    enqueue: async (t) => {
      if (free < 0) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      stored.push(t);
    },
    freeBytes: () => free,
    onAccepted: () => {},
    bodyTimeoutMs: 300,
    clock: { now: () => Date.parse('2026-01-01T00:00:00Z') },
    log: silentLogger,
  });
  const routes = createRouteTable({ domain: 'localhost' });
  routes.set({ service: 'web', requestTimeoutMs: 1000 }, []);
  router = createRouter({
    // the app's side: no instance to give (the router answers 503 for it)
    pool: { tryAcquire: () => null, acquire: () => Promise.reject(new CellhostError('ERR_NO_DEPLOYMENT', 'no app in this test')) } as unknown as Pool,
    // an app is served at web.localhost: the intake must never see its requests
    routes,
    maxBodyBytes: 100 * 1024 * 1024,
    log: silentLogger,
    platform: (req, id) => isPlatformHost(req.host, 'localhost') && intake.handle(req, id),
  });
  await new Promise<void>((r) => router.listen(0, '127.0.0.1', () => r()));
  port = (router.address() as net.AddressInfo).port;
});

afterAll(async () => {
  router.closeAllConnections();
  await new Promise((r) => router.close(r));
});

/** raw bytes in; everything the router sent back until it closed or `waitMs` passed */
function raw(data: string | Buffer, waitMs = 2000, keepSending?: (sock: net.Socket) => void): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const done = () => {
      clearTimeout(t);
      sock.destroy();
      resolve({ text, closed });
    };
    const t = setTimeout(done, waitMs);
    sock.on('data', (b) => (text += b.toString('latin1')));
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('error', done);
    sock.write(data);
    keepSending?.(sock);
  });
}

const head = (path: string, headers: string, method = 'POST', host = 'localhost:8080') => `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers}`;

describe('task intake', () => {
  it('stores method, path and query, headers less the token and platform fields, and the body; answers 202', async () => {
    const body = '{"to":"a@example.com"}';
    const res = await raw(
      head('/tasks/web/emails/send?x=1', `Authorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nX-Custom: kept\r\nX-Cellhost-Task-Id: forged\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, 'PUT'),
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 202 Accepted/);
    const t = stored.at(-1)!;
    expect(res.text).toContain(`"id":"${t.id}"`);
    expect(t).toMatchObject({ service: 'web', method: 'PUT', path: '/emails/send?x=1' });
    expect(t.body?.toString()).toBe(body);
    expect(t.headers).toEqual(['Content-Type', 'application/json', 'X-Custom', 'kept']);
  });

  it('a token in X-Cellhost-Task-Token leaves the Authorization header for the app; /tasks/web alone is the app root', async () => {
    const res = await raw(head('/tasks/web', `X-Cellhost-Task-Token: ${TOKEN}\r\nAuthorization: Bearer app-key\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`));
    expect(res.text).toMatch(/^HTTP\/1\.1 202/);
    expect(stored.at(-1)).toMatchObject({ path: '/', headers: ['Authorization', 'Bearer app-key'], body: null });
  });

  it("never takes an app's host, nor another host; an IP address is the platform's", async () => {
    const n = stored.length;
    const app = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'POST', 'web.localhost'));
    // the app's request goes to its pool (here with no instance to give), not to the intake
    expect(app.text).toMatch(/^HTTP\/1\.1 503[\s\S]*ERR_NO_DEPLOYMENT/);
    const other = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'POST', 'example.com'));
    expect(other.text).toMatch(/^HTTP\/1\.1 404/);
    expect(other.text).toContain('ERR_HOST_UNKNOWN');
    expect(stored.length).toBe(n);
    const ip = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'POST', '127.0.0.1:8080'));
    expect(ip.text).toMatch(/^HTTP\/1\.1 202/);
    const v6 = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'POST', '[::1]:8080'));
    expect(v6.text).toMatch(/^HTTP\/1\.1 202/);
  });

  it('refusals: no token 401, wrong token 401, unknown service 404, GET 405, disk full 507, each with its code and nothing stored', async () => {
    const n = stored.length;
    const cases: [string, RegExp, string][] = [
      [head('/tasks/web/x', 'Content-Length: 0\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 401/, 'ERR_AUTH_MISSING'],
      [head('/tasks/web/x', 'Authorization: Bearer nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 401/, 'ERR_AUTH_INVALID'],
      [head('/tasks/other/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 404/, 'ERR_SERVICE_NOT_FOUND'],
      [head('/tasks/Bad_Name/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 404/, 'ERR_SERVICE_NOT_FOUND'],
      [head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`, 'GET'), /^HTTP\/1\.1 405[\s\S]*allow: POST, PUT, PATCH, DELETE/i, 'ERR_METHOD_NOT_ALLOWED'],
    ];
    for (const [req, status, code] of cases) {
      const res = await raw(req);
      expect(res.text).toMatch(status);
      expect(res.text).toContain(code);
    }
    free = 512 * 1024;
    const full = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`));
    expect(full.text).toMatch(/^HTTP\/1\.1 507[\s\S]*ERR_DISK_FULL/);
    // room by statfs, but SQLite cannot write: still 507, not 500
    free = -1;
    const sqliteFull = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`));
    free = 1e12;
    expect(sqliteFull.text).toMatch(/^HTTP\/1\.1 507[\s\S]*ERR_DISK_FULL/);
    expect(stored.length).toBe(n);
  });

  it('a body that does not arrive in time is answered 408 and the connection closed', async () => {
    const n = stored.length;
    const started = Date.now();
    let drip: NodeJS.Timeout | undefined;
    const res = await raw(head('/tasks/web/x', `Authorization: Bearer ${TOKEN}\r\nContent-Length: 1000\r\n\r\nabc`), 3000, (sock) => {
      drip = setInterval(() => sock.writable && sock.write('x'), 50);
    });
    clearInterval(drip);
    expect(res.text).toMatch(/^HTTP\/1\.1 408[\s\S]*ERR_BODY_TIMEOUT/);
    expect(res.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(stored.length).toBe(n);
  });
});
