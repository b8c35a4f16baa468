// A line chart as inline SVG, drawn on the server: no library, no script. Each chart carries
// its numbers in a collapsed table too, for reading exact values (and for screen readers).
import type { Point } from './deps.ts';
import { formatTime } from './format.ts';

export interface ChartSeries {
  name: string;
  points: Point[];
}

export interface ChartProps {
  title: string;
  /** unit shown on the axis and in the table ("req", "ms", "GB-s") */
  unit: string;
  series: ChartSeries[];
  /** the window's edges, epoch ms */
  from: number;
  to: number;
  /** how a value reads (default: up to 2 decimals) */
  format?(v: number): string;
  /** what the legend shows per series: the sum over the window or the latest value */
  summary?: 'sum' | 'max' | 'last';
}

const W = 640;
const H = 200;
const PAD = { left: 52, right: 12, top: 12, bottom: 26 };

export function LineChart(props: ChartProps) {
  const fmt = props.format ?? ((v: number) => formatValue(v));
  const all = props.series.flatMap((s) => s.points);
  const hasData = all.length > 0;
  const yMax = niceCeil(Math.max(0, ...all.map((p) => p.v)));
  // buckets are labelled by their start, so the first may begin a little before the window
  const from = Math.min(props.from, ...all.map((p) => p.t));
  const to = Math.max(props.to, ...all.map((p) => p.t));
  const span = Math.max(1, to - from);
  const x = (t: number) => PAD.left + ((t - from) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const ticks = [0, yMax / 2, yMax];
  const xTicks = [from, from + span / 2, to];
  const longWindow = span > 36 * 3600_000;
  const timeLabel = (t: number) => (longWindow ? formatTime(t).slice(5, 16) : formatTime(t).slice(11, 16));

  return (
    <figure class="chart">
      <figcaption>
        <span class="chart-title">{props.title}</span>
        <span class="legend">
          {props.series.map((s, i) => (
            <span class={`key s${(i % 4) + 1}`}>
              <i></i>
              {s.name} {summarize(s.points, props.summary ?? 'sum', fmt)}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title} chart`}>
        {ticks.map((v) => (
          <g class="grid">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
            <text x={PAD.left - 6} y={y(v) + 4} text-anchor="end">
              {fmt(v)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text class="axis" x={x(t)} y={H - 8} text-anchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}>
            {timeLabel(t)}
          </text>
        ))}
        {props.series.map((s, i) => {
          const pts = [...s.points].sort((a, b) => a.t - b.t);
          const cls = `s${(i % 4) + 1}`;
          return (
            <g class={`series ${cls}`}>
              {pts.length > 1 ? <polyline points={pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')} /> : null}
              {pts.length <= 12
                ? pts.map((p) => (
                    <circle cx={x(p.t).toFixed(1)} cy={y(p.v).toFixed(1)} r="3">
                      <title>{`${formatTime(p.t)} ${s.name}: ${fmt(p.v)} ${props.unit}`}</title>
                    </circle>
                  ))
                : null}
            </g>
          );
        })}
        {hasData ? null : (
          <text class="nodata" x={W / 2} y={H / 2} text-anchor="middle">
            no data in this window
          </text>
        )}
      </svg>
      {hasData ? <ChartTable {...props} fmt={fmt} /> : null}
    </figure>
  );
}

function ChartTable(props: ChartProps & { fmt(v: number): string }) {
  const byName = props.series.map((s) => new Map(s.points.map((p) => [p.t, p.v])));
  // only the buckets where something happened: a week of empty minutes is not worth a table
  const times = [...new Set(props.series.flatMap((s) => s.points.map((p) => p.t)))]
    .filter((t) => byName.some((m) => (m.get(t) ?? 0) !== 0))
    .sort((a, b) => a - b);
  if (!times.length) return <p class="chart-data muted small">all zero in this window</p>;
  return (
    <details class="chart-data">
      <summary>
        data ({props.unit}, {times.length} non-zero {times.length === 1 ? 'bucket' : 'buckets'})
      </summary>
      <table>
        <thead>
          <tr>
            <th>time (UTC)</th>
            {props.series.map((s) => (
              <th>{s.name}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {times.map((t) => (
            <tr>
              <td>{formatTime(t)}</td>
              {byName.map((m) => {
                const v = m.get(t);
                return <td class="num">{v === undefined ? '' : props.fmt(v)}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

function summarize(points: Point[], how: 'sum' | 'max' | 'last', fmt: (v: number) => string): string {
  if (!points.length) return '';
  if (how === 'sum') return `(total ${fmt(points.reduce((n, p) => n + p.v, 0))})`;
  if (how === 'max') return `(max ${fmt(Math.max(...points.map((p) => p.v)))})`;
  const last = points.reduce((a, b) => (b.t > a.t ? b : a));
  return `(last ${fmt(last.v)})`;
}

/** the smallest 1/2/5 × 10^n at or above v (1 for an empty or all-zero chart) */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const exp = Math.floor(Math.log10(v));
  const base = 10 ** exp;
  for (const m of [1, 2, 5, 10]) if (m * base >= v * (1 - 1e-9)) return m * base;
  return 10 * base;
}

function formatValue(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k`;
  if (Math.abs(v) >= 10) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}
