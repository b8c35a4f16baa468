// The pool with real app processes (direct launcher): what its pieces do together.
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../runtime/core/clock.ts';
import { startTestPool, type TestPool } from '../../helpers/pool.ts';

let running: TestPool | null = null;

afterEach(async () => {
  await running?.close(0);
  running = null;
});

function setUp(clock?: Clock): TestPool {
  running = startTestPool({ scaleOutAfterMs: 0, maxParallelStarts: 2, queueLimit: 100, clock });
  return running;
}

/** polls until the check holds or the time is up; the test's assertions then say what was seen */
async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe('pool', () => {
  it('a new version, once ready, drains every instance of the old one', async () => {
    const { pool, events, target } = setUp();
    pool.setTarget('svc', target('g1', { maxInstances: 2 }));
    // two requests at once: two instances of g1 (concurrency 1)
    const leases = await Promise.all([pool.acquire('svc'), pool.acquire('svc')]);
    expect(new Set(leases.map((l) => l.instanceId)).size).toBe(2);
    for (const l of leases) l.release();
    pool.setTarget('svc', target('g2', { maxInstances: 2 }));
    await until(() => events.some((e) => e.type === 'cold_start' && e.deploymentId === 'd-g2'));
    await until(() => pool.instances('svc').length === 1, 5_000);
    expect(pool.instances('svc').map((i) => `${i.deploymentId} ${i.state}`)).toEqual(['d-g2 ready']);
    expect(events.filter((e) => e.type === 'drain').map((e) => e.type === 'drain' && e.deploymentId)).toEqual(['d-g1', 'd-g1']);
  });

  it('tells its observer how many instances a service has whenever that changes, as instances() counts them', async () => {
    const reported: { count: number; counted: number }[] = [];
    const observer = {
      instanceReady() {},
      instanceStopped() {},
      leased() {},
      released() {},
      instancesChanged: (service: string, count: number) => reported.push({ count, counted: running!.pool.instances(service).length }),
    };
    running = startTestPool({ scaleOutAfterMs: 0, queueLimit: 100, observer });
    const { pool, target } = running;
    pool.setTarget('svc', target('g1'));
    (await pool.acquire('svc')).release();
    pool.setTarget('svc', null);
    await until(() => pool.instances('svc').length === 0 && reported.at(-1)?.count === 0);
    expect(reported.map((r) => r.count)).toEqual([1, 0]);
    for (const r of reported) expect(r.count).toBe(r.counted);
  });

  it('close() measures its grace for in-flight requests on the injected clock', async () => {
    // each reading of this clock is a second later: a grace of 60 s is over in a few polls
    let now = Date.now();
    const { pool, target } = setUp({ now: () => (now += 1000) });
    pool.setTarget('svc', target('g1'));
    const lease = await pool.acquire('svc');
    const t0 = performance.now();
    await pool.close(60_000);
    expect(performance.now() - t0).toBeLessThan(5_000);
    lease.release();
  });
});
