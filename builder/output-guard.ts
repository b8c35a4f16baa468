// Watches what a running build writes: its image dir and its dependency cache must stay under the
// plan's limits, and the data disk above its floor of free space (it also holds the database).
// Sizes come from `du` in a child process (runtime/sandbox/untrusted-files.ts diskUsage), so a
// poll costs the main thread a spawn, not a walk of the tree; a big tree measured slowly is
// polled less often, so measuring never takes more than about a tenth of a core.
import fs from 'node:fs/promises';
import { CellhostError, describeError } from '../runtime/core/errors.ts';
import type { Logger } from '../runtime/core/log.ts';
import { diskUsage, formatLimit } from '../runtime/sandbox/untrusted-files.ts';

export interface OutputLimit {
  /** what the user calls it: "image", "dependency cache" */
  label: string;
  dir: string;
  /** measured with `dir`, against the same limit (an image's system layer counts as the image) */
  alsoDirs?: readonly string[];
  maxBytes: number;
}

export interface OutputGuardOptions {
  limits: OutputLimit[];
  /** whose limits they are, for the error ("the hobby plan's") */
  owner: string;
  /** a dir on the data disk, and the free space a build must leave there */
  disk: { dir: string; minFreeBytes: number };
  intervalMs?: number;
  log: Logger;
  measure?(dir: string): Promise<number>;
  freeBytes?(dir: string): Promise<number>;
}

export interface OutputGuard {
  /** aborted, with the ERR_BUILD_TOO_LARGE or ERR_DISK_LOW error as its reason, when a limit is passed */
  signal: AbortSignal;
  /** stops polling; resolves once a poll in progress is done */
  stop(): Promise<void>;
}

export async function freeDiskBytes(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize;
}

/** the floor a build must leave free when none is configured: 1 GB, or 5 % of a smaller disk */
export async function defaultMinFreeBytes(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return Math.min(1024 * 1024 * 1024, Math.floor(s.blocks * s.bsize * 0.05));
}

export function lowDiskError(free: number, minFree: number): CellhostError {
  return new CellhostError('ERR_DISK_LOW', `the data disk has ${formatLimit(free)} free, less than the ${formatLimit(minFree)} a build must leave (CELLHOST_BUILD_MIN_FREE_MB): free space (old images, logs) and deploy again`, {
    details: { freeBytes: free, minFreeBytes: minFree },
  });
}

/** the first limit passed, as the coded error; null when all is within */
export async function checkOutput(opts: Pick<OutputGuardOptions, 'limits' | 'owner' | 'disk' | 'measure' | 'freeBytes'>): Promise<CellhostError | null> {
  const measure = opts.measure ?? diskUsage;
  const sizes = await Promise.all(opts.limits.map(async (l) => (await Promise.all([l.dir, ...(l.alsoDirs ?? [])].map((d) => measure(d)))).reduce((a, b) => a + b, 0)));
  for (const [i, l] of opts.limits.entries()) {
    const bytes = sizes[i]!;
    if (bytes > l.maxBytes) {
      return new CellhostError('ERR_BUILD_TOO_LARGE', `the build's ${l.label} grew past ${opts.owner} limit of ${formatLimit(l.maxBytes)} (${formatLimit(bytes)} at least) and the build was stopped`, {
        details: { limit: l.label, limitBytes: l.maxBytes, bytes },
      });
    }
  }
  const free = await (opts.freeBytes ?? freeDiskBytes)(opts.disk.dir);
  if (free < opts.disk.minFreeBytes) return lowDiskError(free, opts.disk.minFreeBytes);
  return null;
}

export function guardBuildOutput(opts: OutputGuardOptions): OutputGuard {
  const controller = new AbortController();
  const interval = opts.intervalMs ?? 1000;
  let stopped = false;
  let wake: (() => void) | null = null;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        const over = await checkOutput(opts);
        if (over && !stopped) {
          controller.abort(over);
          return;
        }
      } catch (err) {
        // a poll that could not measure is skipped; the check after the build decides
        opts.log.warn('build.measure_failed', { error: describeError(err) });
      }
      const pause = Math.max(interval, 10 * (Date.now() - started));
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, pause).unref();
      });
      wake = null;
    }
  })();
  return {
    signal: controller.signal,
    async stop() {
      stopped = true;
      (wake as (() => void) | null)?.();
      await loop;
    },
  };
}
