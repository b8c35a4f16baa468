// App faults the platform must survive without a spawn storm.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('crash loop', () => {
  it('backs off exponentially: fewer than 10 starts in 10 s of constant traffic, each failure a 502 with the reason', async () => {
    await server.deployFailing('loop', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
    const deadline = Date.now() + 10_000;
    const statuses = new Map<number, number>();
    let requests = 0;
    while (Date.now() < deadline && requests < 2000) {
      const r = await server.app('loop');
      requests++;
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(r.json.error.message).toContain('exit code 3');
      await new Promise((res) => setTimeout(res, 20));
    }
    expect([...statuses.keys()]).toEqual([502]);
    const events = (await server.api('GET', '/api/v1/services/loop/logs?stream=event&limit=5000')).body.entries;
    const starts = events.filter((e: any) => e.event === 'start_failed').length;
    expect(starts).toBeGreaterThanOrEqual(3);
    expect(starts).toBeLessThan(10);
    expect(events.some((e: any) => e.event === 'backoff' && /crash loop/.test(e.message))).toBe(true);
    expect(requests).toBeGreaterThan(50);
  }, 30_000);

  it('a new deployment gets a fresh chance at once', async () => {
    const dep = await server.deploy('loop', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
    expect(dep.status).toBe('live');
    expect((await server.app('loop')).status).toBe(200);
  });
});

describe('hangs and floods', () => {
  it('an app that never answers gets 504 at the request timeout, and its instance is recycled', async () => {
    await server.deploy('hang', path.join(FIXTURES, 'node-slow'), { startCommand: 'node app.js', requestTimeoutS: 1, buildCommand: 'true' });
    const first = await server.app('hang', '/?ms=5');
    expect(first.status).toBe(200);
    const t0 = Date.now();
    const hung = await server.app('hang', '/?ms=600000');
    expect(hung.status).toBe(504);
    expect(hung.json.error.code).toBe('ERR_REQUEST_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(3000);
    const next = await server.app('hang', '/?ms=5');
    expect(next.status).toBe(200);
    expect(next.json.boot).not.toBe(first.json.boot);
    const events = (await server.api('GET', '/api/v1/services/hang/logs?stream=event')).body.entries.map((e: any) => e.event);
    expect(events).toContain('recycle');
  });

  it('an app printing hundreds of thousands of lines is rate-limited; the platform stays flat', async () => {
    const rss0 = process.memoryUsage().rss;
    await server.deploy('flood', path.join(FIXTURES, 'node-hello'), {
      startCommand: `node -e 'for (let i = 0; i < 300000; i++) console.log("flood line " + i); require("./app.js")'`,
      buildCommand: 'true',
    });
    const r = await server.app('flood');
    expect(r.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1500));
    const { body } = await server.api('GET', '/api/v1/services/flood/logs?limit=10000');
    const lines = body.entries.filter((e: any) => e.stream === 'stdout').length;
    expect(lines).toBeLessThan(10_000);
    expect(body.entries.some((e: any) => e.event === 'logs_dropped')).toBe(true);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
  });
});
