// The results as one markdown table, each row with its baseline from the same run, the issue's
// target and whether this run met it: the figure is the median of its rounds, and when the
// rounds spread wider than the row's bound the table says the machine was too noisy to tell
// instead of yes or no. CPU-cost rows have no target: they show what each hot path costs, which
// a busy neighbour hardly changes, beside the same cost of the baseline.
import type { BurstResult } from './burst.ts';
import type { ColdStartResult } from './cold-start.ts';
import type { LayerColdStartResult } from './layer-cold-start.ts';
import type { FixedRateResult } from './fixed-rate.ts';
import { IDLE, type IdleResult } from './idle-footprint.ts';
import { FIXED_RATE, WRK_ROUND_S, WRK_ROUNDS, type Measured, type ProxyResults, type WrkRounds } from './proxy.ts';
import { combineVerdicts, formatMs, formatRate, formatRatio, formatSummary, formatSummaryMs, formatVerdict, judge, type Summary, type Verdict } from './stats.ts';
import type { ThawResult } from './thaw.ts';

/** a section either measured or the reason it was not */
export type Section<T> = Measured<T>;

export interface BenchResults {
  proxy: Section<ProxyResults>;
  cold: { app: string; result: Section<ColdStartResult> }[];
  layer: Section<LayerColdStartResult>;
  thaw: Section<ThawResult>;
  burst: Section<BurstResult>;
  idle: Section<IdleResult>;
  /** rows of later sections (pre-started instances, edge services), made by their own modules */
  extra?: Row[];
}

/**
 * The targets, and for each the widest interquartile range of its rounds (same unit) at which a
 * verdict is still given: about half the distance a figure could move and still be on the same
 * side of its target in this machine's usual runs.
 */
export const TARGETS = {
  proxyVsNginx: 0.5,
  proxyVsNginxMaxIqr: 0.1,
  addedP99Ms: 1,
  addedP99MaxIqrMs: 1,
  coldOverheadMs: 15,
  coldOverheadMaxIqrMs: 10,
  layerOverheadMs: 5,
  thawMs: 5,
  thawMaxIqrMs: 2.5,
  burstMultiple: 3,
  burstMultipleMaxIqr: 1,
  idleRssMb: 150,
  idleCpuPercent: 1,
};

export interface Row {
  /** stable across runs: `--repeat` lines the runs' rows up by it */
  key: string;
  what: string;
  baseline: string;
  nginx: string;
  cellhost: string;
  comparison: string;
  target: string;
  verdict: Verdict;
  /** the row's figure in a few words, for the table over several runs */
  figure: string;
}

const signedMs = (ms: number) => (ms < 0 ? `−${formatMs(-ms)}` : `+${formatMs(ms)}`);
const signed = (x: number) => (x < 0 ? `−${(-x).toFixed(2)}` : `+${x.toFixed(2)}`);
const signedSummaryMs = (s: Summary) => `${signedMs(s.median)} (IQR ${signed(s.q1)} to ${signed(s.q3)})`;
const skipped = (reason: string) => `skipped: ${reason}`;
const lat = (p50: number, p99: number) => `${formatMs(p50)} / ${formatMs(p99)}`;
const us = (x: number) => `${x.toFixed(0)} µs`;
const ratio = (x: number) => formatRatio(x);

export function failedRow(key: string, what: string, reason: string, target: string): Row {
  const text = reason === 'not run' ? reason : `failed: ${reason}`;
  return { key, what, baseline: '', nginx: '—', cellhost: text, comparison: '', target, verdict: { kind: 'n/a' }, figure: text };
}

function wrkCell(m: Measured<WrkRounds>, f: (w: WrkRounds) => string): string {
  if (!m.ok) return skipped(m.reason);
  const errors = m.value.runs.reduce((a, r) => a + r.errors, 0);
  return f(m.value) + (errors ? ` (${errors} errors)` : '');
}

function fixedCell(r: FixedRateResult): string {
  const bad = r.errors + r.skipped;
  return lat(r.p50Ms, r.p99Ms) + (bad ? ` (${r.errors} errors, ${r.skipped} not sent)` : '');
}

function proxyRows(m: Section<ProxyResults>): Row[] {
  const target = `≥ ${TARGETS.proxyVsNginx}× nginx; added p99 ≤ ${TARGETS.addedP99Ms} ms`;
  if (!m.ok) return [failedRow('proxy', 'proxy (wrk, fixed rate)', m.reason, target)];
  const { wrk, fixed, fixedWarmUp, fixedGenerator, nginxWorkers, ratios, addedP99, addedP99Parts: parts } = m.value;
  const part = (p: Measured<Summary>) => (p.ok ? signedSummaryMs(p.value) : skipped(p.reason));
  const warmUpNote = (r: FixedRateResult) => ` (its warm-up: ${lat(r.p50Ms, r.p99Ms)})`;
  const nginxLabel = nginxWorkers ? ` (${nginxWorkers} worker)` : '';
  const rate = (w: WrkRounds) => formatSummary(w.requestsPerS, formatRate);
  const errors = [wrk.cellhost].some((w) => w.ok && w.value.runs.some((r) => r.errors));
  const throughput: Verdict = wrk.nginx.ok && wrk.cellhost.ok && !errors ? judge(ratios.vsNginx, (x) => x >= TARGETS.proxyVsNginx, TARGETS.proxyVsNginxMaxIqr, '×') : { kind: 'n/a' };
  const cpu = (w: Measured<WrkRounds>) => (w.ok ? formatSummary(w.value.cpuUsPerRequest, us) : skipped(w.reason));
  const cpuRatio = wrk.cellhost.ok && wrk.nginx.ok ? wrk.cellhost.value.cpuUsPerRequest.median / wrk.nginx.value.cpuUsPerRequest.median : NaN;
  return [
    {
      key: 'proxy-throughput',
      what: `proxy throughput, \`wrk -t1 -c32 -d${WRK_ROUND_S}s\`, Node hello (${WRK_ROUNDS} rounds per target, taking turns; ratios per round)`,
      baseline: wrkCell(wrk.direct, (w) => `direct ${rate(w)}`),
      nginx: wrkCell(wrk.nginx, (w) => rate(w) + nginxLabel),
      cellhost: wrkCell(wrk.cellhost, rate),
      comparison: `${formatSummary(ratios.vsDirect, ratio)} direct, ${formatSummary(ratios.vsNginx, ratio)} nginx`,
      target: `≥ ${TARGETS.proxyVsNginx}× nginx`,
      verdict: throughput,
      figure: `${ratio(ratios.vsNginx.median)} nginx`,
    },
    {
      key: 'proxy-latency',
      what: 'proxy latency p50 / p99 under that load (wrk `--latency`, the median round)',
      baseline: wrkCell(wrk.direct, (w) => lat(w.medianRun.p50Ms, w.medianRun.p99Ms)),
      nginx: wrkCell(wrk.nginx, (w) => lat(w.medianRun.p50Ms, w.medianRun.p99Ms)),
      cellhost: wrkCell(wrk.cellhost, (w) => lat(w.medianRun.p50Ms, w.medianRun.p99Ms)),
      comparison: wrk.cellhost.ok && wrk.direct.ok ? `${signedMs(wrk.cellhost.value.medianRun.p99Ms - wrk.direct.value.medianRun.p99Ms)} p99` : 'n/a',
      target: '—',
      verdict: { kind: 'none' },
      figure: wrk.cellhost.ok ? lat(wrk.cellhost.value.medianRun.p50Ms, wrk.cellhost.value.medianRun.p99Ms) : 'n/a',
    },
    {
      key: 'proxy-cpu',
      what: 'CPU per proxied request under that load (/proc: the platform process; nginx\'s master and worker; for direct, the app\'s cgroup)',
      baseline: `the app itself ${cpu(wrk.direct)}`,
      nginx: cpu(wrk.nginx),
      cellhost: cpu(wrk.cellhost),
      comparison: Number.isFinite(cpuRatio) ? `${ratio(cpuRatio)} nginx's CPU per request` : 'n/a',
      target: '—',
      verdict: { kind: 'none' },
      figure: wrk.cellhost.ok ? us(wrk.cellhost.value.cpuUsPerRequest.median) : 'n/a',
    },
    {
      key: 'proxy-fixed-rate',
      what: `latency p50 / p99 at a fixed ${FIXED_RATE.ratePerS} req/s, ${FIXED_RATE.rounds} rounds of ${FIXED_RATE.sliceMs / 1000} s per target taking turns, after ${FIXED_RATE.warmUpMs / 1000} s of warm-up each, keep-alive, sent by ${fixedGenerator}; added p99 per round`,
      baseline: `direct ${fixedCell(fixed.direct)}${warmUpNote(fixedWarmUp.direct)}`,
      nginx: fixed.nginx.ok ? fixedCell(fixed.nginx.value) : skipped(fixed.nginx.reason),
      cellhost: fixedCell(fixed.cellhost) + warmUpNote(fixedWarmUp.cellhost),
      comparison: `${signedSummaryMs(addedP99)} p99 over direct`,
      target: `added p99 ≤ ${TARGETS.addedP99Ms} ms`,
      verdict: fixed.cellhost.errors ? { kind: 'not-met' } : judge(addedP99, (x) => x <= TARGETS.addedP99Ms, TARGETS.addedP99MaxIqrMs, ' ms'),
      figure: `${signedMs(addedP99.median)} p99`,
    },
    {
      key: 'proxy-fixed-rate-parts',
      what: 'the parts of that added p99, the same rounds, each its own process in front of the same instance: a Node TCP pipe (an event loop in the path, no HTTP) and the router\'s data path alone (the proxy\'s code, no platform); p99 over direct per round',
      baseline: `Node TCP pipe ${part(parts.pipe)}`,
      nginx: part(parts.nginx),
      cellhost: `data path alone ${part(parts.datapath)}; all of cellhost (above) ${signedSummaryMs(addedP99)}`,
      comparison: '—',
      target: '—',
      verdict: { kind: 'none' },
      figure: `pipe ${parts.pipe.ok ? signedMs(parts.pipe.value.median) : 'n/a'}, data path ${parts.datapath.ok ? signedMs(parts.datapath.value.median) : 'n/a'}`,
    },
  ];
}

function coldRows(cold: BenchResults['cold']): Row[] {
  const target = `overhead ≤ ${TARGETS.coldOverheadMs} ms`;
  return cold.flatMap(({ app, result }): Row[] => {
    const what = `cold start ${app}, spawn/request → first 200`;
    if (!result.ok) return [{ ...failedRow(`cold-${app}`, what, result.reason, target), cellhost: skipped(result.reason) }];
    const r = result.value;
    return [
      {
        key: `cold-${app}`,
        what: `${what} (${r.runs} rounds, the apps taking turns, each start beside a bare spawn)`,
        baseline: `bare spawn ${formatSummaryMs(r.bare)}`,
        nginx: '—',
        cellhost: `${formatSummaryMs(r.cellhost)} (its cold_start event: ${formatMs(r.instanceStartMs)})`,
        comparison: `${signedSummaryMs(r.overhead)} per round (${ratio(r.cellhost.median / r.bare.median)})`,
        target,
        verdict: judge(r.overhead, (x) => x <= TARGETS.coldOverheadMs, TARGETS.coldOverheadMaxIqrMs, ' ms'),
        figure: `${signedMs(r.overhead.median)} over bare`,
      },
      {
        key: `cold-${app}-cpu`,
        what: `CPU per cold start ${app} (platform process from /proc, request in → response out; the instance's cgroup from its start to its first answer)`,
        baseline: `the app, to its first answer: ${formatSummaryMs(r.appCpuMs, 1)}`,
        nginx: '—',
        cellhost: `platform ${formatSummaryMs(r.platformCpuMs, 1)}`,
        comparison: '',
        target: '—',
        verdict: { kind: 'none' },
        figure: `platform ${formatMs(r.platformCpuMs.median, 1)}`,
      },
    ];
  });
}

function layerRow(m: Section<LayerColdStartResult>): Row {
  const what = 'cold start python with a system layer (a package installed by dpkg in its build) against the same app without one, taking turns';
  const target = `layer adds ≤ ${TARGETS.layerOverheadMs} ms`;
  if (!m.ok) return failedRow('layer', what, m.reason, target);
  const r = m.value;
  const added = r.withMs - r.withoutMs;
  return {
    key: 'layer',
    what: `${what} (median of ${r.runs} each)`,
    baseline: `without a layer ${formatMs(r.withoutMs)} (its cold_start event: ${formatMs(r.withoutEventMs)})`,
    nginx: '—',
    cellhost: `with a layer ${formatMs(r.withMs)} (its cold_start event: ${formatMs(r.withEventMs)}; layer: ${r.packages})`,
    comparison: `${signedMs(added)} (cold_start events ${signedMs(r.withEventMs - r.withoutEventMs)})`,
    target,
    verdict: added <= TARGETS.layerOverheadMs ? { kind: 'met' } : { kind: 'not-met' },
    figure: `${signedMs(added)} with a layer`,
  };
}

function thawRows(m: Section<ThawResult>): Row[] {
  const what = 'request to a frozen instance (thaw) → response';
  const target = `≤ ${TARGETS.thawMs} ms median`;
  if (!m.ok) return [failedRow('thaw', what, m.reason, target)];
  const r = m.value;
  return [
    {
      key: 'thaw',
      what: `${what} (${r.runs} rounds: warm, warm after ${r.idleGapMs} ms idle, thaw)`,
      baseline: `warm request ${formatSummaryMs(r.warm)}; warm after ${r.idleGapMs} ms idle ${formatSummaryMs(r.warmAfterIdle)}`,
      nginx: '—',
      cellhost: formatSummaryMs(r.thaw) + (r.confirmedByCgroup ? '' : ' (freeze not confirmed in freezer.state)'),
      comparison: `${signedSummaryMs(r.overWarm)} over warm, per round`,
      target,
      verdict: judge(r.thaw, (x) => x <= TARGETS.thawMs, TARGETS.thawMaxIqrMs, ' ms'),
      figure: formatMs(r.thaw.median),
    },
    {
      key: 'thaw-cpu',
      what: 'CPU per thaw (platform process, /proc: the freezer write and the proxying of that request)',
      baseline: `a warm request ${formatSummaryMs(r.warmPlatformCpuMs)}`,
      nginx: '—',
      cellhost: formatSummaryMs(r.platformCpuMs),
      comparison: signedMs(r.platformCpuMs.median - r.warmPlatformCpuMs.median),
      target: '—',
      verdict: { kind: 'none' },
      figure: formatMs(r.platformCpuMs.median),
    },
  ];
}

function burstRows(m: Section<BurstResult>, oneCold: Summary | null): Row[] {
  const what = 'burst: 200 concurrent requests, each on a new connection, at a cold service (concurrency 10, max 20 instances)';
  const target = `0 errors, max ≤ ${TARGETS.burstMultiple}× one cold start`;
  if (!m.ok) return [failedRow('burst', what, m.reason, target)];
  const r = m.value;
  const oneColdMs = oneCold?.median ?? NaN;
  const multiple: Summary = { ...r.maxMs, median: r.maxMs.median / oneColdMs, q1: r.maxMs.q1 / oneColdMs, q3: r.maxMs.q3 / oneColdMs, iqr: r.maxMs.iqr / oneColdMs };
  const kinds = Object.entries(r.errorKinds).map(([k, v]) => `${v}× ${k}`).join(', ');
  return [
    {
      key: 'burst',
      what: `${what}, ${r.rounds} rounds, each beside the same burst at a bare spawn`,
      baseline: `one cold start (node, through cellhost) ${formatMs(oneColdMs)}; the burst at a bare spawn of the app, no platform (spawn → last answer) ${formatSummaryMs(r.bareMs)}`,
      nginx: '—',
      cellhost:
        `${r.errors}/${r.requests * r.rounds} errors${kinds ? ` (${kinds})` : ''}, p50 ${formatSummaryMs(r.p50Ms)}, max ${formatSummaryMs(r.maxMs)}; ` +
        `${r.instances} instance(s), each spawn → ready p50 ${formatMs(r.instanceStartP50Ms)}, max ${formatMs(r.instanceStartMaxMs)}; sent by ${r.generator}; ` +
        `the router served ${r.warmUp.requests} one-shot requests first (its CPU per ${r.requests}: ${formatMs(r.warmUp.firstRoundCpuMs, 0)} in the first round, ${formatMs(r.warmUp.lastRoundsCpuMs, 0)} in the last five)`,
      comparison: `max = ${formatSummary(multiple, ratio)} one cold start, ${formatSummary(r.vsBare, ratio)} the bare burst`,
      target,
      verdict: r.errors ? { kind: 'not-met' } : Number.isFinite(oneColdMs) ? judge(multiple, (x) => x <= TARGETS.burstMultiple, TARGETS.burstMultipleMaxIqr, '×') : { kind: 'n/a' },
      figure: `max ${ratio(multiple.median)} one cold start`,
    },
    {
      key: 'burst-cpu',
      what: 'CPU per burst of 200 (platform process from /proc; every instance\'s cgroup)',
      baseline: '',
      nginx: '—',
      cellhost: `platform ${formatSummaryMs(r.platformCpuMs, 0)}, apps ${formatSummaryMs(r.appsCpuMs, 0)}`,
      comparison: '',
      target: '—',
      verdict: { kind: 'none' },
      figure: `platform ${formatMs(r.platformCpuMs.median, 0)}`,
    },
  ];
}

function idleRow(m: Section<IdleResult>): Row {
  const what = 'idle platform, 1000 services registered, none warm';
  const target = `RSS ≤ ${TARGETS.idleRssMb} MB, CPU ≤ ${TARGETS.idleCpuPercent} % of a core`;
  if (!m.ok) return failedRow('idle', what, m.reason, target);
  const r = m.value;
  return {
    key: 'idle',
    what: `idle platform, ${r.services} services registered, none warm (${(r.windowMs / 1000).toFixed(0)} s window from ${IDLE.steadyAfterMs / 1000} s after registering)`,
    baseline: `empty platform: RSS ${r.rssEmptyMb.toFixed(0)} MB, CPU ${r.cpuEmptyPercentOfCore.toFixed(2)} %; bare \`node\` ${r.rssNodeMb.toFixed(0)} MB`,
    nginx: '—',
    cellhost:
      `RSS ${r.rssMb.toFixed(0)} MB, CPU ${r.cpuPercentOfCore.toFixed(2)} % of a core ` +
      `(${r.cpuAfterRegisterPercentOfCore.toFixed(2)} % in the window ${IDLE.settleMs / 1000} s after registering)`,
    comparison:
      `+${(r.rssMb - r.rssEmptyMb).toFixed(0)} MB for the services; registering took ${(r.registerMs / 1000).toFixed(1)} s ` +
      `(first 100: ${(r.firstHundredMs / 1000).toFixed(1)} s, last 100: ${(r.lastHundredMs / 1000).toFixed(1)} s)`,
    target,
    verdict: r.rssMb <= TARGETS.idleRssMb && r.cpuPercentOfCore <= TARGETS.idleCpuPercent ? { kind: 'met' } : { kind: 'not-met' },
    figure: `RSS ${r.rssMb.toFixed(0)} MB, CPU ${r.cpuPercentOfCore.toFixed(2)} %`,
  };
}

export function buildRows(results: BenchResults): Row[] {
  const coldNode = results.cold.find((c) => c.app === 'node')?.result;
  return [
    ...proxyRows(results.proxy),
    ...coldRows(results.cold),
    layerRow(results.layer),
    ...thawRows(results.thaw),
    ...burstRows(results.burst, coldNode?.ok ? coldNode.value.cellhost : null),
    idleRow(results.idle),
    ...(results.extra ?? []),
  ];
}

const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;

export function renderTable(rows: Row[]): string {
  const header = ['what', 'baseline', 'nginx', 'cellhost', 'cellhost vs baseline', 'target', 'met'];
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => line([r.what, r.baseline, r.nginx, r.cellhost, r.comparison, r.target, formatVerdict(r.verdict)]))].join('\n');
}

/**
 * Several runs side by side: each row's figure per run, and the target counted as met only when
 * every run met it (a noisy run leaves it undecided, a missed one decides it).
 */
export function renderRepeatTable(runs: Row[][]): string {
  const keys: string[] = [];
  for (const rows of runs) for (const r of rows) if (!keys.includes(r.key)) keys.push(r.key);
  const header = ['what', ...runs.map((_, i) => `run ${i + 1}`), 'target', `met in all ${runs.length}`];
  const body = keys.map((key) => {
    const per = runs.map((rows) => rows.find((r) => r.key === key));
    const first = per.find((r) => r)!;
    const verdicts = per.map((r) => r?.verdict ?? ({ kind: 'n/a', reason: 'not run' } as Verdict));
    return line([first.what.replace(/ \(.*$/, ''), ...per.map((r) => (r ? `${r.figure} (${formatVerdict(r.verdict)})` : 'not run')), first.target, formatVerdict(combineVerdicts(verdicts))]);
  });
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...body].join('\n');
}
