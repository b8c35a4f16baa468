// The bench's arithmetic: quartiles, verdicts with a spread bound, and the table over several
// runs, where a target counts as met only when every run met it.
import { describe, expect, it } from 'vitest';
import { renderRepeatTable, type Row } from '../../bench/report.ts';
import { combineVerdicts, judge, paired, quantile, summarize } from '../../bench/stats.ts';

describe('bench stats', () => {
  it('quartiles interpolate between samples', () => {
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25);
    const s = summarize([5, 1, 3, 2, 4]);
    expect(s).toMatchObject({ n: 5, median: 3, q1: 2, q3: 4, iqr: 2 });
    expect(Number.isNaN(summarize([]).median)).toBe(true);
  });

  it('pairs rounds by index', () => {
    expect(paired([10, 20, 30], [1, 2], (a, b) => a - b)).toEqual([9, 18]);
  });

  it('gives no verdict when the rounds spread past the bound', () => {
    expect(judge({ median: 4, iqr: 1 }, (x) => x <= 5, 2.5, ' ms')).toEqual({ kind: 'met' });
    expect(judge({ median: 6, iqr: 1 }, (x) => x <= 5, 2.5, ' ms')).toEqual({ kind: 'not-met' });
    expect(judge({ median: 4, iqr: 3 }, (x) => x <= 5, 2.5, ' ms')).toMatchObject({ kind: 'noisy', iqr: 3 });
    expect(judge({ median: NaN, iqr: 0 }, () => true, 1, '')).toEqual({ kind: 'n/a' });
  });

  it('over several runs, met only when every run met it', () => {
    const met = { kind: 'met' } as const;
    const no = { kind: 'not-met' } as const;
    const noisy = { kind: 'noisy', iqr: 3, maxIqr: 1, unit: ' ms' } as const;
    expect(combineVerdicts([met, met, met])).toEqual(met);
    expect(combineVerdicts([met, no, met])).toEqual(no);
    expect(combineVerdicts([met, noisy, met]).kind).toBe('noisy');
    expect(combineVerdicts([noisy, no]).kind).toBe('not-met');
    expect(combineVerdicts([{ kind: 'none' }, { kind: 'none' }])).toEqual({ kind: 'none' });
  });

  it('the table over runs lines rows up by key', () => {
    const row = (key: string, figure: string, kind: 'met' | 'not-met'): Row => ({ key, what: `${key} (details)`, baseline: '', nginx: '', cellhost: '', comparison: '', target: 't', verdict: { kind }, figure });
    const table = renderRepeatTable([
      [row('a', '1 ms', 'met'), row('b', '2 ms', 'met')],
      [row('a', '1.1 ms', 'met'), row('b', '9 ms', 'not-met')],
      [row('a', '0.9 ms', 'met')],
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toBe('| what | run 1 | run 2 | run 3 | target | met in all 3 |');
    expect(lines[2]).toBe('| a | 1 ms (yes) | 1.1 ms (yes) | 0.9 ms (yes) | t | yes |');
    expect(lines[3]).toBe('| b | 2 ms (yes) | 9 ms (**no**) | not run | t | **no** |');
  });
});
