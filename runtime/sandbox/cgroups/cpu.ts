// CPU caps as the cgroup files take them, and cpuset lists. How much CPU a memory size buys is
// the product's rule, in core/cpu-for-memory.ts.

/** CFS period for both drivers; with 100 ms, caps of 10.8 %, 14.1 % and 50 % measured within 0.1 points (cpuacct.usage) */
export const CFS_PERIOD_US = 100_000;
/** the kernel refuses a CFS quota below 1 ms */
const MIN_QUOTA_US = 1_000;

/** fraction of a core → quota in µs per CFS_PERIOD_US; null (uncapped) → null */
export function toQuotaMicros(fraction: number | null): number | null {
  if (fraction === null || !Number.isFinite(fraction)) return null;
  return Math.max(MIN_QUOTA_US, Math.round(fraction * CFS_PERIOD_US));
}

/** "0-3,6,8-9" → [0,1,2,3,6,8,9] */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [lo, hi] = part.split('-').map((n) => Number.parseInt(n, 10));
    if (!Number.isInteger(lo)) continue;
    const end = Number.isInteger(hi) ? hi : lo;
    for (let c = lo; c <= end; c++) cpus.push(c);
  }
  return cpus;
}

/** [0,1,2,5] → "0-2,5" */
export function formatCpuList(cpus: number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** cpus a group is pinned to, counted as taken until it is released (once; later calls do nothing) */
export interface CpuPlacement {
  cpus: string;
  release(): void;
}

/**
 * Pins groups to the cpus holding the fewest groups, the lowest first on a tie. The first cpus
 * for every group put each one-core instance of a host on cpu 0, with the other cores left to
 * the platform: the apps' share of the host was one core whatever their quotas added up to.
 */
export function createCpuPlacer(): { take(available: string, count: number): CpuPlacement | null } {
  const groupsOn = new Map<number, number>();
  return {
    take(available, count) {
      const cpus = parseCpuList(available);
      if (cpus.length === 0) return null;
      const picked = cpus
        .sort((a, b) => (groupsOn.get(a) ?? 0) - (groupsOn.get(b) ?? 0) || a - b)
        .slice(0, Math.max(1, Math.min(count, cpus.length)));
      for (const c of picked) groupsOn.set(c, (groupsOn.get(c) ?? 0) + 1);
      let released = false;
      return {
        cpus: formatCpuList(picked),
        release() {
          if (released) return;
          released = true;
          for (const c of picked) {
            const left = (groupsOn.get(c) ?? 1) - 1;
            if (left > 0) groupsOn.set(c, left);
            else groupsOn.delete(c);
          }
        },
      };
    },
  };
}
