// Token guessing against the admin listener, as any local user could do it: wrong tokens from one
// loopback address must not lock the real token out for everyone on the host, and another
// loopback address (127.0.0.2, ...) must not be a fresh source that escapes the limit. Runs
// against the real platform (API and UI login), every request from a chosen loopback address.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TOKEN, type TestServer } from '../helpers/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_ISOLATION: 'off' } });
});

afterAll(async () => {
  await server?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** one request to the admin listener from `from` (a loopback address) */
function request(from: string, method: string, p: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const url = new URL(server.adminUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: p, method, headers, localAddress: from, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const apiWith = (from: string, token: string) => request(from, 'GET', '/api/v1/services', { authorization: `Bearer ${token}` });

/** the UI's login form: fetch it (for its CSRF pair), then post a token */
async function uiLogin(from: string, token: string): Promise<Answer> {
  const form = await request(from, 'GET', '/login', {});
  const cookie = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1];
  expect(csrf, 'the login form carries a CSRF field').toBeTruthy();
  const body = new URLSearchParams({ token, _csrf: csrf!, next: '/' }).toString();
  return request(from, 'POST', '/login', { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body);
}

describe('admin API token guessing', () => {
  it('wrong tokens from 127.0.0.1 do not lock the real token out, from there or any other local address', async () => {
    // the API's 30 a minute, then one more
    for (let i = 0; i < 30; i++) expect((await apiWith('127.0.0.1', `guess-a-${i}`)).status).toBe(401);
    const limited = await apiWith('127.0.0.1', 'guess-a-last');
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body).error.code).toBe('ERR_AUTH_RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    expect((await apiWith('127.0.0.1', TOKEN)).status).toBe(200);
    expect((await apiWith('127.0.0.9', TOKEN)).status).toBe(200);
  });

  it('another loopback address is the same source: 127.0.0.2 does not escape the limit', async () => {
    // the previous test's guesses from 127.0.0.1 are still in the window
    const other = await apiWith('127.0.0.2', 'guess-b-0');
    expect(other.status).toBe(429);
    expect(JSON.parse(other.body).error.code).toBe('ERR_AUTH_RATE_LIMITED');
    const started = Date.now();
    const further = await apiWith('127.55.3.1', 'guess-b-1');
    expect(further.status).toBe(429);
    // each refusal is held longer than the one before: the third past the limit, 400 ms
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  });
});

describe('UI login guessing', () => {
  it('wrong tokens at the login form do not lock the real token out; another loopback address is still limited', async () => {
    // the login form's 10 a minute, then one more
    for (let i = 0; i < 10; i++) expect((await uiLogin('127.0.0.1', `ui-guess-${i}`)).status).toBe(401);
    const limited = await uiLogin('127.0.0.1', 'ui-guess-last');
    expect(limited.status).toBe(429);
    expect((await uiLogin('127.0.0.3', 'ui-guess-other')).status).toBe(429);

    const real = await uiLogin('127.0.0.1', TOKEN);
    expect(real.status).toBe(303);
    expect(real.headers['set-cookie']?.join(';')).toContain('cellhost_session=');
    expect((await uiLogin('127.0.0.4', TOKEN)).status).toBe(303);
  });
});
