// App faults the platform must survive without a spawn storm (issue 9 §2).
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
    await server.deploy('loop', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
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
