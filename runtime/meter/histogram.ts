// Latency histogram with log-spaced buckets (each 25 % wider than the last, 0.5 ms to ~21 min),
// stored sparse, so percentiles come from counts and minutes merge by adding.

const BASE = 0.5;
const RATIO = 1.25;
export const BUCKETS = 64;

export type Histogram = Record<number, number>;

export function bucketOf(ms: number): number {
  if (ms <= BASE) return 0;
  return Math.min(BUCKETS, Math.ceil(Math.log(ms / BASE) / Math.log(RATIO)));
}

/** upper bound of a bucket in ms (the last one is open-ended) */
export function bucketUpper(i: number): number {
  return i >= BUCKETS ? Infinity : BASE * RATIO ** i;
}

export function observe(h: Histogram, ms: number): void {
  const b = bucketOf(ms);
  h[b] = (h[b] ?? 0) + 1;
}

export function merge(into: Histogram, from: Histogram): Histogram {
  for (const [k, v] of Object.entries(from)) into[Number(k)] = (into[Number(k)] ?? 0) + v;
  return into;
}

export function count(h: Histogram): number {
  return Object.values(h).reduce((a, b) => a + b, 0);
}

/** the q-quantile (0..1), interpolated inside its bucket; null for an empty histogram */
export function quantile(h: Histogram, q: number): number | null {
  const total = count(h);
  if (!total) return null;
  const rank = q * total;
  let seen = 0;
  for (const i of Object.keys(h).map(Number).sort((a, b) => a - b)) {
    const n = h[i]!;
    if (seen + n >= rank) {
      const lo = i === 0 ? 0 : bucketUpper(i - 1);
      const hi = i >= BUCKETS ? lo * RATIO : bucketUpper(i);
      return lo + ((rank - seen) / n) * (hi - lo);
    }
    seen += n;
  }
  return bucketUpper(BUCKETS - 1);
}
