// Service uids: handed out in one place, never shared, never handed on within the grace period.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import { DEFAULT_UID_RANGE } from '../../../runtime/sandbox/uids.ts';
import { openStore, type Store } from '../../../runtime/store/index.ts';
import { pickSubuidBlock, pickUid, UID_RETIREMENT_MS } from '../../../runtime/store/uids.ts';
import { loadConfig, SUBUID_BLOCK } from '../../../runtime/core/config.ts';

describe('pickUid', () => {
  const range = { first: 1000, last: 1004 };

  it('starts at the bottom of the range', () => {
    expect(pickUid(new Set(), range)).toBe(1000);
    expect(pickUid(new Set(), DEFAULT_UID_RANGE)).toBe(DEFAULT_UID_RANGE.first);
  });

  it('takes one past the highest taken, so freed uids are not reused at once', () => {
    expect(pickUid(new Set([1000, 1002]), range)).toBe(1003);
  });

  it('ignores uids outside the range', () => {
    expect(pickUid(new Set([5, 99999]), range)).toBe(1000);
  });

  it('wraps to the lowest free uid once the top is taken', () => {
    expect(pickUid(new Set([1000, 1001, 1004]), range)).toBe(1002);
  });

  it('fails when the range is full', () => {
    expect(() => pickUid(new Set([1000, 1001, 1002, 1003, 1004]), range)).toThrow(/no free uid/);
  });
});

describe('the services store hands out uids', () => {
  let dir: string;
  let store: Store;
  const range = { first: 1000, last: 1002 };
  const settings = { ...SERVICE_DEFAULTS, runtime: 'node' as const };
  const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-uids-'));
    store = openStore(path.join(dir, 'cellhost.db'));
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a service re-created under a deleted one’s name gets another uid', () => {
    const first = store.services.insert('app', settings, at(0), range).uid;
    store.services.remove('app', at(1000));
    const again = store.services.insert('app', settings, at(2000), range).uid;
    expect(first).toBe(1000);
    expect(again).toBe(1001);
  });

  it('a retired uid is not handed out within the grace period, even when the range wraps', () => {
    store.services.insert('a', settings, at(0), range);
    store.services.insert('b', settings, at(0), range);
    store.services.insert('c', settings, at(0), range);
    store.services.remove('a', at(1000));
    // 1000 is free but retired, 1001 and 1002 are in use: nothing left
    expect(() => store.services.insert('d', settings, at(2000), range)).toThrow(/no free uid/);
    // past the grace period it comes back
    expect(store.services.insert('d', settings, at(1000 + UID_RETIREMENT_MS + 1), range).uid).toBe(1000);
  });

  it('a service from before uids existed gets one the same way', () => {
    store.services.insert('a', settings, at(0), range);
    store.db.prepare('UPDATE services SET uid = NULL WHERE name = ?').run('a');
    const b = store.services.insert('b', settings, at(0), range).uid;
    store.services.remove('b', at(10));
    // b's uid is retired: a gets the next one
    expect(store.services.assignUid('a', range, at(20))).toBe(b! + 1);
  });
});

describe('subuid blocks for system layers', () => {
  const B = SUBUID_BLOCK;
  const range = { first: 10 * B, last: 13 * B - 1 };

  it('whole blocks of 65536 from the bottom of the range, one past the highest taken', () => {
    expect(pickSubuidBlock(new Set(), range)).toBe(10 * B);
    expect(pickSubuidBlock(new Set([10 * B]), range)).toBe(11 * B);
    // not a block base of this range: ignored
    expect(pickSubuidBlock(new Set([10 * B + 5, 99]), range)).toBe(10 * B);
    expect(pickSubuidBlock(new Set([10 * B, 12 * B]), range)).toBe(11 * B);
    expect(() => pickSubuidBlock(new Set([10 * B, 11 * B, 12 * B]), range)).toThrow(/no free block of 65536 ids/);
  });

  it('the default range lies apart from the service uids, above every real account, below 2^31-1', () => {
    const config = loadConfig({ env: {}, cwd: '/tmp' });
    expect(config.subuidRange.first).toBeGreaterThan(config.uidRange.last);
    expect(config.subuidRange.last).toBeLessThan(2 ** 31 - 1);
    expect(Math.floor((config.subuidRange.last - config.subuidRange.first + 1) / B)).toBeGreaterThan(2000);
    expect(() => loadConfig({ env: { CELLHOST_SUBUID_RANGE: '2000000000-2000200000' }, cwd: '/tmp' })).toThrow(/overlaps the services' uids/);
    expect(() => loadConfig({ env: { CELLHOST_SUBUID_RANGE: '1000-70000' }, cwd: '/tmp' })).toThrow(/CELLHOST_SUBUID_RANGE/);
    expect(() => loadConfig({ env: { CELLHOST_SUBUID_RANGE: '100000-100010' }, cwd: '/tmp' })).toThrow(/at least one block/);
  });

  describe('in the store', () => {
    let dir: string;
    let store: Store;
    const uids = { first: 1000, last: 1010 };
    const settings = { ...SERVICE_DEFAULTS, runtime: 'node' as const };
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-subuids-'));
      store = openStore(path.join(dir, 'cellhost.db'));
    });
    afterEach(() => {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a service gets its block on first need, keeps it, and a deleted service’s block is retired', () => {
      store.services.insert('a', settings, at(0), uids);
      store.services.insert('b', settings, at(0), uids);
      expect(store.services.get('a')!.subuidBase).toBeNull();
      expect(store.services.assignSubuids('a', range, at(1))).toBe(10 * B);
      expect(store.services.assignSubuids('a', range, at(2))).toBe(10 * B);
      expect(store.services.assignSubuids('b', range, at(3))).toBe(11 * B);
      store.services.remove('a', at(10));
      store.services.insert('a', settings, at(20), uids);
      // a's old block is retired, b holds the next: the new a gets the last one
      expect(store.services.assignSubuids('a', range, at(30))).toBe(12 * B);
      store.services.insert('c', settings, at(40), uids);
      expect(() => store.services.assignSubuids('c', range, at(50))).toThrow(/no free block/);
      expect(store.services.assignSubuids('c', range, at(10 + UID_RETIREMENT_MS + 1))).toBe(10 * B);
    });
  });
});
