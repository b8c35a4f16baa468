// Burst: 200 requests at once at a service with no instance (concurrency 10, max instances 20),
// each on its own connection. Counted: errors, the slowest answer, how many instances it took.
// The requests come from test/bench/loadgen (Go) where go is installed, else from this process.
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { FIXTURES } from '../helpers/server.ts';
import { nodeApp, spawnBare, waitScaledToZero } from './cold-start.ts';
import { buildLoadgen } from './go-build.ts';
import type { BenchPlatform } from './platform.ts';
import { clockTicksPerS, readCpuNs, readCpuTicks, readInstancesCpuMs } from './proc-stats.ts';
import { median, paired, percentile, sleep, summarize, type Summary } from './stats.ts';

const SERVICE = 'burst';
export const BURST = { requests: 200, concurrency: 10, maxInstances: 20 };

export interface BurstResult {
  /** what sent the requests: the Go load generator, or node (and why) */
  generator: string;
  requests: number;
  rounds: number;
  /** errors over all rounds, and what they were */
  errors: number;
  errorKinds: Record<string, number>;
  /** per round: the median and the last answer, ms from the burst's start */
  p50Ms: Summary;
  maxMs: Summary;
  /** per round: the last answer ÷ the bare burst of the same round */
  vsBare: Summary;
  /** instances the rounds ended with (median) */
  instances: number;
  /** spawn → ready of each instance the bursts started */
  instanceStartP50Ms: number;
  instanceStartMaxMs: number;
  /** CPU the platform process and all app instances used per burst */
  platformCpuMs: Summary;
  appsCpuMs: Summary;
  /** the same burst with no platform: a bare spawn of the app, its port polled every 1 ms, then the
   *  requests straight at it; spawn → last answer, one per round */
  bareMs: Summary;
  /** the one-shot requests the router served first, and its CPU per round of BURST.requests */
  warmUp: { requests: number; firstRoundCpuMs: number; lastRoundsCpuMs: number };
}

export const BURST_ROUNDS = Math.max(1, Number(process.env.BENCH_BURST_ROUNDS ?? 5));


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
export type Generator = { name: string; run(port: number, host: string): Promise<BurstRun> };

/** the Go load generator, built for this run; else node, and why */
export async function prepareGenerator(): Promise<Generator & { cleanup?(): void }> {
  const built = await buildLoadgen();
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

/** the same burst at a bare spawn of the app: spawn → the last answer */
async function burstBare(generator: Generator): Promise<number> {
  return spawnBare(nodeApp(), async (port) => {
    const r = await generator.run(port, 'localhost');
    if (Object.keys(r.kinds).length) throw new Error(`the bare app's burst had errors: ${JSON.stringify(r.kinds)}`);
  });
}

/**
 * BURST_ROUNDS bursts at the service scaled to zero (its standby prepared, as after any scale to
 * zero), each beside a bare burst. `service` is deployed by the caller with the burst's settings
 * when given (the prewarmed rows reuse this on their own service).
 */
export async function runBurstRounds(platform: BenchPlatform, generator: Generator, service: string, opts: { rounds?: number; before?: () => Promise<void>; withBare?: boolean; log?: (line: string) => void } = {}) {
  const rounds = opts.rounds ?? BURST_ROUNDS;
  const p50: number[] = [];
  const max: number[] = [];
  const bare: number[] = [];
  const platformCpu: number[] = [];
  const appsCpu: number[] = [];
  const instances: number[] = [];
  const starts: number[] = [];
  const kinds: Record<string, number> = {};
  for (let i = 0; i < rounds; i++) {
    await waitScaledToZero(platform, service, 30_000);
    // as the cold-start rows: the standby is prepared in the ~0.2 s after the scale to zero
    await sleep(500);
    await opts.before?.();
    const cpu0 = readCpuNs(platform.pid);
    const apps0 = readInstancesCpuMs(platform.cgroupPrefix);
    const r = await generator.run(platform.routerPort, `${service}.localhost`);
    platformCpu.push((readCpuNs(platform.pid) - cpu0) / 1e6);
    const apps1 = readInstancesCpuMs(platform.cgroupPrefix);
    if (apps0 !== null && apps1 !== null) appsCpu.push(apps1 - apps0);
    for (const [k, v] of Object.entries(r.kinds)) kinds[k] = (kinds[k] ?? 0) + v;
    p50.push(percentile(r.doneMs, 50));
    max.push(percentile(r.doneMs, 100));
    const view = await platform.service(service);
    instances.push(view.instances.length);
    starts.push(...(view.instances as { startedAt: string; readyAt: string | null }[]).filter((x) => x.readyAt).map((x) => Date.parse(x.readyAt!) - Date.parse(x.startedAt)));
    if (opts.withBare !== false) bare.push(await burstBare(generator));
    opts.log?.(`burst ${service}: round ${i + 1} of ${rounds}: last answer ${max.at(-1)!.toFixed(1)} ms${bare.length ? `, bare ${bare.at(-1)!.toFixed(1)} ms` : ''}`);
  }
  return { p50, max, bare, platformCpu, appsCpu, instances, starts, kinds };
}

export async function benchBurst(platform: BenchPlatform, generator: Generator, log: (line: string) => void = () => {}): Promise<BurstResult> {
  const hz = await clockTicksPerS();
  const warmUp = await warmRouter(platform, generator, hz);
  await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), {
    runtime: 'node',
    buildCommand: 'true',
    startCommand: 'node app.js',
    concurrency: BURST.concurrency,
    maxInstances: BURST.maxInstances,
    // scaled to zero between rounds
    idleTimeoutS: 1,
  });
  const r = await runBurstRounds(platform, generator, SERVICE, { log });
  return {
    generator: generator.name,
    requests: BURST.requests,
    rounds: r.max.length,
    errors: Object.values(r.kinds).reduce((a, b) => a + b, 0),
    errorKinds: r.kinds,
    p50Ms: summarize(r.p50),
    maxMs: summarize(r.max),
    vsBare: summarize(paired(r.max, r.bare, (a, b) => a / b)),
    instances: median(r.instances),
    instanceStartP50Ms: median(r.starts),
    instanceStartMaxMs: percentile(r.starts, 100),
    platformCpuMs: summarize(r.platformCpu),
    appsCpuMs: summarize(r.appsCpu),
    bareMs: summarize(r.bare),
    warmUp,
  };
}
