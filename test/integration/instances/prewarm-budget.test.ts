// The prewarm budget counts what an instance holds once frozen. Between the reading taken while it
// runs and the freeze, an app still runs (a collection, a timer) and the kernel charges memory in
// batches: a budget counted from the running figure ended 1 MB over in the benchmark. Here the
// direct launcher's instances get a freezer that only records the state, and a memory reading
// that says more once frozen, so the pool's arithmetic is what is tested, on real app processes.
import { afterEach, describe, expect, it } from 'vitest';
import type { Launcher } from '../../../runtime/instances/launcher.ts';
import type { Lease } from '../../../runtime/instances/pool/types.ts';
import { startTestPool, type TestPool } from '../../helpers/pool.ts';

const MB = 1024 * 1024;

let running: TestPool | null = null;
afterEach(async () => {
  await running?.close(0);
  running = null;
});

interface Held {
  running: number;
  frozen: number;
  /** runs as it is read frozen */
  onFrozenRead?: () => void;
  /** runs as it is thawed, which waits for it */
  onThaw?: () => Promise<void>;
}

/** per deployment: what its instances hold running, and frozen */
function withMemory(held: Record<string, Held>): (l: Launcher) => Launcher {
  return (inner) => ({
    async prepare(spec) {
      const launch = await inner.prepare(spec);
      const m = held[spec.deploymentId]!;
      let frozen = false;
      return {
        ...launch,
        freeze: async () => void (frozen = true),
        thaw: async () => {
          await m.onThaw?.();
          frozen = false;
        },
        memoryBytes: async () => {
          if (frozen) m.onFrozenRead?.();
          return frozen ? m.frozen : m.running;
        },
      };
    },
  });
}

/** the memory every frozen instance holds, as the kernel would report it */
function frozenTotal(pool: TestPool['pool'], held: Record<string, { frozen: number }>, services: string[]): number {
  let total = 0;
  for (const name of services) for (const i of pool.instances(name)) if (i.frozen) total += held[i.deploymentId]!.frozen;
  return total;
}

describe('the prewarm budget, counted frozen', () => {
  it('an instance that holds more than the budget once frozen is stopped, not kept', async () => {
    const held = { 'd-a': { running: 4 * MB, frozen: 12 * MB } };
    running = startTestPool({ prewarmBudgetBytes: 10 * MB }, withMemory(held));
    const { pool, target } = running;
    const outcome = await pool.prewarm('a', target('a', { prewarm: true }), { reason: 'restart' });
    expect(outcome.kind).toBe('no-room');
    expect(outcome.kind === 'no-room' && outcome.reason).toMatch(/frozen, it holds 12 MB: the budget of 10 MB/);
    expect(pool.instances('a').filter((i) => i.state !== 'stopped')).toEqual([]);
  });

  it('a newer one that holds more once frozen pushes out an older one, so what is frozen stays within the budget', async () => {
    const held = { 'd-a': { running: 4 * MB, frozen: 5 * MB }, 'd-b': { running: 4 * MB, frozen: 6 * MB } };
    running = startTestPool({ prewarmBudgetBytes: 10 * MB }, withMemory(held));
    const { pool, target, events } = running;
    const now = Date.now();
    expect((await pool.prewarm('a', target('a', { prewarm: true }), { reason: 'restart', lastUsedAt: now - 60_000 })).kind).toBe('kept');
    const b = await pool.prewarm('b', target('b', { prewarm: true }), { reason: 'restart', lastUsedAt: now });
    expect(b).toMatchObject({ kind: 'kept', memoryBytes: 6 * MB });
    // counted from the running figures (4 + 4 MB) both would have been kept, 11 MB frozen
    expect(events.filter((e) => e.type === 'prewarm_evicted').map((e) => e.type === 'prewarm_evicted' && [e.deploymentId, e.why])).toEqual([['d-a', 'budget']]);
    expect(events.find((e) => e.type === 'prewarmed' && e.deploymentId === 'd-b')).toMatchObject({ memoryBytes: 6 * MB, keptBytes: 6 * MB });
    expect(frozenTotal(pool, held, ['a', 'b'])).toBe(6 * MB);
  });

  it('a request that thaws it while it is being counted is served by it, and it is not kept', async () => {
    let lease: Promise<{ instanceId: string; release(): void }> | null = null;
    const held: Record<string, Held> = {
      'd-a': { running: 4 * MB, frozen: 5 * MB, onFrozenRead: () => void (lease ??= running!.pool.acquire('a')) },
    };
    running = startTestPool({ prewarmBudgetBytes: 10 * MB }, withMemory(held));
    const { pool, target, events } = running;
    pool.setTarget('a', target('a', { prewarm: true }));
    const outcome = await pool.prewarm('a', target('a', { prewarm: true }), { reason: 'restart' });
    expect(lease).not.toBeNull();
    const l = await lease!;
    expect(outcome).toEqual({ kind: 'taken', instanceId: l.instanceId });
    l.release();
    expect(events.some((e) => e.type === 'prewarmed')).toBe(false);
    expect(pool.instances('a').map((i) => [i.id, i.frozen, i.prewarm?.kept ?? false])).toEqual([[l.instanceId, false, false]]);
  });

  it('a request that comes while an evicted one is thawed before its stop is served by a new instance, not the one stopping', async () => {
    let lease: Promise<Lease> | null = null;
    const held: Record<string, Held> = {
      'd-a': {
        running: 4 * MB,
        frozen: 5 * MB,
        // the eviction's thaw: a request for a comes meanwhile, and has time to be placed
        onThaw: async () => {
          lease ??= running!.pool.acquire('a');
          await new Promise((r) => setTimeout(r, 100));
        },
      },
      'd-b': { running: 4 * MB, frozen: 6 * MB },
    };
    running = startTestPool({ prewarmBudgetBytes: 10 * MB }, withMemory(held));
    const { pool, target, events } = running;
    const now = Date.now();
    pool.setTarget('a', target('a', { prewarm: true }));
    const a = await pool.prewarm('a', target('a', { prewarm: true }), { reason: 'restart', lastUsedAt: now - 60_000 });
    expect(a.kind).toBe('kept');
    const evictedId = a.kind === 'kept' ? a.instanceId : '';
    // b's keep pushes a out
    expect((await pool.prewarm('b', target('b', { prewarm: true }), { reason: 'restart', lastUsedAt: now })).kind).toBe('kept');
    expect(events.filter((e) => e.type === 'prewarm_evicted').map((e) => e.type === 'prewarm_evicted' && e.instanceId)).toEqual([evictedId]);
    expect(lease).not.toBeNull();
    const l = await lease!;
    try {
      expect(l.instanceId).not.toBe(evictedId);
      const res = await fetch(`http://${l.upstream.host}:${l.upstream.port}/`);
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      l.release();
    }
    expect(pool.instances('a').map((i) => i.id)).toEqual([l.instanceId]);
  });
});
