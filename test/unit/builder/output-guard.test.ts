// The guard that stops a build whose image or cache grows past its plan's limit, or that would
// leave the data disk below its floor.
import { describe, expect, it } from 'vitest';
import { checkOutput, guardBuildOutput } from '../../../builder/output-guard.ts';
import type { CellhostError } from '../../../runtime/core/errors.ts';
import { silentLogger } from '../../../runtime/core/log.ts';

const MB = 1024 * 1024;
const limits = [
  { label: 'image', dir: '/img', maxBytes: 10 * MB },
  { label: 'dependency cache', dir: '/cache', maxBytes: 20 * MB },
];
const disk = { dir: '/data', minFreeBytes: 100 * MB };

describe('checkOutput', () => {
  it('is null while everything is within', async () => {
    const sizes: Record<string, number> = { '/img': 10 * MB, '/cache': MB };
    expect(await checkOutput({ limits, owner: "the hobby plan's", disk, measure: async (d) => sizes[d]!, freeBytes: async () => 200 * MB })).toBeNull();
  });

  it('names the limit that was passed, and by how much', async () => {
    const sizes: Record<string, number> = { '/img': MB, '/cache': 25 * MB };
    const err = await checkOutput({ limits, owner: "the hobby plan's", disk, measure: async (d) => sizes[d]!, freeBytes: async () => 200 * MB });
    expect(err?.code).toBe('ERR_BUILD_TOO_LARGE');
    expect(err?.message).toBe("the build's dependency cache grew past the hobby plan's limit of 20 MB (25 MB at least) and the build was stopped");
    expect(err?.details).toEqual({ limit: 'dependency cache', limitBytes: 20 * MB, bytes: 25 * MB });
  });

  it('stops a build that would leave the disk below its floor', async () => {
    const err = await checkOutput({ limits, owner: "the hobby plan's", disk, measure: async () => 0, freeBytes: async () => 50 * MB });
    expect(err?.code).toBe('ERR_DISK_LOW');
    expect(err?.message).toMatch(/50 MB free, less than the 100 MB/);
  });
});

describe('guardBuildOutput', () => {
  it('aborts with the coded error once a poll sees the image past its limit', async () => {
    let image = 0;
    const guard = guardBuildOutput({ limits, owner: "the pro plan's", disk, intervalMs: 5, log: silentLogger, measure: async (d) => (d === '/img' ? image : 0), freeBytes: async () => 200 * MB });
    await new Promise((r) => setTimeout(r, 30));
    expect(guard.signal.aborted).toBe(false);
    image = 11 * MB;
    await new Promise<void>((resolve) => guard.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect((guard.signal.reason as CellhostError).code).toBe('ERR_BUILD_TOO_LARGE');
    await guard.stop();
  });

  it('keeps polling past a measurement that failed, and stops when told', async () => {
    let calls = 0;
    const guard = guardBuildOutput({
      limits,
      owner: "the pro plan's",
      disk,
      intervalMs: 5,
      log: silentLogger,
      measure: async () => {
        calls++;
        throw new Error('du failed');
      },
      freeBytes: async () => 200 * MB,
    });
    while (calls < 6) await new Promise((r) => setTimeout(r, 5));
    await guard.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(after);
    expect(guard.signal.aborted).toBe(false);
  });
});
