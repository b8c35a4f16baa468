// Log retention on a real SQLite file: by age, and by a per-service cap.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../runtime/store/index.ts';
import { tempDir } from '../helpers/server.ts';

const dir = tempDir('cellhost-logs-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('log retention', () => {
  it('removes lines older than the age limit and beyond the per-service cap, keeping the newest', () => {
    const store = openStore(path.join(dir, 'cellhost.db'));
    try {
      const day = 86_400_000;
      const now = Date.UTC(2026, 10, 28);
      const entry = (service: string, ts: number, message: string) => ({ service, ts, stream: 'stdout' as const, instanceId: 'i-1', deploymentId: 'd-1', event: null, message, fields: null });
      store.logs.append([entry('a', now - 8 * day, 'too old'), entry('a', now - 6 * day, 'recent enough'), entry('b', now - 9 * day, 'b old')]);
      store.logs.append(Array.from({ length: 50 }, (_, i) => entry('c', now - 1000 + i, `c line ${i}`)));
      const removed = store.logs.prune(now - 7 * day, 20);
      expect(removed).toBe(2 + 30);
      expect(store.logs.query({ service: 'a', limit: 100 }).map((e) => e.message)).toEqual(['recent enough']);
      expect(store.logs.query({ service: 'b', limit: 100 })).toEqual([]);
      const c = store.logs.query({ service: 'c', limit: 100 }).map((e) => e.message);
      expect(c).toHaveLength(20);
      expect(c[0]).toBe('c line 30');
      expect(c[19]).toBe('c line 49');
    } finally {
      store.close();
    }
  });
});
