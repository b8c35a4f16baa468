// Idle footprint: a fresh platform process with many services registered and none warm; its
// resident memory (VmRSS) and CPU time (utime + stime) over a few seconds of doing nothing.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchPlatform } from './platform.ts';
import { clockTicksPerS, readCpuTicks, readRssMb } from './proc-stats.ts';
import { sleep } from './stats.ts';

// the first window starts 2 s after the last registration; the steady one 10 s after, when
// the collector and compiler have finished with what registering left behind
export const IDLE = { services: Number(process.env.BENCH_IDLE_SERVICES ?? 1000), windowMs: 5000, settleMs: 2000, steadyAfterMs: 10_000 };
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface IdleResult {
  services: number;
  rssMb: number;
  /** RSS of the same platform right after start, before any service was registered */
  rssEmptyMb: number;
  /** what a bare `node` process takes: the floor the platform's RSS stands on */
  rssNodeMb: number;
  /** CPU over the steady window (IDLE.steadyAfterMs after registering) */
  cpuPercentOfCore: number;
  /** CPU over the window right after registering (IDLE.settleMs after) */
  cpuAfterRegisterPercentOfCore: number;
  /** the same window's CPU before any service was registered */
  cpuEmptyPercentOfCore: number;
  windowMs: number;
  registerMs: number;
  /** time the first and the last 100 creates took: a create's cost growing with the count shows here */
  firstHundredMs: number;
  lastHundredMs: number;
}

/** RSS of a node process that loaded nothing */
async function measureBareNode(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { cwd: ROOT, stdio: 'ignore', env: { PATH: process.env.PATH } });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await sleep(1500);
    return readRssMb(child.pid!);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/** CPU the process used over IDLE.windowMs, in % of one core */
async function measureCpuPercent(pid: number, hz: number): Promise<number> {
  const ticks0 = readCpuTicks(pid);
  const t0 = performance.now();
  await sleep(IDLE.windowMs);
  const ticks1 = readCpuTicks(pid);
  return ((ticks1 - ticks0) / hz / ((performance.now() - t0) / 1000)) * 100;
}

export async function benchIdle(platform: BenchPlatform): Promise<IdleResult> {
  const hz = await clockTicksPerS();
  await sleep(1000);
  const rssEmptyMb = readRssMb(platform.pid);
  const cpuEmptyPercentOfCore = await measureCpuPercent(platform.pid, hz);
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let firstHundredMs = 0;
  let lastHundredStart = 0;
  // a few creates at a time: quick, and not a load test of the API
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < IDLE.services) {
        const name = `idle-${String(next++).padStart(4, '0')}`;
        const res = await platform.api('POST', '/api/v1/services', { name, runtime: 'node' });
        if (res.status !== 201) throw new Error(`creating ${name}: ${res.status} ${JSON.stringify(res.body)}`);
        done++;
        if (done === 100) firstHundredMs = performance.now() - t0;
        if (done === IDLE.services - 100) lastHundredStart = performance.now();
      }
    }),
  );
  const registerMs = performance.now() - t0;
  const lastHundredMs = performance.now() - lastHundredStart;
  const registeredAt = performance.now();
  await sleep(IDLE.settleMs);
  const cpuAfterRegisterPercentOfCore = await measureCpuPercent(platform.pid, hz);
  await sleep(Math.max(0, registeredAt + IDLE.steadyAfterMs - performance.now()));
  const cpuPercentOfCore = await measureCpuPercent(platform.pid, hz);
  const rssMb = readRssMb(platform.pid);
  return {
    services: IDLE.services,
    rssMb,
    rssEmptyMb,
    rssNodeMb: await measureBareNode(),
    cpuPercentOfCore,
    cpuAfterRegisterPercentOfCore,
    cpuEmptyPercentOfCore,
    windowMs: IDLE.windowMs,
    registerMs,
    firstHundredMs,
    lastHundredMs,
  };
}
