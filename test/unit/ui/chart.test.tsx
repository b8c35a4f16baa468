import { describe, expect, it } from 'vitest';
import { LineChart, niceCeil } from '../../../ui/chart.tsx';
import { formatCost, formatCpuCap, formatDuration } from '../../../ui/format.ts';

describe('LineChart', () => {
  const from = Date.UTC(2024, 0, 1, 12, 0);
  const to = from + 3600_000;
  const render = (node: unknown) => String(node);

  it('draws one polyline per series and a table of the non-zero buckets', () => {
    const html = render(
      <LineChart
        title="Requests"
        unit="req"
        from={from}
        to={to}
        series={[
          { name: 'all', points: [0, 1, 2, 3].map((i) => ({ t: from + i * 60_000, v: i === 2 ? 5 : 0 })) },
          { name: '5xx', points: [0, 1, 2, 3].map((i) => ({ t: from + i * 60_000, v: 0 })) },
        ]}
      />,
    );
    expect(html.match(/<polyline/g)).toHaveLength(2);
    expect(html).toContain('all (total 5)');
    expect(html).toContain('1 non-zero bucket');
    expect(html).toContain('2024-01-01 12:02:00');
    expect(html).not.toContain('12:03:00</td>');
    expect(html).not.toContain('NaN');
  });

  it('says so when there is no data, without inventing any', () => {
    const html = render(<LineChart title="Latency" unit="ms" from={from} to={to} series={[{ name: 'p50', points: [] }]} />);
    expect(html).toContain('no data in this window');
    expect(html).not.toContain('<polyline');
    expect(html).not.toContain('NaN');
  });

  it('escapes series names', () => {
    expect(render(<LineChart title="<x>" unit="u" from={from} to={to} series={[{ name: '<b>', points: [{ t: from, v: 1 }] }]} />)).not.toContain('<b>');
  });

  it('rounds the axis up to 1/2/5 × 10^n', () => {
    expect([0, 0.3, 1, 1.2, 3, 7, 10, 11, 480, 5001].map(niceCeil)).toEqual([1, 0.5, 1, 2, 5, 10, 10, 20, 500, 10000]);
  });
});

describe('format', () => {
  it('CPU cap follows memory / 1769 MB', () => {
    expect(formatCpuCap(1769)).toBe('100.0 %');
    expect(formatCpuCap(256)).toBe('14.5 %');
    expect(formatCpuCap(3538)).toBe('200.0 %');
  });
  it('durations and costs', () => {
    expect(formatDuration(840)).toBe('840 ms');
    expect(formatDuration(3200)).toBe('3.2 s');
    expect(formatDuration(245_000)).toBe('4 min 05 s');
    expect(formatCost(0)).toBe('$0');
    expect(formatCost(0.00000183)).toBe('$0.0000018');
    expect(formatCost(1.5)).toBe('$1.5000');
  });
});
