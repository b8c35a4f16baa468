// Proxy throughput and latency, same run, same app instance: wrk straight at the instance, at
// nginx in front of it, and at cellhost's router (Host header); then a fixed 1000 req/s through
// each to see what the proxy adds to p99 when nothing is saturated.
import http from 'node:http';
import path from 'node:path';
import { FIXTURES } from '../helpers/server.ts';
import { deferCleanup } from './cleanup.ts';
import { mergeFixedRate, runFixedRate, type FixedRateResult } from './fixed-rate.ts';
import { findListenAddress } from './instance-address.ts';
import { startNginx } from './nginx.ts';
import { getViaRouter, type BenchPlatform } from './platform.ts';
import { findBinary, runWrk, type WrkResult } from './wrk.ts';

const SERVICE = 'proxy';
const HOST = `${SERVICE}.localhost`;
// warmUpMs: after wrk, the router's JIT re-settles on the new traffic (other clients, other
// header shapes: V8 deoptimizes the request path and takes a few seconds at 1000 req/s to
// optimize it again); measured here, its p99 stays 3-7 ms for the first ~4 s, then 1.3-2 ms
export const WRK_ROUNDS = 3;
const WRK_WARM_UP_S = 5;
export const FIXED_RATE = { ratePerS: 1000, durationMs: 5000, sliceMs: 1000, warmUpMs: 5000 };

export type Measured<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface ProxyResults {
  wrk: { direct: Measured<WrkResult>; nginx: Measured<WrkResult>; cellhost: Measured<WrkResult> };
  fixed: { direct: FixedRateResult; nginx: Measured<FixedRateResult>; cellhost: FixedRateResult };
  /** the same rate during the warm-up before those, shown beside them */
  fixedWarmUp: { direct: FixedRateResult; cellhost: FixedRateResult };
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

    // wrk's runs take turns as well (each round in another order), WRK_ROUNDS of them, and each
    // target's figure is its median run by req/s: one noisy window of the shared machine moved a
    // single run's ratio by ±10 %
    type Closed = { name: string; url: string | null; host?: string; why: string; runs: WrkResult[]; error?: string };
    const nginxWhy = nginx instanceof Error ? nginx.message.split('\n')[0]! : '';
    const closed: Closed[] = [
      { name: 'direct', url: directUrl, why: '', runs: [] },
      { name: 'nginx', url: nginxUrl, host: HOST, why: nginxWhy, runs: [] },
      { name: 'cellhost', url: routerUrl, host: HOST, why: '', runs: [] },
    ];
    const usable = (c: Closed) => wrk !== null && c.url !== null && c.error === undefined;
    const attempt = async (c: Closed, durationS?: number) => {
      const r = await measure(() => runWrk(wrk!, c.url!, { host: c.host, durationS }));
      if (!r.ok) c.error = r.reason;
      return r;
    };
    // a warm-up each fills connection pools and JIT caches; only the runs after it count (with
    // 1 s, the router's first measured run was still 5-15 % below its later ones)
    for (const c of closed) if (usable(c)) await attempt(c, WRK_WARM_UP_S);
    for (let round = 0; round < WRK_ROUNDS; round++) {
      log(`proxy: wrk round ${round + 1} of ${WRK_ROUNDS}`);
      for (let k = 0; k < closed.length; k++) {
        const c = closed[(round + k) % closed.length]!;
        if (!usable(c)) continue;
        const r = await attempt(c);
        if (r.ok) c.runs.push(r.value);
        log(`proxy: wrk ${c.name}: ${r.ok ? `${Math.round(r.value.requestsPerS)} req/s` : r.reason}`);
      }
    }
    const closedResult = (name: string): Measured<WrkResult> => {
      const c = closed.find((x) => x.name === name)!;
      if (!wrk) return { ok: false, reason: 'wrk is not installed (apt-get install wrk)' };
      if (!c.url) return { ok: false, reason: c.why };
      if (c.error !== undefined) return { ok: false, reason: c.error };
      return { ok: true, value: [...c.runs].sort((a, b) => a.requestsPerS - b.requestsPerS)[Math.floor(c.runs.length / 2)]! };
    };
    const wDirect = closedResult('direct');
    const wNginx = closedResult('nginx');
    const wCellhost = closedResult('cellhost');

    // the fixed-rate runs take turns in 1 s slices, so a stall of the (shared) machine lands on
    // one target's slice, not on a whole 5 s run of it; each target keeps its connections
    type Target = { name: string; port: number; host: string; hostHeader?: string; agent: http.Agent; runs: FixedRateResult[]; warmUp?: FixedRateResult };
    const targets: Target[] = [
      { name: 'direct', port: upstream.port, host: upstream.host },
      ...(nginx instanceof Error ? [] : [{ name: 'nginx', port: nginx.port, host: '127.0.0.1', hostHeader: HOST }]),
      { name: 'cellhost', port: platform.routerPort, host: '127.0.0.1', hostHeader: HOST },
    ].map((t) => ({ ...t, agent: new http.Agent({ keepAlive: true, maxSockets: 64 }), runs: [] }));
    try {
      const slice = (t: Target, durationMs: number) => runFixedRate({ port: t.port, host: t.host, hostHeader: t.hostHeader, agent: t.agent, ratePerS: FIXED_RATE.ratePerS, durationMs });
      log(`proxy: ${FIXED_RATE.ratePerS} req/s warm-up, ${FIXED_RATE.warmUpMs} ms per target`);
      for (const t of targets) t.warmUp = await slice(t, FIXED_RATE.warmUpMs);
      const rounds = Math.round(FIXED_RATE.durationMs / FIXED_RATE.sliceMs);
      log(`proxy: ${FIXED_RATE.ratePerS} req/s, ${rounds} slices of ${FIXED_RATE.sliceMs} ms per target, taking turns`);
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < targets.length; k++) {
          const t = targets[(round + k) % targets.length]!;
          t.runs.push(await slice(t, FIXED_RATE.sliceMs));
        }
      }
    } finally {
      for (const t of targets) t.agent.destroy();
    }
    const merged = (name: string) => {
      const t = targets.find((x) => x.name === name);
      return t ? mergeFixedRate(t.runs) : null;
    };
    const fDirect = merged('direct')!;
    const fCellhost = merged('cellhost')!;
    const fNginxRuns = merged('nginx');
    const fNginx: Measured<FixedRateResult> = fNginxRuns ? { ok: true, value: fNginxRuns } : { ok: false, reason: nginxWhy };
    return {
      wrk: { direct: wDirect, nginx: wNginx, cellhost: wCellhost },
      fixed: { direct: fDirect, nginx: fNginx, cellhost: fCellhost },
      fixedWarmUp: { direct: targets.find((t) => t.name === 'direct')!.warmUp!, cellhost: targets.find((t) => t.name === 'cellhost')!.warmUp! },
      upstream,
      nginxWorkers: nginx instanceof Error ? 0 : nginx.workers,
    };
  } finally {
    await stopNginx();
    http.globalAgent.destroy();
  }
}
