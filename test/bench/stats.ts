// Summaries of samples: medians, percentiles by nearest rank and the interquartile range,
// formatted for the table, and the verdict a row gets from its figure, its target and its spread.

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** nearest-rank percentile (p in 0..100) of unsorted samples */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

/** linear-interpolated quantile (q in 0..1), as the quartiles of a small sample are usually taken */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** a figure measured in rounds: its median and the spread of the rounds around it */
export interface Summary {
  n: number;
  median: number;
  /** first and third quartiles: half the rounds lie between them */
  q1: number;
  q3: number;
  /** q3 − q1 */
  iqr: number;
  samples: number[];
}

export function summarize(samples: number[]): Summary {
  const q1 = quantile(samples, 0.25);
  const q3 = quantile(samples, 0.75);
  return { n: samples.length, median: median(samples), q1, q3, iqr: q3 - q1, samples: [...samples] };
}

/** each round's figures combined into one per round (a ratio, a difference): paired by index */
export function paired(a: number[], b: number[], f: (x: number, y: number) => number): number[] {
  const n = Math.min(a.length, b.length);
  return Array.from({ length: n }, (_, i) => f(a[i]!, b[i]!));
}

/**
 * What a row says about its target. A figure whose rounds spread wider than `maxIqr` (same unit
 * as the figure) was measured on a machine too noisy for this row: the table says so instead of
 * a yes or no that the next run could turn around.
 */
export type Verdict =
  | { kind: 'met' }
  | { kind: 'not-met' }
  | { kind: 'noisy'; iqr: number; maxIqr: number; unit: string }
  | { kind: 'n/a'; reason?: string }
  /** a row with no target (a baseline, a CPU cost shown for comparison) */
  | { kind: 'none' };

export function judge(s: Pick<Summary, 'median' | 'iqr'>, isMet: (median: number) => boolean, maxIqr: number, unit: string): Verdict {
  if (!Number.isFinite(s.median)) return { kind: 'n/a' };
  if (s.iqr > maxIqr) return { kind: 'noisy', iqr: s.iqr, maxIqr, unit };
  return isMet(s.median) ? { kind: 'met' } : { kind: 'not-met' };
}

/** several runs of one row: met only when every run met it; a noisy run makes the row noisy */
export function combineVerdicts(vs: Verdict[]): Verdict {
  if (!vs.length) return { kind: 'n/a' };
  if (vs.every((v) => v.kind === 'none')) return { kind: 'none' };
  if (vs.some((v) => v.kind === 'not-met')) return { kind: 'not-met' };
  const noisy = vs.find((v) => v.kind === 'noisy');
  if (noisy) return noisy;
  if (vs.some((v) => v.kind === 'n/a')) return { kind: 'n/a' };
  return { kind: 'met' };
}

export function formatVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'met':
      return 'yes';
    case 'not-met':
      return '**no**';
    case 'noisy':
      return `⚠ too noisy to tell (IQR ${formatNumber(v.iqr)}${v.unit} > ${formatNumber(v.maxIqr)}${v.unit})`;
    case 'n/a':
      return v.reason ? `n/a (${v.reason})` : 'n/a';
    case 'none':
      return '—';
  }
}

function formatNumber(x: number): string {
  return Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function formatMs(ms: number, digits = ms < 10 ? 2 : 1): string {
  return Number.isFinite(ms) ? `${ms.toFixed(digits)} ms` : 'n/a';
}

/** "61.9 ms (IQR 58.0–66.3, n = 10)" */
export function formatSummaryMs(s: Summary, digits?: number): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  const d = digits ?? (Math.abs(s.median) < 10 ? 2 : 1);
  return `${formatMs(s.median, d)} (IQR ${s.q1.toFixed(d)}–${s.q3.toFixed(d)}, n = ${s.n})`;
}

export function formatSummary(s: Summary, format: (x: number) => string): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  return `${format(s.median)} (IQR ${format(s.q1)}–${format(s.q3)}, n = ${s.n})`;
}

export function formatRate(perS: number): string {
  return Number.isFinite(perS) ? `${Math.round(perS).toLocaleString('en-US')} req/s` : 'n/a';
}

export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
