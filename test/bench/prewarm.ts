// Prewarmed instances and edge services: the rows of their targets.
// - A request to a service scaled to zero whose prewarmed instance was just started ahead (a new
//   one each round, by an env change: its first request ever) against a warm request to the same
//   app after the same idle time, for the Node hello, Express and a Next.js app.
// - An edge (fetch-handler) service truly cold: no prewarmed instance, only its standby (the edge
//   host already booted in the sandbox), against a bare spawn of the Node hello.
// - 50 services under a 300 MB budget: what the kernel says is frozen, sampled the whole time,
//   and whether the most recently used are the ones kept.
// - A burst of 200 at a frozen prewarmed instance against the same burst right after, warm.
import fs from 'node:fs';
import path from 'node:path';
import { edgeHostArgs } from '../helpers/edge-host.ts';
import { FIXTURES } from '../helpers/server.ts';
import { prepareGenerator, BURST, type Generator } from './burst.ts';
import { deferCleanup } from './cleanup.ts';
import { nodeApp, spawnBare, waitScaledToZero } from './cold-start.ts';
import { prepareNextApp } from './next-app.ts';
import { getViaRouter, startPlatform, type BenchPlatform } from './platform.ts';
import { readCpuNs, readFrozenInstances, readInstanceCpuMs } from './proc-stats.ts';
import { failedRow, type Row } from './report.ts';
import type { Measured } from './proxy.ts';
import { combineVerdicts, formatMs, formatRatio, formatSummary, formatSummaryMs, judge, paired, percentile, sleep, summarize, type Summary, type Verdict } from './stats.ts';

export const PREWARM_TARGETS = {
  prewarmedMs: 10,
  prewarmedMaxIqrMs: 5,
  vsWarm: 2,
  vsWarmMaxIqr: 1,
  edgeColdMs: 15,
  edgeColdMaxIqrMs: 7.5,
  budgetMb: 300,
  budgetServices: Math.max(2, Number(process.env.BENCH_BUDGET_SERVICES ?? 50)),
  burstVsWarm: 1.5,
  burstVsWarmMaxIqr: 0.5,
};
const ROUNDS = Math.max(1, Number(process.env.BENCH_PREWARM_ROUNDS ?? 10));
/** the idle time before both the prewarmed and the warm request */
const IDLE_MS = 1000;

export interface PrewarmAppResult {
  rounds: number;
  prewarmed: Summary;
  warmAfterIdle: Summary;
  /** per round: prewarmed ÷ warm */
  ratio: Summary;
  /** the platform's CPU for the request (the thaw, the proxying), and for the warm one */
  platformCpuMs: Summary;
  warmPlatformCpuMs: Summary;
  /** spawn → ready of the starts ahead (their prewarmed events), median */
  startAheadMs: number;
}

export interface EdgeColdResult {
  rounds: number;
  cold: Summary;
  bareNode: Summary;
  platformCpuMs: Summary;
  appCpuMs: Summary;
  /** its cold_start events: the import and readiness */
  instanceStartMs: number;
}

export interface BudgetResult {
  services: number;
  budgetMb: number;
  maxFrozenMb: number;
  samples: number;
  kept: number;
  /** the kept ones are exactly the most recently used (as many as fit) */
  mruKept: boolean;
  evicted: number;
  deployMs: number;
}

export interface PrewarmBurstResult {
  rounds: number;
  errors: number;
  errorKinds: Record<string, number>;
  prewarmedMax: Summary;
  warmMax: Summary;
  ratio: Summary;
  generator: string;
}

export interface PrewarmResults {
  apps: { app: string; result: Measured<PrewarmAppResult> }[];
  edge: Measured<EdgeColdResult>;
  budget: Measured<BudgetResult>;
  burst: Measured<PrewarmBurstResult>;
}

async function measure<T>(fn: () => Promise<T>, log: (line: string) => void, what: string): Promise<Measured<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    log(`${what}: failed: ${(err as Error).stack ?? err}`);
    return { ok: false, reason: (err as Error).message.split('\n')[0]! };
  }
}

async function withPlatform<T>(env: Record<string, string>, leftovers: string[], fn: (p: BenchPlatform) => Promise<T>): Promise<T> {
  const platform = await startPlatform(env);
  const close = deferCleanup(async () => leftovers.push(...(await platform.close()).leftovers));
  try {
    return await fn(platform);
  } finally {
    await close();
  }
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function keptInstance(platform: BenchPlatform, service: string): Promise<any> {
  return ((await platform.service(service)).instances as any[]).find((i) => i.prewarm?.kept);
}

async function timedGet(platform: BenchPlatform, host: string): Promise<{ ms: number; cpuMs: number }> {
  const cpu0 = readCpuNs(platform.pid);
  const t0 = performance.now();
  const status = await getViaRouter(platform.routerPort, host, false, 30_000);
  const ms = performance.now() - t0;
  const cpuMs = (readCpuNs(platform.pid) - cpu0) / 1e6;
  if (status !== 200) throw new Error(`${host} answered ${status}`);
  return { ms, cpuMs };
}

interface AppDef {
  name: string;
  source: () => Promise<string | Uint8Array>;
  settings: Record<string, unknown>;
}

async function benchApps(platform: BenchPlatform, apps: AppDef[], log: (line: string) => void): Promise<Map<string, PrewarmAppResult>> {
  type S = { app: AppDef; pw: number[]; warm: number[]; pwCpu: number[]; warmCpu: number[]; round: number };
  const state: S[] = [];
  for (const app of apps) {
    const source = await app.source();
    log(`prewarm: deploying ${app.name}`);
    // scaled to zero again a second after each request: each round starts from a kept instance
    await platform.deploy(`pw-${app.name}`, source, { ...app.settings, prewarm: true, idleTimeoutS: 1 });
    await platform.deploy(`warm-${app.name}`, source, { ...app.settings, prewarm: false, idleTimeoutS: 3600 });
    // the warm one's first request is a cold start: not a round
    await timedGet(platform, `warm-${app.name}.localhost`);
    state.push({ app, pw: [], warm: [], pwCpu: [], warmCpu: [], round: 0 });
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < state.length; k++) {
      const s = state[(r + k) % state.length]!;
      const pw = `pw-${s.app.name}`;
      // scaled to zero (its instance kept at the idle timeout): a change now starts the new version ahead
      const old = (await until(() => keptInstance(platform, pw), `${pw} scaled to zero`)).id as string;
      // a new version: a new instance started ahead, whose first request ever is the one timed
      await platform.api('PUT', `/api/v1/services/${pw}/env/BENCH_ROUND`, { value: String(r) });
      await until(async () => {
        const k2 = await keptInstance(platform, pw);
        return k2 && k2.id !== old && readFrozenInstances(platform.cgroupPrefix).some((f) => f.id === k2.id);
      }, `a prewarmed instance of ${pw}`);
      await getViaRouter(platform.routerPort, `warm-${s.app.name}.localhost`, false, 30_000);
      await sleep(IDLE_MS);
      const order = r % 2 ? ['pw', 'warm'] : ['warm', 'pw'];
      for (const which of order) {
        const t = await timedGet(platform, `${which}-${s.app.name}.localhost`);
        (which === 'pw' ? s.pw : s.warm).push(t.ms);
        (which === 'pw' ? s.pwCpu : s.warmCpu).push(t.cpuMs);
      }
    }
    log(`prewarm: round ${r + 1} of ${ROUNDS}: ${state.map((s) => `${s.app.name} ${s.pw.at(-1)!.toFixed(1)} ms (warm ${s.warm.at(-1)!.toFixed(1)} ms)`).join(', ')}`);
  }
  const out = new Map<string, PrewarmAppResult>();
  for (const s of state) {
    const events = (await platform.api('GET', `/api/v1/services/pw-${s.app.name}/logs?stream=event&q=prewarmed&limit=1000`)).body.entries as any[];
    const starts = events.filter((e) => e.event === 'prewarmed' && typeof e.fields?.startMs === 'number').map((e) => e.fields.startMs as number);
    out.set(s.app.name, {
      rounds: ROUNDS,
      prewarmed: summarize(s.pw),
      warmAfterIdle: summarize(s.warm),
      ratio: summarize(paired(s.pw, s.warm, (a, b) => a / b)),
      platformCpuMs: summarize(s.pwCpu),
      warmPlatformCpuMs: summarize(s.warmCpu),
      startAheadMs: percentile(starts, 50),
    });
  }
  return out;
}

/** the service's edge host waiting as a standby (node booted in the sandbox, no module yet): its pid and instance group */
function findEdgeStandby(platform: BenchPlatform, service: string): { pid: number; group: string } | null {
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      // a standby waits to be told to go
      if (!edgeHostArgs(pid)?.includes('--held')) continue;
      const group = new RegExp(`/${platform.cgroupPrefix}/([^/\\n]+)`).exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
      if (group && fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`CELLHOST_SERVICE=${service}`)) return { pid: Number(pid), group };
    } catch {
      // gone while we looked
    }
  }
  return null;
}

/** the process has stopped using CPU for `quietMs` (a standby done booting, waiting on stdin);
 *  false when it went away */
async function waitQuiet(pid: number, quietMs: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = readCpuNs(pid);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(20);
    const now = readCpuNs(pid);
    if (Number.isNaN(now)) return false;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return true;
  }
  // still busy: measured all the same
  return true;
}

async function benchEdgeCold(platform: BenchPlatform, log: (line: string) => void): Promise<EdgeColdResult> {
  const service = 'edge-hono';
  await platform.deploy(service, path.join(FIXTURES, 'edge-hono'), { runtime: 'edge', idleTimeoutS: 0.1 });
  const cold: number[] = [];
  const bare: number[] = [];
  const platformCpu: number[] = [];
  const appCpu: number[] = [];
  // round 0 warms both paths (page cache, the platform's JIT) and is not counted
  for (let i = 0; i <= ROUNDS; i++) {
    await waitScaledToZero(platform, service, 30_000);
    // a request does not come the instant a service scaled to zero: the standby has booted and
    // waits (its boot, on a busy machine, is not the request's). The last instance, made from
    // the last standby, has the same arguments and may still be stopping: one that goes away
    // was not the standby
    let standby: { pid: number; group: string };
    do {
      standby = await until(async () => findEdgeStandby(platform, service), 'the edge host waiting as a standby', 30_000);
    } while (!(await waitQuiet(standby.pid, 200, 10_000)));
    const appCpu0 = readInstanceCpuMs(platform.cgroupPrefix, standby.group);
    const t = await timedGet(platform, `${service}.localhost`);
    const appCpu1 = readInstanceCpuMs(platform.cgroupPrefix, standby.group);
    const a = appCpu0 !== null && appCpu1 !== null ? appCpu1 - appCpu0 : null;
    const b = await spawnBare(nodeApp());
    if (i > 0) {
      cold.push(t.ms);
      platformCpu.push(t.cpuMs);
      if (a !== null) appCpu.push(a);
      bare.push(b);
    }
    log(`edge: round ${i} of ${ROUNDS}${i === 0 ? ' (warm-up)' : ''}: ${t.ms.toFixed(1)} ms (bare node ${b.toFixed(1)} ms)`);
  }
  const events = (await platform.api('GET', `/api/v1/services/${service}/logs?stream=event&q=cold_start&limit=1000`)).body.entries as any[];
  const starts = events.filter((e) => e.event === 'cold_start').map((e) => e.fields.durationMs as number).slice(-ROUNDS);
  return { rounds: ROUNDS, cold: summarize(cold), bareNode: summarize(bare), platformCpuMs: summarize(platformCpu), appCpuMs: summarize(appCpu), instanceStartMs: percentile(starts, 50) };
}

async function benchBudget(platform: BenchPlatform, log: (line: string) => void): Promise<BudgetResult> {
  const n = PREWARM_TARGETS.budgetServices;
  const names = Array.from({ length: n }, (_, i) => `bud-${String(i).padStart(2, '0')}`);
  let maxFrozen = 0;
  let samples = 0;
  // what the kernel says is frozen under the platform's prefix, every 50 ms, the whole time
  const timer = setInterval(() => {
    samples++;
    maxFrozen = Math.max(maxFrozen, readFrozenInstances(platform.cgroupPrefix).reduce((a, f) => a + f.memoryBytes, 0));
  }, 50);
  const stop = deferCleanup(() => clearInterval(timer));
  try {
    const t0 = performance.now();
    for (const [i, name] of names.entries()) {
      await platform.deploy(name, path.join(FIXTURES, 'node-hello'), { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', idleTimeoutS: 1 });
      if (i % 10 === 9) log(`budget: ${i + 1} of ${n} deployed; most frozen so far ${(maxFrozen / 1024 / 1024).toFixed(0)} MB`);
    }
    const deployMs = performance.now() - t0;
    // used in a shuffled order (fixed, so runs compare), each request a little after the last
    const order = [...names].sort((a, b) => hash(a) - hash(b));
    for (const name of order) {
      const status = await getViaRouter(platform.routerPort, `${name}.localhost`, false, 30_000);
      if (status !== 200) throw new Error(`${name} answered ${status}`);
      await sleep(30);
    }
    // every one idles out and is kept, or not, in the order it was used
    await sleep(2500);
    await until(async () => {
      for (const name of order) if ((await platform.service(name)).instances.some((i: any) => !i.prewarm?.kept)) return false;
      return true;
    }, 'every service kept or stopped', 30_000);
    const kept: boolean[] = [];
    for (const name of order) kept.push(Boolean(await keptInstance(platform, name)));
    const count = kept.filter(Boolean).length;
    // the last `count` used, and no other
    const mruKept = kept.every((k, i) => k === i >= order.length - count);
    let evicted = 0;
    for (const name of names) {
      const e = (await platform.api('GET', `/api/v1/services/${name}/logs?stream=event&q=prewarm_evicted&limit=1000`)).body.entries as any[];
      evicted += e.filter((x) => x.event === 'prewarm_evicted').length;
    }
    return { services: n, budgetMb: PREWARM_TARGETS.budgetMb, maxFrozenMb: maxFrozen / 1024 / 1024, samples, kept: count, mruKept, evicted, deployMs };
  } finally {
    await stop();
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

async function benchPrewarmBurst(platform: BenchPlatform, generator: Generator, log: (line: string) => void): Promise<PrewarmBurstResult> {
  const service = 'burst-pw';
  const host = `${service}.localhost`;
  await platform.deploy(service, path.join(FIXTURES, 'node-hello'), {
    runtime: 'node',
    buildCommand: 'true',
    startCommand: 'node app.js',
    concurrency: BURST.concurrency,
    maxInstances: BURST.maxInstances,
    idleTimeoutS: 1,
  });
  const pw: number[] = [];
  const warm: number[] = [];
  const kinds: Record<string, number> = {};
  const rounds = Math.max(3, Math.ceil(ROUNDS / 2));
  for (let r = 0; r < rounds; r++) {
    // back to one frozen prewarmed instance, the rest stopped at their idle timeout
    await until(async () => {
      const list = (await platform.service(service)).instances as any[];
      return list.length === 1 && list[0].prewarm?.kept && readFrozenInstances(platform.cgroupPrefix).some((f) => f.id === list[0].id);
    }, 'one frozen prewarmed instance', 60_000);
    for (const which of ['pw', 'warm'] as const) {
      const res = await generator.run(platform.routerPort, host);
      for (const [k, v] of Object.entries(res.kinds)) kinds[k] = (kinds[k] ?? 0) + v;
      (which === 'pw' ? pw : warm).push(percentile(res.doneMs, 100));
    }
    log(`prewarm burst: round ${r + 1} of ${rounds}: frozen ${pw.at(-1)!.toFixed(1)} ms, warm ${warm.at(-1)!.toFixed(1)} ms`);
  }
  return { rounds, errors: Object.values(kinds).reduce((a, b) => a + b, 0), errorKinds: kinds, prewarmedMax: summarize(pw), warmMax: summarize(warm), ratio: summarize(paired(pw, warm, (a, b) => a / b)), generator: generator.name };
}

/** every measurement of this module; `wanted` picks them (prewarm, edge, budget, prewarm-burst) */
export async function benchPrewarm(wanted: (name: string) => boolean, log: (line: string) => void, leftovers: string[]): Promise<PrewarmResults> {
  const results: PrewarmResults = { apps: [], edge: { ok: false, reason: 'not run' }, budget: { ok: false, reason: 'not run' }, burst: { ok: false, reason: 'not run' } };
  if (wanted('prewarm')) {
    const next = await prepareNextApp(log);
    const apps: AppDef[] = [
      // a health path, as a user who wants the first request quick sets one: readiness requests it
      // once during the start ahead, before the freeze (Next.js compiles a page's code on its first
      // request); the warm service has the same settings
      { name: 'node', source: async () => path.join(FIXTURES, 'node-hello'), settings: { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', healthPath: '/' } },
      { name: 'express', source: async () => path.join(FIXTURES, 'node-express'), settings: { runtime: 'node', startCommand: 'node app.js', healthPath: '/' } },
      ...(typeof next === 'string'
        ? []
        : [{ name: 'next', source: () => next.archive(), settings: { runtime: 'node', buildCommand: 'true', startCommand: 'node server.js', healthPath: '/', memoryMb: 1024 } }]),
    ];
    const measured = await measure(() => withPlatform({ CELLHOST_PREWARM_MB: '2048' }, leftovers, (p) => benchApps(p, apps, log)), log, 'prewarm');
    for (const name of ['node', 'express', 'next']) {
      const value = measured.ok ? measured.value.get(name) : undefined;
      results.apps.push({
        app: name,
        result: value ? { ok: true, value } : { ok: false, reason: !measured.ok ? measured.reason : name === 'next' && typeof next === 'string' ? next : 'not measured' },
      });
    }
  }
  if (wanted('edge')) results.edge = await measure(() => withPlatform({ CELLHOST_PREWARM_MB: '0' }, leftovers, (p) => benchEdgeCold(p, log)), log, 'edge');
  if (wanted('budget')) {
    results.budget = await measure(
      () => withPlatform({ CELLHOST_PREWARM_MB: String(PREWARM_TARGETS.budgetMb), CELLHOST_STANDBYS: '0' }, leftovers, (p) => benchBudget(p, log)),
      log,
      'budget',
    );
  }
  if (wanted('prewarm-burst')) {
    const generator = await prepareGenerator();
    if (generator.cleanup) deferCleanup(async () => generator.cleanup!());
    results.burst = await measure(() => withPlatform({ CELLHOST_PREWARM_MB: '1024' }, leftovers, (p) => benchPrewarmBurst(p, generator, log)), log, 'prewarm burst');
  }
  return results;
}

export function prewarmRows(r: PrewarmResults): Row[] {
  const rows: Row[] = [];
  const t = PREWARM_TARGETS;
  const appTarget = `p50 ≤ ${t.prewarmedMs} ms and ≤ ${t.vsWarm}× a warm request after the same idle`;
  for (const { app, result } of r.apps) {
    const what = `request to ${app} scaled to zero with a prewarmed instance (started ahead, frozen; a new one each round, so its first request after readiness; health path /) → response`;
    if (!result.ok) {
      rows.push(failedRow(`prewarm-${app}`, what, result.reason, appTarget));
      continue;
    }
    const v = result.value;
    const verdict: Verdict = combineVerdicts([
      judge(v.prewarmed, (x) => x <= t.prewarmedMs, t.prewarmedMaxIqrMs, ' ms'),
      judge(v.ratio, (x) => x <= t.vsWarm, t.vsWarmMaxIqr, '×'),
    ]);
    rows.push({
      key: `prewarm-${app}`,
      what: `${what} (${v.rounds} rounds, each beside a warm request after ${IDLE_MS / 1000} s idle)`,
      baseline: `warm request after ${IDLE_MS / 1000} s idle ${formatSummaryMs(v.warmAfterIdle)}`,
      nginx: '—',
      cellhost: `${formatSummaryMs(v.prewarmed)} (its start ahead took ${formatMs(v.startAheadMs, 0)}; platform CPU ${formatMs(v.platformCpuMs.median)} vs ${formatMs(v.warmPlatformCpuMs.median)} warm)`,
      comparison: `${formatSummary(v.ratio, formatRatio)} the warm request, per round`,
      target: appTarget,
      verdict,
      figure: `${formatMs(v.prewarmed.median)} (${formatRatio(v.ratio.median)} warm)`,
    });
  }
  const edgeTarget = `p50 ≤ ${t.edgeColdMs} ms`;
  const edgeWhat = 'edge service (a Hono fetch handler) truly cold: no prewarmed instance, only its standby (the edge host booted in the sandbox) → first 200';
  if (r.edge.ok) {
    const e = r.edge.value;
    rows.push({
      key: 'edge-cold',
      what: `${edgeWhat} (${e.rounds} rounds, each beside a bare spawn of the Node hello)`,
      baseline: `bare spawn of the Node hello ${formatSummaryMs(e.bareNode)}`,
      nginx: '—',
      cellhost: `${formatSummaryMs(e.cold)} (its cold_start event: ${formatMs(e.instanceStartMs)})`,
      comparison: formatRatio(e.cold.median / e.bareNode.median),
      target: edgeTarget,
      verdict: judge(e.cold, (x) => x <= t.edgeColdMs, t.edgeColdMaxIqrMs, ' ms'),
      figure: formatMs(e.cold.median),
    });
    rows.push({
      key: 'edge-cold-cpu',
      what: 'CPU per edge cold start, request in → response out (platform from /proc; the instance\'s cgroup: the import, the listen and the first request)',
      baseline: '',
      nginx: '—',
      cellhost: `platform ${formatSummaryMs(e.platformCpuMs, 1)}; instance ${formatSummaryMs(e.appCpuMs, 1)}`,
      comparison: '',
      target: '—',
      verdict: { kind: 'none' },
      figure: `platform ${formatMs(e.platformCpuMs.median, 1)}`,
    });
  } else rows.push(failedRow('edge-cold', edgeWhat, r.edge.reason, edgeTarget));
  const budgetTarget = `never above ${t.budgetMb} MB frozen; the most recently used kept`;
  const budgetWhat = `${t.budgetServices} services, prewarm budget ${t.budgetMb} MB (CELLHOST_PREWARM_MB), each deployed, then used once in a shuffled order`;
  if (r.budget.ok) {
    const b = r.budget.value;
    rows.push({
      key: 'prewarm-budget',
      what: budgetWhat,
      baseline: `deploying ${b.services} took ${(b.deployMs / 1000).toFixed(0)} s`,
      nginx: '—',
      cellhost: `most frozen at once ${b.maxFrozenMb.toFixed(1)} MB (cgroup memory of every FROZEN group, ${b.samples} samples 50 ms apart); ${b.kept} kept at the end, ${b.mruKept ? 'exactly the most recently used' : '**not** the most recently used'}; ${b.evicted} stopped for the budget`,
      comparison: `${((b.maxFrozenMb / b.budgetMb) * 100).toFixed(0)} % of the budget`,
      target: budgetTarget,
      verdict: b.maxFrozenMb <= b.budgetMb && b.mruKept ? { kind: 'met' } : { kind: 'not-met' },
      figure: `max ${b.maxFrozenMb.toFixed(0)} MB, ${b.kept} kept${b.mruKept ? ' (MRU)' : ' (not MRU)'}`,
    });
  } else rows.push(failedRow('prewarm-budget', budgetWhat, r.budget.reason, budgetTarget));
  const burstTarget = `0 errors, last answered ≤ ${t.burstVsWarm}× the same burst warm`;
  const burstWhat = `burst: ${BURST.requests} concurrent requests, each on a new connection, at a service whose prewarmed instance is frozen (concurrency ${BURST.concurrency}, max ${BURST.maxInstances} instances)`;
  if (r.burst.ok) {
    const b = r.burst.value;
    const kinds = Object.entries(b.errorKinds).map(([k, v]) => `${v}× ${k}`).join(', ');
    rows.push({
      key: 'prewarm-burst',
      what: `${burstWhat}, ${b.rounds} rounds, each followed by the same burst at the then warm app`,
      baseline: `the same burst, warm: last answer ${formatSummaryMs(b.warmMax)}`,
      nginx: '—',
      cellhost: `${b.errors}/${BURST.requests * b.rounds * 2} errors${kinds ? ` (${kinds})` : ''}; last answer ${formatSummaryMs(b.prewarmedMax)}; sent by ${b.generator}`,
      comparison: `${formatSummary(b.ratio, formatRatio)} warm, per round`,
      target: burstTarget,
      verdict: b.errors ? { kind: 'not-met' } : judge(b.ratio, (x) => x <= t.burstVsWarm, t.burstVsWarmMaxIqr, '×'),
      figure: `${formatRatio(b.ratio.median)} warm`,
    });
  } else rows.push(failedRow('prewarm-burst', burstWhat, r.burst.reason, burstTarget));
  return rows;
}
