// Burst: 200 requests at once at a service with no instance (concurrency 10, max instances 20),
// each on its own connection. Counted: errors, the slowest answer, how many instances it took.
// The requests come from test/bench/loadgen (Go) where go is installed, else from this process.
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../helpers/server.ts';
import { nodeApp, spawnBare } from './cold-start.ts';
import { goBuild } from './go-build.ts';
import type { BenchPlatform } from './platform.ts';
import { clockTicksPerS, readCpuTicks, readInstancesCpuMs } from './proc-stats.ts';
import { median, percentile, sleep } from './stats.ts';

const SERVICE = 'burst';
export const BURST = { requests: 200, concurrency: 10, maxInstances: 20 };

export interface BurstResult {
  /** what sent the requests: the Go load generator, or node (and why) */
  generator: string;
  requests: number;
  errors: number;
  errorKinds: Record<string, number>;
  p50Ms: number;
  maxMs: number;
  instances: number;
  /** spawn → ready of each instance the burst started */
  instanceStartP50Ms: number;
  instanceStartMaxMs: number;
  /** CPU the platform process and all app instances used during the burst */
  platformCpuMs: number;
  appsCpuMs: number | null;
  /** the same burst with no platform: a bare spawn of the app, its port polled every 1 ms, then the
   *  requests straight at it; spawn → last answer, median of BARE_RUNS */
  bareMs: number;
  /** the one-shot requests the router served first, and its CPU per round of BURST.requests */
  warmUp: { requests: number; firstRoundCpuMs: number; lastRoundsCpuMs: number };
}

const BARE_RUNS = 3;

/**
 * One GET on its own connection, as lean as the client side can be (a raw socket, the status
 * line read, `Connection: close`): 200 of node's http.get cost the generator ~80 ms of CPU on
 * the same two cores before the last one is even sent, which is not the platform's time.
 */
export function rawGet(port: number, host: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    let status = 0;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      if (status) return;
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) status = Number(m[1]);
    });
    socket.on('error', reject);
    // the whole response has come when the server closes (Connection: close)
    socket.on('close', () => (status ? resolve(status) : reject(new Error('the connection closed without a response'))));
  });
}

/** the answers of one burst: ms from its start to each 200, and what else came back, by kind */
interface BurstRun {
  doneMs: number[];
  kinds: Record<string, number>;
}
type Generator = { name: string; run(port: number, host: string): Promise<BurstRun> };

const LOADGEN_DIR = fileURLToPath(new URL('./loadgen', import.meta.url));

/** the Go load generator, built for this run; else node, and why */
export async function prepareGenerator(): Promise<Generator & { cleanup?(): void }> {
  const built = await goBuild(LOADGEN_DIR, ['main.go', 'go.mod'], 'loadgen');
  if (typeof built === 'string') return { name: `node (${built.split('\n')[0]})`, run: nodeBurst };
  return {
    name: 'go (test/bench/loadgen)',
    cleanup: built.cleanup,
    run: (port, host) =>
      new Promise((resolve, reject) =>
        execFile(built.binary, ['-port', String(port), '-host', host, '-n', String(BURST.requests), '-timeout-ms', '60000'], { timeout: 90_000 }, (err, out, stderr) => {
          if (err) return reject(new Error(`loadgen failed: ${stderr || err.message}`));
          const r = JSON.parse(out) as { doneMs: number[]; status: Record<string, number>; errors: Record<string, number> };
          resolve({ doneMs: r.doneMs, kinds: { ...r.status, ...r.errors } });
        }),
      ),
  };
}

async function nodeBurst(port: number, host: string): Promise<BurstRun> {
  const kinds: Record<string, number> = {};
  const doneMs: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: BURST.requests }, async () => {
      try {
        const status = await rawGet(port, host, 60_000);
        if (status === 200) doneMs.push(performance.now() - t0);
        else kinds[String(status)] = (kinds[String(status)] ?? 0) + 1;
      } catch (err) {
        const key = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        kinds[key] = (kinds[key] ?? 0) + 1;
      }
    }),
  );
  return { doneMs, kinds };
}

/**
 * The router as a platform that has served traffic has it: V8 has compiled its
 * connection-per-request path. A just-started process runs its first requests in the
 * interpreter and then spends its other threads compiling them: measured here, the platform's
 * CPU per round of 200 one-shot requests was 340 ms in the first round, ~130 ms in the fifth
 * (half of it in V8's compiler threads) and 40-60 ms from about the twelfth on. WARM_ROUNDS is
 * past that; tiering up counts calls, not time, so the same count suits a faster host.
 */
const WARM_ROUNDS = 20;

async function warmRouter(platform: BenchPlatform, generator: Generator, hz: number): Promise<BurstResult['warmUp']> {
  await platform.deploy(`${SERVICE}-warmup`, path.join(FIXTURES, 'node-hello'), { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', idleTimeoutS: 3600 });
  const roundCpuMs: number[] = [];
  for (let i = 0; i < WARM_ROUNDS; i++) {
    const ticks0 = readCpuTicks(platform.pid);
    await generator.run(platform.routerPort, `${SERVICE}-warmup.localhost`);
    roundCpuMs.push(((readCpuTicks(platform.pid) - ticks0) / hz) * 1000);
  }
  return { requests: WARM_ROUNDS * BURST.requests, firstRoundCpuMs: roundCpuMs[0]!, lastRoundsCpuMs: median(roundCpuMs.slice(-5)) };
}

async function burstBare(generator: Generator): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < BARE_RUNS; i++) {
    runs.push(
      await spawnBare(nodeApp(), async (port) => {
        const r = await generator.run(port, 'localhost');
        const errors = Object.entries(r.kinds);
        if (errors.length) throw new Error(`the bare app's burst had errors: ${JSON.stringify(r.kinds)}`);
      }),
    );
  }
  return median(runs);
}

export async function benchBurst(platform: BenchPlatform, generator: Generator): Promise<BurstResult> {
  const bareMs = await burstBare(generator);
  const hz = await clockTicksPerS();
  const warmUp = await warmRouter(platform, generator, hz);
  await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), {
    runtime: 'node',
    buildCommand: 'true',
    startCommand: 'node app.js',
    concurrency: BURST.concurrency,
    maxInstances: BURST.maxInstances,
    idleTimeoutS: 3600,
  });
  // as the cold-start rows: the deploy's standby is prepared in the ~0.2 s after it goes live
  await sleep(500);
  const platformTicks0 = readCpuTicks(platform.pid);
  const appsCpu0 = readInstancesCpuMs(platform.cgroupPrefix);
  const { doneMs: latencies, kinds } = await generator.run(platform.routerPort, `${SERVICE}.localhost`);
  const platformCpuMs = ((readCpuTicks(platform.pid) - platformTicks0) / hz) * 1000;
  const appsCpu1 = readInstancesCpuMs(platform.cgroupPrefix);
  const view = await platform.service(SERVICE);
  const starts = (view.instances as { startedAt: string; readyAt: string | null }[]).filter((i) => i.readyAt).map((i) => Date.parse(i.readyAt!) - Date.parse(i.startedAt));
  return {
    generator: generator.name,
    requests: BURST.requests,
    errors: Object.values(kinds).reduce((a, b) => a + b, 0),
    errorKinds: kinds,
    p50Ms: percentile(latencies, 50),
    maxMs: percentile(latencies, 100),
    instances: view.instances.length,
    instanceStartP50Ms: median(starts),
    instanceStartMaxMs: percentile(starts, 100),
    platformCpuMs,
    appsCpuMs: appsCpu0 === null || appsCpu1 === null ? null : appsCpu1 - appsCpu0,
    bareMs,
    warmUp,
  };
}
