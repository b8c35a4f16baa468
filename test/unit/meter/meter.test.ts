import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../runtime/core/log.ts';
import { createMeter } from '../../../runtime/meter/meter.ts';
import { bucketOf, observe, quantile, type Histogram } from '../../../runtime/meter/histogram.ts';
import type { MinuteDelta, UsageStore } from '../../../runtime/store/usage.ts';

function setup() {
  let now = 60_000 * 1000;
  const rows: MinuteDelta[] = [];
  const store: UsageStore = { add: (d) => void rows.push(...d.map((x) => ({ ...x }))), range: () => [], lastUsed: () => [] };
  const meter = createMeter({ clock: { now: () => now }, store, log: silentLogger, flushMs: 1e9 });
  const sum = (k: 'billedMs' | 'gbMs' | 'coldStarts' | 'requests' | 'prewarmedStarts' | 'prewarmedStartMs') => rows.reduce((n, r) => n + r[k], 0);
  return { meter, rows, sum, tick: (ms: number) => (now += ms), close: () => meter.close() };
}

describe('meter', () => {
  it('bills the union of in-flight intervals: overlapping requests are not billed twice', () => {
    const { meter, sum, tick, close } = setup();
    meter.instanceReady({ service: 's', instanceId: 'i', memoryMb: 1024, startMs: 0, persistent: false });
    meter.leased('i'); // A starts at 0
    tick(50);
    meter.leased('i'); // B starts at 50
    tick(50);
    meter.released('i'); // A ends at 100
    tick(50);
    meter.released('i'); // B ends at 150
    tick(1000); // idle: not billed
    meter.leased('i');
    tick(25);
    meter.released('i');
    meter.flush();
    expect(sum('billedMs')).toBe(175);
    expect(sum('gbMs')).toBe(175);
    close();
  });

  it('GB-ms scale with memory: 128 MB for 1 s equals 1024 MB for 0.125 s', () => {
    const { meter, rows, tick, close } = setup();
    meter.instanceReady({ service: 'small', instanceId: 'a', memoryMb: 128, startMs: 0, persistent: false });
    meter.instanceReady({ service: 'big', instanceId: 'b', memoryMb: 1024, startMs: 0, persistent: false });
    meter.leased('a');
    meter.leased('b');
    tick(125);
    meter.released('b');
    tick(875);
    meter.released('a');
    meter.flush();
    const gb = (s: string) => rows.filter((r) => r.service === s).reduce((n, r) => n + r.gbMs, 0);
    expect(gb('small')).toBeCloseTo(125);
    expect(gb('big')).toBeCloseTo(125);
    close();
  });

  it('a prewarmed instance: its start ahead is neither billed nor a cold start, its frozen wait is free, and the request that thaws it counts as a prewarmed start', () => {
    const { meter, sum, tick, close } = setup();
    meter.instanceReady({ service: 's', instanceId: 'i', memoryMb: 1024, startMs: 0, persistent: false, ahead: true });
    meter.paused('i');
    tick(60_000);
    meter.resumed('i');
    meter.prewarmedStart('s', 'i', 4);
    meter.leased('i');
    tick(10);
    meter.released('i');
    meter.flush();
    expect(sum('coldStarts')).toBe(0);
    expect(sum('prewarmedStarts')).toBe(1);
    expect(sum('prewarmedStartMs')).toBe(4);
    expect(sum('billedMs')).toBe(10);
    expect(meter.totals().get('s')).toMatchObject({ coldStarts: 0, prewarmedStarts: 1 });
    close();
  });

  it('bills the cold start to the request that caused it, and counts it separately', () => {
    const { meter, rows, sum, tick, close } = setup();
    meter.instanceReady({ service: 's', instanceId: 'i', memoryMb: 2048, startMs: 300, persistent: false });
    meter.leased('i');
    tick(100);
    meter.released('i');
    meter.flush();
    expect(sum('billedMs')).toBe(400);
    expect(sum('gbMs')).toBe(800);
    expect(sum('coldStarts')).toBe(1);
    expect(rows.reduce((n, r) => n + r.coldStartMs, 0)).toBe(300);
    close();
  });

  it("a service active since the last flush records the instances the pool last reported (the store keeps the minute's most)", () => {
    const { meter, rows, tick, close } = setup();
    meter.instancesChanged('s', 1);
    meter.request('s', 200, 5);
    meter.instancesChanged('s', 3);
    meter.flush();
    meter.instancesChanged('s', 2);
    meter.request('s', 200, 5);
    meter.flush();
    tick(60_000);
    meter.instancesChanged('s', 0);
    meter.request('s', 200, 5);
    meter.flush();
    expect(rows.map((r) => [r.minute, r.instances])).toEqual([
      [1000, 3],
      [1000, 2],
      [1001, 0],
    ]);
    close();
  });

  it('persistent instances bill their whole life; frozen time is not billed', () => {
    const { meter, sum, tick, close } = setup();
    meter.instanceReady({ service: 's', instanceId: 'p', memoryMb: 1024, startMs: 0, persistent: true });
    tick(1000);
    meter.paused('p');
    tick(5000);
    meter.resumed('p');
    tick(500);
    meter.instanceStopped('p');
    meter.flush();
    expect(sum('billedMs')).toBe(1500);
    close();
  });

  it('a long request is accounted at every flush, so a crash loses at most the last interval', () => {
    const { meter, rows, tick, close } = setup();
    meter.instanceReady({ service: 's', instanceId: 'i', memoryMb: 1024, startMs: 0, persistent: false });
    meter.leased('i');
    tick(1000);
    meter.flush();
    expect(rows.reduce((n, r) => n + r.billedMs, 0)).toBe(1000);
    tick(1000);
    meter.flush();
    expect(rows.reduce((n, r) => n + r.billedMs, 0)).toBe(2000);
    meter.released('i');
    close();
  });

  it('counts requests by class with a latency histogram', () => {
    const { meter, rows, close } = setup();
    meter.request('s', 200, 10);
    meter.request('s', 404, 1);
    meter.request('s', 502, 100);
    meter.flush();
    expect(rows[0]).toMatchObject({ requests: 3, s2xx: 1, s4xx: 1, s5xx: 1 });
    close();
  });
});

describe('histogram', () => {
  it('quantiles land within a bucket (25 %) of the truth', () => {
    const h: Histogram = {};
    for (let i = 1; i <= 1000; i++) observe(h, i);
    expect(quantile(h, 0.5)!).toBeGreaterThan(500 / 1.25);
    expect(quantile(h, 0.5)!).toBeLessThan(500 * 1.25);
    expect(quantile(h, 0.99)!).toBeGreaterThan(990 / 1.25);
    expect(quantile(h, 0.99)!).toBeLessThan(990 * 1.25);
    expect(quantile({}, 0.5)).toBeNull();
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(1e12)).toBe(64);
  });
});

describe('percentiles from a known latency mix', () => {
  it('90 % at 10 ms, 9 % at 100 ms, 1 % at 1000 ms → p50 ≈ 10, p95 ≈ 100, p99 ≈ 100, and the tail is in the 1 s bucket', () => {
    const h: Histogram = {};
    for (let i = 0; i < 900; i++) observe(h, 10);
    for (let i = 0; i < 90; i++) observe(h, 100);
    for (let i = 0; i < 10; i++) observe(h, 1000);
    const within = (v: number | null, target: number) => v !== null && v > target / 1.25 && v <= target * 1.25;
    expect(within(quantile(h, 0.5), 10)).toBe(true);
    expect(within(quantile(h, 0.95), 100)).toBe(true);
    expect(within(quantile(h, 0.99), 100)).toBe(true);
    expect(within(quantile(h, 0.999), 1000)).toBe(true);
    expect(h[bucketOf(10)]).toBe(900);
    expect(h[bucketOf(1000)]).toBe(10);
  });
});

