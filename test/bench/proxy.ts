// Proxy throughput, latency and CPU per request, same run, same app instance: wrk straight at the
// instance, at nginx in front of it, and at cellhost's router (Host header), in many short
// rounds that take turns; then a fixed 1000 req/s through each, in 1 s turns, to see what the
// proxy adds to p99 when nothing is saturated. Each row's figure is the median of its rounds, with
// their interquartile range: two runs of this machine 40 minutes apart moved single 5 s runs of
// the router against nginx from 0.63× to 0.47×, while rounds a few seconds apart see the same
// machine. The CPU each proxy spends per request (from /proc) is the figure a busy neighbour
// hardly moves.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree } from '../helpers/host.ts';
import { FIXTURES } from '../helpers/server.ts';
import { freePortSync } from '../helpers/subprocess-server.ts';
import { startChild } from './child.ts';
import { deferCleanup } from './cleanup.ts';
import { mergeFixedRate, prepareFixedRate, type FixedRateResult, type FixedRateTarget } from './fixed-rate.ts';
import { findListenAddress } from './instance-address.ts';
import { startNginx } from './nginx.ts';
import { getViaRouter, type BenchPlatform } from './platform.ts';
import { readCpuNs, readCpuNsOf, readInstanceCpuMs } from './proc-stats.ts';
import { paired, percentile, summarize, type Summary } from './stats.ts';
import { findBinary, runWrk, type WrkResult } from './wrk.ts';

const SERVICE = 'proxy';
const HOST = `${SERVICE}.localhost`;
export const WRK_ROUNDS = Math.max(3, Number(process.env.BENCH_WRK_ROUNDS ?? 8));
export const WRK_ROUND_S = 2;
// a warm-up each fills connection pools and JIT caches before the rounds (with 1 s, the router's
// first measured run was still 5-15 % below its later ones)
const WRK_WARM_UP_S = 4;
// warmUpMs: after wrk, the router's JIT re-settles on the new traffic (other clients, other
// header shapes: V8 deoptimizes the request path and takes a few seconds at 1000 req/s to
// optimize it again); measured here, its p99 stays 3-7 ms for the first ~4 s, then 1.3-2 ms
export const FIXED_RATE = { ratePerS: 1000, rounds: Math.max(3, Number(process.env.BENCH_FIXED_ROUNDS ?? 10)), sliceMs: 1000, warmUpMs: 5000 };

export type Measured<T> = { ok: true; value: T } | { ok: false; reason: string };

/** one target's wrk rounds */
export interface WrkRounds {
  runs: WrkResult[];
  requestsPerS: Summary;
  /** CPU per request of the proxy process (nginx's master and workers, the platform), µs; for
   *  direct: of the app itself */
  cpuUsPerRequest: Summary;
  /** the median run by req/s, for its latency percentiles */
  medianRun: WrkResult;
}

export interface ProxyResults {
  wrk: { direct: Measured<WrkRounds>; nginx: Measured<WrkRounds>; cellhost: Measured<WrkRounds> };
  /** per round: cellhost ÷ nginx and cellhost ÷ direct req/s, each from the same round */
  ratios: { vsNginx: Summary; vsDirect: Summary };
  fixed: { direct: FixedRateResult; nginx: Measured<FixedRateResult>; cellhost: FixedRateResult };
  /** per 1 s round: cellhost's p99 − direct's p99 in that round */
  addedP99: Summary;
  /** the same for what else was in front of the instance: nginx, a Node TCP pipe, the data path alone */
  addedP99Parts: Record<PartName | 'nginx', Measured<Summary>>;
  /** the same rate during the warm-up before those, shown beside them */
  fixedWarmUp: { direct: FixedRateResult; cellhost: FixedRateResult };
  /** what sent the fixed-rate requests */
  fixedGenerator: string;
  upstream: { host: string; port: number };
  nginxWorkers: number;
}

async function measure<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

export async function benchProxy(platform: BenchPlatform, log: (line: string) => void): Promise<ProxyResults> {
  // 3538 MB = two cores' CPU share: the cgroup's CPU cap must not be what is measured;
  // one instance, so direct, nginx and cellhost all reach the very same process
  await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', memoryMb: 3538, maxInstances: 1, idleTimeoutS: 3600 });
  const status = await getViaRouter(platform.routerPort, HOST);
  if (status !== 200) throw new Error(`the proxy service answered ${status}`);
  const view = await platform.service(SERVICE);
  const pid = view.instances?.[0]?.pid;
  const instanceId = view.instances?.[0]?.id as string;
  const upstream = typeof pid === 'number' && pid > 0 ? findListenAddress(pid) : null;
  if (!upstream) throw new Error(`could not find where instance pid ${pid} listens`);
  log(`proxy: instance pid ${pid} listens on ${upstream.host}:${upstream.port}`);

  const wrk = findBinary('wrk');
  const nginxBin = findBinary('nginx');
  const nginx = nginxBin ? await startNginx(nginxBin, upstream, 1).catch((err: Error) => err) : new Error('nginx is not installed (apt-get install nginx)');
  const stopNginx = deferCleanup(async () => {
    if (!(nginx instanceof Error)) await nginx.close();
  });
  try {
    const directUrl = `http://${upstream.host}:${upstream.port}/`;
    const nginxUrl = nginx instanceof Error ? null : `http://127.0.0.1:${nginx.port}/`;
    const routerUrl = `http://127.0.0.1:${platform.routerPort}/`;
    const nginxPids = nginx instanceof Error ? [] : processTree(nginx.pid);
    // CPU in ms of whatever does the work for each target
    const appCpuMs = () => readInstanceCpuMs(platform.cgroupPrefix, instanceId) ?? NaN;
    const cpuMsOf: Record<string, () => number> = {
      direct: appCpuMs,
      nginx: () => readCpuNsOf(nginxPids) / 1e6,
      cellhost: () => readCpuNs(platform.pid) / 1e6,
    };

    type Closed = { name: string; url: string | null; host?: string; why: string; runs: WrkResult[]; cpuUs: number[]; error?: string };
    const nginxWhy = nginx instanceof Error ? nginx.message.split('\n')[0]! : '';
    const closed: Closed[] = [
      { name: 'direct', url: directUrl, why: '', runs: [], cpuUs: [] },
      { name: 'nginx', url: nginxUrl, host: HOST, why: nginxWhy, runs: [], cpuUs: [] },
      { name: 'cellhost', url: routerUrl, host: HOST, why: '', runs: [], cpuUs: [] },
    ];
    const usable = (c: Closed) => wrk !== null && c.url !== null && c.error === undefined;
    const attempt = async (c: Closed, durationS: number) => {
      const cpu0 = cpuMsOf[c.name]!();
      const r = await measure(() => runWrk(wrk!, c.url!, { host: c.host, durationS }));
      const cpuMs = cpuMsOf[c.name]!() - cpu0;
      if (!r.ok) c.error = r.reason;
      return { r, cpuMs };
    };
    for (const c of closed) if (usable(c)) await attempt(c, WRK_WARM_UP_S);
    // the rounds take turns, each round in another order, so no target always follows another
    for (let round = 0; round < WRK_ROUNDS; round++) {
      const line: string[] = [];
      for (let k = 0; k < closed.length; k++) {
        const c = closed[(round + k) % closed.length]!;
        if (!usable(c)) continue;
        const { r, cpuMs } = await attempt(c, WRK_ROUND_S);
        if (r.ok) {
          c.runs.push(r.value);
          c.cpuUs.push((cpuMs * 1000) / r.value.requests);
        }
        line.push(`${c.name} ${r.ok ? Math.round(r.value.requestsPerS) : r.reason}`);
      }
      log(`proxy: wrk round ${round + 1} of ${WRK_ROUNDS}: ${line.join(', ')}`);
    }
    const rounds = (name: string): Measured<WrkRounds> => {
      const c = closed.find((x) => x.name === name)!;
      if (!wrk) return { ok: false, reason: 'wrk is not installed (apt-get install wrk)' };
      if (!c.url) return { ok: false, reason: c.why };
      if (c.error !== undefined) return { ok: false, reason: c.error };
      const rps = c.runs.map((r) => r.requestsPerS);
      return {
        ok: true,
        value: { runs: c.runs, requestsPerS: summarize(rps), cpuUsPerRequest: summarize(c.cpuUs), medianRun: [...c.runs].sort((a, b) => a.requestsPerS - b.requestsPerS)[Math.floor(c.runs.length / 2)]! },
      };
    };
    const wDirect = rounds('direct');
    const wNginx = rounds('nginx');
    const wCellhost = rounds('cellhost');
    const rps = (w: Measured<WrkRounds>) => (w.ok ? w.value.runs.map((r) => r.requestsPerS) : []);
    const ratios = {
      vsNginx: summarize(paired(rps(wCellhost), rps(wNginx), (a, b) => a / b)),
      vsDirect: summarize(paired(rps(wCellhost), rps(wDirect), (a, b) => a / b)),
    };

    // the fixed-rate runs take turns in 1 s slices, so a stall of the (shared) machine lands on
    // one target's slice, not on a whole run of it; each target keeps its connections. Beside
    // them, the parts of cellhost's added p99, each its own process in front of the same instance:
    // a Node TCP pipe (an event loop in the path, no HTTP) and the router's data path alone (the
    // proxy's code, no platform around it)
    type Target = FixedRateTarget & { runs: FixedRateResult[]; warmUp?: FixedRateResult };
    const targets: Target[] = [
      { name: 'direct', port: upstream.port, host: upstream.host },
      ...(nginx instanceof Error ? [] : [{ name: 'nginx', port: nginx.port, host: '127.0.0.1', hostHeader: HOST }]),
      { name: 'cellhost', port: platform.routerPort, host: '127.0.0.1', hostHeader: HOST },
    ].map((t) => ({ ...t, runs: [] }));
    const generator = await prepareFixedRate();
    const parts: Part[] = [];
    try {
      parts.push(...(await startParts(upstream)));
      for (const p of parts) if (p.ok) targets.push({ name: p.name, port: p.port, host: '127.0.0.1', hostHeader: HOST, runs: [] });
      const slice = (t: Target, durationMs: number) => generator.run(t, FIXED_RATE.ratePerS, durationMs);
      log(`proxy: ${FIXED_RATE.ratePerS} req/s warm-up, ${FIXED_RATE.warmUpMs} ms per target, sent by ${generator.name}`);
      for (const t of targets) t.warmUp = await slice(t, FIXED_RATE.warmUpMs);
      log(`proxy: ${FIXED_RATE.ratePerS} req/s, ${FIXED_RATE.rounds} rounds of ${FIXED_RATE.sliceMs} ms per target, taking turns`);
      for (let round = 0; round < FIXED_RATE.rounds; round++) {
        for (let k = 0; k < targets.length; k++) {
          const t = targets[(round + k) % targets.length]!;
          t.runs.push(await slice(t, FIXED_RATE.sliceMs));
        }
      }
    } finally {
      await generator.close();
      for (const p of parts) if (p.ok) await p.stop();
    }
    const target = (name: string) => targets.find((x) => x.name === name);
    const merged = (name: string) => {
      const t = target(name);
      return t ? mergeFixedRate(t.runs) : null;
    };
    const p99s = (name: string) => target(name)!.runs.map((r) => percentile(r.latencies, 99));
    const addedP99 = (name: string) => summarize(paired(p99s(name), p99s('direct'), (a, b) => a - b));
    const partAdded = (name: string, why: string): Measured<Summary> => (target(name) ? { ok: true, value: addedP99(name) } : { ok: false, reason: why });
    const whyNot = (name: PartName) => {
      const p = parts.find((x) => x.name === name);
      return p && !p.ok ? p.reason : 'not started';
    };
    const fNginxRuns = merged('nginx');
    return {
      wrk: { direct: wDirect, nginx: wNginx, cellhost: wCellhost },
      ratios,
      fixed: { direct: merged('direct')!, nginx: fNginxRuns ? { ok: true, value: fNginxRuns } : { ok: false, reason: nginxWhy }, cellhost: merged('cellhost')! },
      addedP99: addedP99('cellhost'),
      addedP99Parts: { nginx: partAdded('nginx', nginxWhy), pipe: partAdded('pipe', whyNot('pipe')), datapath: partAdded('datapath', whyNot('datapath')) },
      fixedWarmUp: { direct: target('direct')!.warmUp!, cellhost: target('cellhost')!.warmUp! },
      fixedGenerator: generator.name,
      upstream,
      nginxWorkers: nginx instanceof Error ? 0 : nginx.workers,
    };
  } finally {
    await stopNginx();
    http.globalAgent.destroy();
  }
}

type PartName = 'pipe' | 'datapath';
type Part = { name: PartName } & ({ ok: true; port: number; stop(): Promise<void> } | { ok: false; reason: string });

const PARTS: { name: PartName; script: string; args: (upstream: { host: string; port: number }, port: number) => string[] }[] = [
  { name: 'pipe', script: 'tcp-pipe.ts', args: (u, port) => [u.host, String(u.port), String(port)] },
  { name: 'datapath', script: 'router-worker.ts', args: (u, port) => [String(u.port), String(port), '1', u.host] },
];

/** the reference processes, each listening on loopback in front of the instance, or why not */
async function startParts(upstream: { host: string; port: number }): Promise<Part[]> {
  const parts: Part[] = [];
  for (const def of PARTS) {
    const port = await freePortSync();
    const script = fileURLToPath(new URL(`./${def.script}`, import.meta.url));
    try {
      const child = await startChild(process.execPath, ['--import', 'tsx', script, ...def.args(upstream, port)], {}, /ready/);
      parts.push({ name: def.name, ok: true, port, stop: child.stop });
    } catch (err) {
      parts.push({ name: def.name, ok: false, reason: (err as Error).message.split('\n')[0]! });
    }
  }
  return parts;
}
