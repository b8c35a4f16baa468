// Settings for what a build may leave: from flags and CELLHOST_* variables, shown by --print-config.
import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig } from '../../../runtime/core/config.ts';

describe('build output limits', () => {
  it('are the plans’ own unless set, and print-config says so', () => {
    const config = loadConfig({ env: {}, cwd: '/tmp' });
    expect(config.buildMaxImageMb).toBeUndefined();
    expect(config.buildMinFreeMb).toBeUndefined();
    const shown = JSON.parse(JSON.stringify(redactConfig(config)));
    expect(shown.buildMaxImageMb).toMatch(/hobby 2048, pro 10240/);
    expect(shown.buildMaxCacheMb).toMatch(/hobby 2048, pro 10240/);
    expect(shown.buildMaxLogMb).toMatch(/hobby 10, pro 50/);
    expect(shown.buildMinFreeMb).toMatch(/^auto/);
  });

  it('come from variables and flags, fractions allowed, flags first', () => {
    const config = loadConfig({
      env: { CELLHOST_BUILD_MAX_IMAGE_MB: '512', CELLHOST_BUILD_MAX_CACHE_MB: '256', CELLHOST_BUILD_MAX_LOG_MB: '0.25', CELLHOST_BUILD_MIN_FREE_MB: '0' },
      flags: { 'build-max-image-mb': '100' },
      cwd: '/tmp',
    });
    expect([config.buildMaxImageMb, config.buildMaxCacheMb, config.buildMaxLogMb, config.buildMinFreeMb]).toEqual([100, 256, 0.25, 0]);
    expect(redactConfig(config).buildMaxLogMb).toBe(0.25);
  });

  it('refuse what is not a size', () => {
    expect(() => loadConfig({ env: { CELLHOST_BUILD_MAX_IMAGE_MB: '0' }, cwd: '/tmp' })).toThrow(/CELLHOST_BUILD_MAX_IMAGE_MB/);
    expect(() => loadConfig({ env: { CELLHOST_BUILD_MIN_FREE_MB: 'lots' }, cwd: '/tmp' })).toThrow(/CELLHOST_BUILD_MIN_FREE_MB/);
  });
});
