// CELLHOST_PREWARM_MB: a number of MB, 0 for none, or unset for a quarter of the host's memory,
// at most what is free when the platform starts.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../runtime/core/config.ts';
import { prewarmBudgetBytes } from '../../../../runtime/instances/pool/prewarm.ts';

const GB = 1024 ** 3;
const MB = 1024 ** 2;

describe('the prewarm budget', () => {
  it('unset: a quarter of the memory, at most what is free', () => {
    expect(prewarmBudgetBytes(null, 24 * GB, 20 * GB)).toBe(6 * GB);
    expect(prewarmBudgetBytes(null, 24 * GB, 2 * GB)).toBe(2 * GB);
  });
  it('set: that many MB, 0 for none', () => {
    expect(prewarmBudgetBytes(300, 24 * GB, 1 * GB)).toBe(300 * MB);
    expect(prewarmBudgetBytes(0, 24 * GB, 20 * GB)).toBe(0);
  });
  it('the setting reads auto, a number, and refuses the rest', () => {
    expect(loadConfig({ env: {} }).prewarmMb).toBeNull();
    expect(loadConfig({ env: { CELLHOST_PREWARM_MB: '300' } }).prewarmMb).toBe(300);
    expect(loadConfig({ env: { CELLHOST_PREWARM_MB: '0' } }).prewarmMb).toBe(0);
    expect(() => loadConfig({ env: { CELLHOST_PREWARM_MB: 'lots' } })).toThrow(/CELLHOST_PREWARM_MB.*"auto" or a whole number of MB/);
  });
});
