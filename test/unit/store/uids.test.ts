// Service uids: handed out in one place, never shared, never handed on within the grace period.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import { DEFAULT_UID_RANGE } from '../../../runtime/sandbox/uids.ts';
import { openStore, type Store } from '../../../runtime/store/index.ts';
import { pickUid, UID_RETIREMENT_MS } from '../../../runtime/store/uids.ts';

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
