// Metering: billed time is the union of the intervals in which an instance has at least one
// request in flight (so concurrent requests are not billed twice), plus its cold start, which
// is billed to the request that caused it and counted separately. Persistent instances (min
// instances) bill their whole life. Totals go to the per-minute table every second.
import type { Clock } from '../core/clock.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { MinuteDelta, UsageStore } from '../store/usage.ts';
import { observe, type Histogram } from './histogram.ts';

export interface InstanceMeterInfo {
  service: string;
  instanceId: string;
  memoryMb: number;
  startMs: number;
  persistent: boolean;
  /** started before any request asked for it (a prewarmed instance): its start is neither a cold start nor billed */
  ahead?: boolean;
}

export interface LifetimeTotals {
  requests: Record<'2xx' | '3xx' | '4xx' | '5xx', number>;
  latency: Histogram;
  latencySumMs: number;
  coldStarts: number;
  coldStartMs: number;
  prewarmedStarts: number;
  prewarmedStartMs: number;
  billedMs: number;
  gbMs: number;
}

export interface Meter {
  instanceReady(info: InstanceMeterInfo): void;
  instanceStopped(instanceId: string): void;
  leased(instanceId: string): void;
  released(instanceId: string): void;
  /** a frozen instance bills nothing until thawed */
  paused(instanceId: string): void;
  resumed(instanceId: string): void;
  /** a request thawed a prewarmed instance: counted apart from cold starts */
  prewarmedStart(service: string, instanceId: string, thawMs: number): void;
  /** the service has this many instances now: each minute records the most seen at a flush */
  instancesChanged(service: string, count: number): void;
  request(service: string, status: number, durationMs: number): void;
  flush(): void;
  totals(): Map<string, LifetimeTotals>;
  close(): void;
}

interface InstanceState {
  service: string;
  memoryMb: number;
  persistent: boolean;
  active: number;
  paused: boolean;
  /** accounted up to here; null while nothing is billed */
  cursor: number | null;
}

export interface MeterOptions {
  clock: Clock;
  store: UsageStore;
  log: Logger;
  flushMs?: number;
}

const emptyTotals = (): LifetimeTotals => ({
  requests: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
  latency: {},
  latencySumMs: 0,
  coldStarts: 0,
  coldStartMs: 0,
  prewarmedStarts: 0,
  prewarmedStartMs: 0,
  billedMs: 0,
  gbMs: 0,
});

export function createMeter(opts: MeterOptions): Meter {
  const instances = new Map<string, InstanceState>();
  const pending = new Map<string, MinuteDelta>();
  const lifetime = new Map<string, LifetimeTotals>();
  const seen = new Set<string>();
  /** instances per service as the pool last reported them */
  const counts = new Map<string, number>();

  // the delta each service last touched: a request finds it without building a key
  const latest = new Map<string, MinuteDelta>();

  function delta(service: string, now: number): MinuteDelta {
    const minute = Math.floor(now / 60_000);
    const last = latest.get(service);
    if (last && last.minute === minute) return last;
    const key = `${service}\0${minute}`;
    let d = pending.get(key);
    if (!d) {
      d = { service, minute, requests: 0, s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, latency: {}, coldStarts: 0, coldStartMs: 0, prewarmedStarts: 0, prewarmedStartMs: 0, lastRequestAt: 0, instances: 0, billedMs: 0, gbMs: 0 };
      pending.set(key, d);
    }
    seen.add(service);
    latest.set(service, d);
    return d;
  }

  function totalsOf(service: string): LifetimeTotals {
    let t = lifetime.get(service);
    if (!t) lifetime.set(service, (t = emptyTotals()));
    return t;
  }

  function bill(service: string, memoryMb: number, ms: number, now: number): void {
    if (ms <= 0) return;
    const gbMs = (ms * memoryMb) / 1024;
    const d = delta(service, now);
    d.billedMs += ms;
    d.gbMs += gbMs;
    const t = totalsOf(service);
    t.billedMs += ms;
    t.gbMs += gbMs;
  }

  function accrue(s: InstanceState, now: number): void {
    if (s.cursor === null) return;
    bill(s.service, s.memoryMb, now - s.cursor, now);
    s.cursor = now;
  }

  const isBilling = (s: InstanceState) => !s.paused && (s.persistent || s.active > 0);

  function flush(): void {
    const now = opts.clock.now();
    for (const s of instances.values()) accrue(s, now);
    for (const service of seen) {
      const d = delta(service, now);
      d.instances = Math.max(d.instances, counts.get(service) ?? 0);
    }
    seen.clear();
    for (const s of instances.values()) seen.add(s.service);
    if (!pending.size) return;
    const batch = [...pending.values()];
    pending.clear();
    latest.clear();
    try {
      opts.store.add(batch);
    } catch (err) {
      opts.log.error('meter.flush_failed', { error: describeError(err) });
      for (const d of batch) pending.set(`${d.service}\0${d.minute}`, d);
    }
  }

  const timer = setInterval(flush, opts.flushMs ?? 1000);
  timer.unref();

  return {
    instanceReady(info) {
      const now = opts.clock.now();
      const s: InstanceState = { service: info.service, memoryMb: info.memoryMb, persistent: info.persistent, active: 0, paused: false, cursor: info.persistent ? now : null };
      instances.set(info.instanceId, s);
      // no request waited for it and nobody pays for it: its first request is counted when it thaws
      if (info.ahead) return;
      const d = delta(info.service, now);
      d.coldStarts++;
      d.coldStartMs += info.startMs;
      const t = totalsOf(info.service);
      t.coldStarts++;
      t.coldStartMs += info.startMs;
      bill(info.service, info.memoryMb, info.startMs, now);
    },
    instanceStopped(instanceId) {
      const s = instances.get(instanceId);
      if (!s) return;
      accrue(s, opts.clock.now());
      instances.delete(instanceId);
    },
    leased(instanceId) {
      const s = instances.get(instanceId);
      if (!s) return;
      const was = isBilling(s);
      s.active++;
      if (!was && isBilling(s)) s.cursor = opts.clock.now();
    },
    released(instanceId) {
      const s = instances.get(instanceId);
      if (!s || s.active === 0) return;
      const was = isBilling(s);
      s.active--;
      if (was && !isBilling(s)) {
        accrue(s, opts.clock.now());
        s.cursor = null;
      }
    },
    paused(instanceId) {
      const s = instances.get(instanceId);
      if (!s || s.paused) return;
      accrue(s, opts.clock.now());
      s.paused = true;
      s.cursor = null;
    },
    resumed(instanceId) {
      const s = instances.get(instanceId);
      if (!s || !s.paused) return;
      s.paused = false;
      if (isBilling(s)) s.cursor = opts.clock.now();
    },
    instancesChanged(service, count) {
      if (count > 0) counts.set(service, count);
      else counts.delete(service);
    },
    prewarmedStart(service, _instanceId, thawMs) {
      const d = delta(service, opts.clock.now());
      d.prewarmedStarts++;
      d.prewarmedStartMs += thawMs;
      const t = totalsOf(service);
      t.prewarmedStarts++;
      t.prewarmedStartMs += thawMs;
    },
    request(service, status, durationMs) {
      const now = opts.clock.now();
      const d = delta(service, now);
      d.requests++;
      d.lastRequestAt = now;
      const cls = status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
      d[`s${cls}`]++;
      observe(d.latency, durationMs);
      const t = totalsOf(service);
      t.requests[cls]++;
      observe(t.latency, durationMs);
      t.latencySumMs += durationMs;
    },
    flush,
    totals: () => lifetime,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
