// Usage and metrics through real requests: billed time, cold starts, persistence, Prometheus.
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, TOKEN, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_PRICE_GB_S: '0.001' } });
  await server.deploy('slow', path.join(FIXTURES, 'node-slow'), { startCommand: 'node app.js', memoryMb: 2048, concurrency: 10 });
});
afterAll(async () => {
  await server?.close();
});

describe('usage', () => {
  it('bills concurrent requests once (union of in-flight time), plus the cold start', async () => {
    await server.app('slow', '/?ms=1');
    const before = (await server.api('GET', '/api/v1/usage?from=1h')).body.services.find((s: any) => s.service === 'slow');
    await Promise.all(Array.from({ length: 5 }, () => server.app('slow', '/?ms=400')));
    const after = (await server.api('GET', '/api/v1/usage?from=1h')).body.services.find((s: any) => s.service === 'slow');
    const billed = after.billedMs - before.billedMs;
    // five overlapping 400 ms requests: ~400 ms billed, not ~2000
    expect(billed).toBeGreaterThanOrEqual(395);
    expect(billed).toBeLessThan(700);
    expect(after.requests - before.requests).toBe(5);
    expect(after.coldStarts).toBe(1);
    expect(after.gbSeconds).toBeCloseTo((after.billedMs / 1000) * 2, 2);
    expect(after.cost).toBeCloseTo(after.gbSeconds * 0.001, 8);
  });

  it('survives a restart; a clean stop loses nothing', async () => {
    await server.app('slow', '/?ms=200');
    const before = (await server.api('GET', '/api/v1/usage?from=1h')).body.total;
    server = await server.restart();
    const after = (await server.api('GET', '/api/v1/usage?from=1h')).body.total;
    expect(after.requests).toBe(before.requests);
    expect(after.billedMs).toBeGreaterThanOrEqual(before.billedMs);
  });

  it('validates the period', async () => {
    const bad = await server.api('GET', '/api/v1/usage?from=soon');
    expect(bad.status).toBe(400);
    const backwards = await server.api('GET', '/api/v1/usage?from=1h&to=2h');
    expect(backwards.body.error.code).toBe('ERR_VALIDATION');
  });
});

describe('metrics', () => {
  it('per-minute series with status classes and latency percentiles', async () => {
    await server.app('slow', '/?ms=50');
    await server.app('ghost-free-host-check', '/'); // unknown host: not counted for slow
    const m = await server.api('GET', '/api/v1/services/slow/metrics?window=1h');
    expect(m.status).toBe(200);
    expect(m.body.points).toHaveLength(60);
    const total = m.body.points.reduce((n: number, p: any) => n + p.requests, 0);
    expect(total).toBeGreaterThanOrEqual(8);
    expect(m.body.summary.p50).toBeGreaterThan(30);
    expect(m.body.points.some((p: any) => p.instances >= 1)).toBe(true);
    expect(m.body.points.some((p: any) => p.coldStarts >= 1 && p.coldStartAvgMs > 0)).toBe(true);
    expect((await server.api('GET', '/api/v1/services/slow/metrics?window=forever')).status).toBe(400);
  });

  it('Prometheus text at /metrics, behind the token', async () => {
    expect((await fetch(server.adminUrl + '/metrics')).status).toBe(401);
    const res = await fetch(server.adminUrl + '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await res.text();
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).toMatch(/cellhost_requests_total\{service="slow",class="2xx"\} \d+/);
    expect(text).toMatch(/cellhost_request_duration_seconds_count\{service="slow"\} \d+/);
    expect(text).toContain('# TYPE cellhost_instances gauge');
    // every line is a comment or `name{labels} value`, as the exposition format requires
    for (const line of text.trim().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? -?[0-9.e+]+|[a-z_]+\{[^}]*le="\+Inf"[^}]*\} \d+)$/);
    }
  });

  it('the service view shows memory, CPU cap and cores', async () => {
    const s = (await server.api('GET', '/api/v1/services/slow')).body;
    expect(s.memoryMb).toBe(2048);
    expect(s.cpu).toEqual({ percentOfCore: 115.8, cores: Math.min(2, os.availableParallelism()) });
  });
});
