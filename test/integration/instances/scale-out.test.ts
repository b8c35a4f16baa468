// Scale-out on a host with no core to spare: the pool with real app processes (direct launcher)
// and a host-CPU reading the test decides.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostCpu } from '../../../runtime/instances/host-cpu.ts';
import { startTestPool, type TestPool } from '../../helpers/pool.ts';

let running: TestPool | null = null;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

afterEach(async () => {
  await running?.close(2000);
  running = null;
});

function setUp(saturated: boolean, concurrency: number, maxInstances: number) {
  const hostCpu: HostCpu = { mark: () => ({ atMs: performance.now(), stallUs: 0 }), saturated: () => saturated };
  running = startTestPool({ scaleOutAfterMs: 50, maxParallelStarts: 1, hostCpu });
  const { pool: p, events } = running;
  p.setTarget('svc', running.target('g1', { concurrency, maxInstances }));
  /** n requests at once, each taking `ms` in the app (the first `firstMs`, if given); resolves with the instances that served them */
  const burst = (n: number, ms: number, firstMs = ms) =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const lease = await p.acquire('svc');
        try {
          return await get(lease.upstream.port, `/?ms=${i === 0 ? firstMs : ms}`);
        } finally {
          lease.release();
        }
      }),
    );
  const started = () => events.filter((e) => e.type === 'cold_start').length;
  return { events, burst, started };
}

function get(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body).boot) : reject(new Error(`status ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

describe('scale-out when the host has no core to spare', () => {
  it('a burst of quick requests stays on the warm instance, and says so once', async () => {
    const { events, burst, started } = setUp(true, 2, 4);
    const boots = await burst(80, 3);
    expect(new Set(boots).size).toBe(1);
    expect(started()).toBe(1);
    const held = events.filter((e) => e.type === 'scale_out_held');
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ service: 'svc', instances: 1 });
  });

  it('an instance whose first request is slow is not taken for one stuck behind slow requests', async () => {
    // the first 50 ms window after readiness ends before the first (70 ms) request does
    const { events, burst, started } = setUp(true, 1, 4);
    const boots = await burst(60, 3, 70);
    expect(new Set(boots).size).toBe(1);
    expect(started()).toBe(1);
    expect(events.filter((e) => e.type === 'scale_out_held')).toHaveLength(1);
  });

  it('the same burst scales out when a core is free', async () => {
    const { events, burst, started } = setUp(false, 2, 4);
    await burst(80, 3);
    expect(started()).toBeGreaterThan(1);
    expect(events.some((e) => e.type === 'scale_out_held')).toBe(false);
  });

  it('requests stuck behind slow ones still get their instances', async () => {
    const { burst, started } = setUp(true, 1, 3);
    const boots = await burst(3, 1500);
    expect(new Set(boots).size).toBe(3);
    expect(started()).toBe(3);
  });

  it('load that lasts past a second is not a burst: it scales out all the same', async () => {
    const { events, burst, started } = setUp(true, 1, 3);
    // ~150 requests of 15 ms on one instance would take over 2 s
    await burst(150, 15);
    expect(events.some((e) => e.type === 'scale_out_held')).toBe(true);
    expect(started()).toBeGreaterThan(1);
  });
});
