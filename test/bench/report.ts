// The results as one markdown table, each row with its baseline from the same run, the issue's
// target and whether this run met it.
import type { BurstResult } from './burst.ts';
import type { ColdStartResult } from './cold-start.ts';
import type { LayerColdStartResult } from './layer-cold-start.ts';
import type { FixedRateResult } from './fixed-rate.ts';
import { IDLE, type IdleResult } from './idle-footprint.ts';
import { FIXED_RATE, WRK_ROUNDS, type Measured, type ProxyResults } from './proxy.ts';
import { formatMs, formatRate, formatRatio } from './stats.ts';
import type { ThawResult } from './thaw.ts';
import type { WrkResult } from './wrk.ts';

/** a section either measured or the reason it was not */
export type Section<T> = Measured<T>;

export interface BenchResults {
  proxy: Section<ProxyResults>;
  cold: { app: string; result: Section<ColdStartResult> }[];
  layer: Section<LayerColdStartResult>;
  thaw: Section<ThawResult>;
  burst: Section<BurstResult>;
  idle: Section<IdleResult>;
}

export const TARGETS = {
  proxyVsNginx: 0.5,
  addedP99Ms: 1,
  coldOverheadMs: 15,
  layerOverheadMs: 5,
  thawMs: 5,
  burstMultiple: 3,
  idleRssMb: 150,
  idleCpuPercent: 1,
};

type Row = [what: string, baseline: string, nginx: string, cellhost: string, comparison: string, target: string, met: string];

const yesNo = (ok: boolean) => (ok ? 'yes' : '**no**');
const signedMs = (ms: number) => (ms < 0 ? `−${formatMs(-ms)}` : `+${formatMs(ms)}`);
const skipped = (reason: string) => `skipped: ${reason}`;
const lat = (p50: number, p99: number) => `${formatMs(p50)} / ${formatMs(p99)}`;

function wrkCell(m: Measured<WrkResult>, f: (w: WrkResult) => string): string {
  if (!m.ok) return skipped(m.reason);
  return f(m.value) + (m.value.errors ? ` (${m.value.errors} errors)` : '');
}

function fixedCell(r: FixedRateResult): string {
  const bad = r.errors + r.skipped;
  return lat(r.p50Ms, r.p99Ms) + (bad ? ` (${r.errors} errors, ${r.skipped} not sent)` : '');
}

function proxyRows(m: Section<ProxyResults>): Row[] {
  if (!m.ok) return [['proxy (wrk, fixed rate)', '', '', `failed: ${m.reason}`, '', `≥ ${TARGETS.proxyVsNginx}× nginx; added p99 ≤ ${TARGETS.addedP99Ms} ms`, 'n/a']];
  const { wrk, fixed, fixedWarmUp, nginxWorkers } = m.value;
  const warmUpNote = (r: FixedRateResult) => ` (its warm-up: ${lat(r.p50Ms, r.p99Ms)})`;
  const rps = (w: Measured<WrkResult>) => (w.ok ? w.value.requestsPerS : NaN);
  const vsDirect = rps(wrk.cellhost) / rps(wrk.direct);
  const vsNginx = rps(wrk.cellhost) / rps(wrk.nginx);
  const nginxLabel = nginxWorkers ? ` (${nginxWorkers} worker)` : '';
  const addedP99 = fixed.cellhost.p99Ms - fixed.direct.p99Ms;
  return [
    [
      `proxy throughput, \`wrk -t1 -c32 -d5s\`, Node hello (median of ${WRK_ROUNDS} runs each, taking turns)`,
      wrkCell(wrk.direct, (w) => `direct ${formatRate(w.requestsPerS)}`),
      wrkCell(wrk.nginx, (w) => formatRate(w.requestsPerS) + nginxLabel),
      wrkCell(wrk.cellhost, (w) => formatRate(w.requestsPerS)),
      `${formatRatio(vsDirect)} direct, ${formatRatio(vsNginx)} nginx`,
      `≥ ${TARGETS.proxyVsNginx}× nginx`,
      Number.isFinite(vsNginx) ? yesNo(vsNginx >= TARGETS.proxyVsNginx) : 'n/a',
    ],
    [
      'proxy latency p50 / p99 under that load (wrk `--latency`, the same run)',
      wrkCell(wrk.direct, (w) => lat(w.p50Ms, w.p99Ms)),
      wrkCell(wrk.nginx, (w) => lat(w.p50Ms, w.p99Ms)),
      wrkCell(wrk.cellhost, (w) => lat(w.p50Ms, w.p99Ms)),
      wrk.cellhost.ok && wrk.direct.ok ? `${signedMs(wrk.cellhost.value.p99Ms - wrk.direct.value.p99Ms)} p99` : 'n/a',
      '—',
      '—',
    ],
    [
      `latency p50 / p99 at a fixed ${FIXED_RATE.ratePerS} req/s, ${FIXED_RATE.durationMs / 1000} s per target in ${FIXED_RATE.sliceMs / 1000} s turns after ${FIXED_RATE.warmUpMs / 1000} s of warm-up each, keep-alive`,
      `direct ${fixedCell(fixed.direct)}${warmUpNote(fixedWarmUp.direct)}`,
      fixed.nginx.ok ? fixedCell(fixed.nginx.value) : skipped(fixed.nginx.reason),
      fixedCell(fixed.cellhost) + warmUpNote(fixedWarmUp.cellhost),
      `${signedMs(addedP99)} p99 over direct`,
      `added p99 ≤ ${TARGETS.addedP99Ms} ms`,
      yesNo(addedP99 <= TARGETS.addedP99Ms && fixed.cellhost.errors === 0),
    ],
  ];
}

function coldRows(cold: BenchResults['cold']): Row[] {
  return cold.map(({ app, result }) => {
    const what = `cold start ${app}, spawn/request → first 200`;
    if (!result.ok) return [what, '', '—', skipped(result.reason), '', `overhead ≤ ${TARGETS.coldOverheadMs} ms`, 'n/a'];
    const r = result.value;
    const over = r.cellhostMs - r.bareMs;
    return [
      `${what} (median of ${r.runs})`,
      `bare spawn ${formatMs(r.bareMs)}`,
      '—',
      `${formatMs(r.cellhostMs)} (its cold_start event: ${formatMs(r.instanceStartMs)}; platform CPU per start ${formatMs(r.platformCpuMs, 0)})`,
      `${signedMs(over)} (${formatRatio(r.cellhostMs / r.bareMs)})`,
      `overhead ≤ ${TARGETS.coldOverheadMs} ms`,
      yesNo(over <= TARGETS.coldOverheadMs),
    ];
  });
}

function layerRow(m: Section<LayerColdStartResult>): Row {
  const what = 'cold start python with a system layer (a package installed by dpkg in its build) against the same app without one, taking turns';
  const target = `layer adds ≤ ${TARGETS.layerOverheadMs} ms`;
  if (!m.ok) return [what, '', '—', m.reason === 'not run' ? m.reason : `failed: ${m.reason}`, '', target, 'n/a'];
  const r = m.value;
  const added = r.withMs - r.withoutMs;
  return [
    `${what} (median of ${r.runs} each)`,
    `without a layer ${formatMs(r.withoutMs)} (its cold_start event: ${formatMs(r.withoutEventMs)})`,
    '—',
    `with a layer ${formatMs(r.withMs)} (its cold_start event: ${formatMs(r.withEventMs)}; layer: ${r.packages})`,
    `${signedMs(added)} (cold_start events ${signedMs(r.withEventMs - r.withoutEventMs)})`,
    target,
    yesNo(added <= TARGETS.layerOverheadMs),
  ];
}

function thawRow(m: Section<ThawResult>): Row {
  const what = 'request to a frozen instance (thaw) → response';
  if (!m.ok) return [what, '', '—', `failed: ${m.reason}`, '', `≤ ${TARGETS.thawMs} ms median`, 'n/a'];
  const r = m.value;
  return [
    `${what} (median of ${r.runs})`,
    `warm request ${formatMs(r.warmMs)}; warm after ${r.idleGapMs} ms idle ${formatMs(r.warmAfterIdleMs)}`,
    '—',
    formatMs(r.thawMs) + (r.confirmedByCgroup ? '' : ' (freeze not confirmed in freezer.state)'),
    `${signedMs(r.thawMs - r.warmMs)} over warm, ${signedMs(r.thawMs - r.warmAfterIdleMs)} over warm after idle`,
    `≤ ${TARGETS.thawMs} ms median`,
    yesNo(r.thawMs <= TARGETS.thawMs),
  ];
}

function burstRow(m: Section<BurstResult>, oneColdMs: number): Row {
  const what = 'burst: 200 concurrent requests, each on a new connection, at a cold service (concurrency 10, max 20 instances)';
  if (!m.ok) return [what, '', '—', `failed: ${m.reason}`, '', `0 errors, all within ${TARGETS.burstMultiple}× one cold start`, 'n/a'];
  const r = m.value;
  const multiple = r.maxMs / oneColdMs;
  const kinds = Object.entries(r.errorKinds).map(([k, v]) => `${v}× ${k}`).join(', ');
  return [
    what,
    `one cold start (node, through cellhost) ${formatMs(oneColdMs)}; the same burst at a bare spawn of the app, no platform (spawn → last answer, median of 3) ${formatMs(r.bareMs)}`,
    '—',
    `${r.errors}/${r.requests} errors${kinds ? ` (${kinds})` : ''}, p50 ${formatMs(r.p50Ms)}, max ${formatMs(r.maxMs)}; ` +
      `${r.instances} instances, each spawn → ready p50 ${formatMs(r.instanceStartP50Ms)}, max ${formatMs(r.instanceStartMaxMs)}; ` +
      `CPU used: platform ${formatMs(r.platformCpuMs, 0)}, apps ${r.appsCpuMs === null ? 'n/a' : formatMs(r.appsCpuMs, 0)}; sent by ${r.generator}; ` +
      `the router served ${r.warmUp.requests} one-shot requests first (its CPU per ${r.requests}: ${formatMs(r.warmUp.firstRoundCpuMs, 0)} in the first round, ${formatMs(r.warmUp.lastRoundsCpuMs, 0)} in the last five)`,
    `max = ${formatRatio(multiple)} one cold start, ${formatRatio(r.maxMs / r.bareMs)} the bare burst`,
    `0 errors, max ≤ ${TARGETS.burstMultiple}×`,
    Number.isFinite(multiple) ? yesNo(r.errors === 0 && multiple <= TARGETS.burstMultiple) : 'n/a',
  ];
}

function idleRow(m: Section<IdleResult>): Row {
  const what = 'idle platform, 1000 services registered, none warm';
  const target = `RSS ≤ ${TARGETS.idleRssMb} MB, CPU ≤ ${TARGETS.idleCpuPercent} % of a core`;
  if (!m.ok) return [what, '', '—', `failed: ${m.reason}`, '', target, 'n/a'];
  const r = m.value;
  return [
    `idle platform, ${r.services} services registered, none warm (${(r.windowMs / 1000).toFixed(0)} s window from ${IDLE.steadyAfterMs / 1000} s after registering)`,
    `empty platform: RSS ${r.rssEmptyMb.toFixed(0)} MB, CPU ${r.cpuEmptyPercentOfCore.toFixed(2)} %; bare \`node\` ${r.rssNodeMb.toFixed(0)} MB`,
    '—',
    `RSS ${r.rssMb.toFixed(0)} MB, CPU ${r.cpuPercentOfCore.toFixed(2)} % of a core ` +
      `(${r.cpuAfterRegisterPercentOfCore.toFixed(2)} % in the window ${IDLE.settleMs / 1000} s after registering)`,
    `+${(r.rssMb - r.rssEmptyMb).toFixed(0)} MB for the services; registering took ${(r.registerMs / 1000).toFixed(1)} s ` +
      `(first 100: ${(r.firstHundredMs / 1000).toFixed(1)} s, last 100: ${(r.lastHundredMs / 1000).toFixed(1)} s)`,
    target,
    yesNo(r.rssMb <= TARGETS.idleRssMb && r.cpuPercentOfCore <= TARGETS.idleCpuPercent),
  ];
}

export function renderTable(results: BenchResults): string {
  const coldNode = results.cold.find((c) => c.app === 'node')?.result;
  const oneCold = coldNode?.ok ? coldNode.value.cellhostMs : NaN;
  const rows: Row[] = [
    ...proxyRows(results.proxy),
    ...coldRows(results.cold),
    layerRow(results.layer),
    thawRow(results.thaw),
    burstRow(results.burst, oneCold),
    idleRow(results.idle),
  ];
  const header: Row = ['what', 'baseline', 'nginx', 'cellhost', 'cellhost vs baseline', 'target', 'met'];
  const line = (r: Row) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}
