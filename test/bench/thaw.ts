// Thaw latency: a warm instance idle past CELLHOST_FREEZE_AFTER_S is frozen by the cgroup
// freezer; the next request's time (thaw + proxy + app) against a warm request's, both on the
// same keep-alive connection through the router, in rounds (warm, warm after a short idle, thaw).
// Median of BENCH_THAW_RUNS rounds (default 10), with the platform's CPU per thaw (/proc).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { FIXTURES } from '../helpers/server.ts';
import { getViaRouter, type BenchPlatform } from './platform.ts';
import { readCpuNs } from './proc-stats.ts';
import { paired, sleep, summarize, type Summary } from './stats.ts';

const SERVICE = 'thaw';
const HOST = `${SERVICE}.localhost`;
export const THAW_RUNS = Math.max(1, Number(process.env.BENCH_THAW_RUNS ?? 10));

// shorter than the freeze delay: the instance is idle as long as the machine lets a vCPU sleep,
// but not frozen, which separates the thaw from the cost of waking an idle machine
const IDLE_GAP_MS = 150;

export interface ThawResult {
  runs: number;
  /** a request right after another one */
  warm: Summary;
  /** a request after IDLE_GAP_MS of idleness, not frozen */
  warmAfterIdle: Summary;
  idleGapMs: number;
  thaw: Summary;
  /** per round: the thaw − the warm request of the same round */
  overWarm: Summary;
  /** CPU the platform process spent on the request that thawed (freezer write, proxy), ms */
  platformCpuMs: Summary;
  /** the same for a warm request, for comparison */
  warmPlatformCpuMs: Summary;
  /** whether "frozen" was confirmed in the cgroup's freezer.state, not only in the service view */
  confirmedByCgroup: boolean;
}

function freezerState(platform: BenchPlatform, instanceId: string): string | null {
  try {
    return fs.readFileSync(path.join('/sys/fs/cgroup/freezer', platform.cgroupPrefix, instanceId, 'freezer.state'), 'utf8').trim();
  } catch {
    return null;
  }
}

async function waitFrozen(platform: BenchPlatform): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const inst = (await platform.service(SERVICE)).instances?.[0];
    if (inst?.frozen) {
      // the view flips before the freezer write lands: wait for the kernel to say FROZEN
      for (let i = 0; i < 200; i++) {
        const state = freezerState(platform, inst.id);
        if (state === null) return false;
        if (state === 'FROZEN') return true;
        await sleep(5);
      }
      return false;
    }
    if (Date.now() > deadline) throw new Error('the instance was not frozen within 10 s');
    await sleep(20);
  }
}

async function timeGet(port: number, agent: http.Agent): Promise<number> {
  const t0 = performance.now();
  const status = await getViaRouter(port, HOST, agent, 10_000);
  const ms = performance.now() - t0;
  if (status !== 200) throw new Error(`thaw service answered ${status}`);
  return ms;
}

/** the platform must run with a small CELLHOST_FREEZE_AFTER_S (e.g. 0.2) */
export async function benchThaw(platform: BenchPlatform): Promise<ThawResult> {
  await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', idleTimeoutS: 3600 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const warm: number[] = [];
  const warmAfterIdle: number[] = [];
  const thaw: number[] = [];
  const cpuThaw: number[] = [];
  const cpuWarm: number[] = [];
  let confirmed = true;
  const cpuMs = () => readCpuNs(platform.pid) / 1e6;
  try {
    await timeGet(platform.routerPort, agent);
    for (let i = 0; i <= THAW_RUNS; i++) {
      await timeGet(platform.routerPort, agent);
      const c0 = cpuMs();
      const w = await timeGet(platform.routerPort, agent);
      const cw = cpuMs() - c0;
      await sleep(IDLE_GAP_MS);
      const wi = await timeGet(platform.routerPort, agent);
      confirmed = (await waitFrozen(platform)) && confirmed;
      const c1 = cpuMs();
      const t = await timeGet(platform.routerPort, agent);
      const ct = cpuMs() - c1;
      // round 0 is a warm-up
      if (i > 0) {
        warm.push(w);
        warmAfterIdle.push(wi);
        thaw.push(t);
        cpuWarm.push(cw);
        cpuThaw.push(ct);
      }
    }
  } finally {
    agent.destroy();
  }
  return {
    runs: THAW_RUNS,
    warm: summarize(warm),
    warmAfterIdle: summarize(warmAfterIdle),
    idleGapMs: IDLE_GAP_MS,
    thaw: summarize(thaw),
    overWarm: summarize(paired(thaw, warm, (a, b) => a - b)),
    platformCpuMs: summarize(cpuThaw),
    warmPlatformCpuMs: summarize(cpuWarm),
    confirmedByCgroup: confirmed,
  };
}
