// Open-loop load at a fixed rate (wrk cannot hold one): requests go out on a schedule, N per
// second over keep-alive connections, whatever the server does, and each one's latency is timed
// from the moment it was sent to the end of its response. The Go load generator
// (test/bench/loadgen, -fixed) sends them where go is installed, else this process does: on a
// 2-core host the client shares the CPU with what it measures, and a Node client's own
// event-loop and GC stalls land in the tail of whatever it measures.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import readline from 'node:readline';
import { deferCleanup } from './cleanup.ts';
import { buildLoadgen } from './go-build.ts';
import { percentile } from './stats.ts';

export interface FixedRateOptions {
  port: number;
  host?: string;
  /** the Host header, for the router */
  hostHeader?: string;
  ratePerS: number;
  durationMs: number;
  /** requests still open past this many are not sent: the schedule is not allowed to pile up */
  maxInFlight?: number;
  requestTimeoutMs?: number;
  /** a keep-alive agent kept across runs (its connections stay open); else one for this run */
  agent?: http.Agent;
  /** over HTTPS: the CA to trust and the server name to ask for */
  tls?: { ca: string; servername: string };
}

export interface FixedRateResult {
  sent: number;
  ok: number;
  errors: number;
  /** scheduled requests not sent because maxInFlight were still open */
  skipped: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** every successful request's latency, ms */
  latencies: number[];
}

/** several runs against one target as one result */
export function mergeFixedRate(runs: FixedRateResult[]): FixedRateResult {
  const latencies = runs.flatMap((r) => r.latencies);
  const sum = (f: (r: FixedRateResult) => number) => runs.reduce((a, r) => a + f(r), 0);
  return {
    sent: sum((r) => r.sent),
    ok: sum((r) => r.ok),
    errors: sum((r) => r.errors),
    skipped: sum((r) => r.skipped),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: percentile(latencies, 100),
    latencies,
  };
}

async function runFixedRate(opts: FixedRateOptions): Promise<FixedRateResult> {
  const agent = opts.agent ?? new (opts.tls ? https : http).Agent({ keepAlive: true, maxSockets: 64 });
  const client = opts.tls ? https : http;
  const tls = opts.tls ? { ca: opts.tls.ca, servername: opts.tls.servername } : {};
  const total = Math.round((opts.ratePerS * opts.durationMs) / 1000);
  const maxInFlight = opts.maxInFlight ?? 64;
  const timeoutMs = opts.requestTimeoutMs ?? 2000;
  const headers = opts.hostHeader ? { host: opts.hostHeader } : {};
  const latencies: number[] = [];
  let sent = 0;
  let skipped = 0;
  let errors = 0;
  let inFlight = 0;
  let onIdle: (() => void) | null = null;

  const settle = () => {
    inFlight--;
    if (inFlight === 0 && onIdle) onIdle();
  };
  const fire = () => {
    inFlight++;
    const t0 = performance.now();
    const req = client.request({ host: opts.host ?? '127.0.0.1', port: opts.port, path: '/', headers, agent, timeout: timeoutMs, ...tls }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
        else errors++;
        settle();
      });
      res.on('error', () => {
        errors++;
        settle();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      errors++;
      settle();
    });
    req.end();
  };

  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * opts.ratePerS) / 1000));
      while (sent + skipped < due) {
        if (inFlight >= maxInFlight) skipped++;
        else {
          sent++;
          fire();
        }
      }
      if (sent + skipped < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  // the last responses: bounded by the request timeout
  if (inFlight > 0) await new Promise<void>((resolve) => ((onIdle = resolve), setTimeout(resolve, timeoutMs + 500)));
  if (!opts.agent) agent.destroy();
  return resultOf(sent, errors, skipped, latencies);
}

/** where a fixed-rate round goes; rounds of one `name` reuse its connections */
export interface FixedRateTarget {
  name: string;
  port: number;
  host: string;
  hostHeader?: string;
  tls?: { ca: string; servername: string };
}

export interface FixedRateGenerator {
  /** what sends the requests: go, or node (and why not go) */
  name: string;
  run(t: FixedRateTarget, ratePerS: number, durationMs: number): Promise<FixedRateResult>;
  close(): Promise<void>;
}

const MAX_IN_FLIGHT = 64;
const TIMEOUT_MS = 2000;

/** the Go generator, built for this run; else this process, with an agent per target */
export async function prepareFixedRate(): Promise<FixedRateGenerator> {
  const built = await buildLoadgen();
  if (typeof built === 'string') return nodeFixedRate(`node (${built.split('\n')[0]})`);
  // one thread runs its Go code, as wrk -t1 runs one: at 1000 req/s it needs no more, and idle
  // Go threads spinning for work would take turns on the two cores from what is measured
  const child = spawn(built.binary, ['-fixed'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GOMAXPROCS: '1' } });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const caFiles = new Map<string, string>();
  const close = deferCleanup(async () => {
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        child.once('exit', () => (clearTimeout(timer), resolve()));
      });
    }
    built.cleanup();
  });
  return {
    name: 'go (test/bench/loadgen -fixed)',
    async run(t, ratePerS, durationMs) {
      let caFile = '';
      if (t.tls) {
        caFile = caFiles.get(t.name) ?? path.join(built.dir, `ca-${caFiles.size}.pem`);
        if (!caFiles.has(t.name)) fs.writeFileSync(caFile, t.tls.ca);
        caFiles.set(t.name, caFile);
      }
      const round = { target: t.name, ip: t.host, port: t.port, host: t.hostHeader ?? '', ratePerS, durationMs, maxInFlight: MAX_IN_FLIGHT, timeoutMs: TIMEOUT_MS, caFile, serverName: t.tls?.servername ?? '' };
      child.stdin!.write(`${JSON.stringify(round)}\n`);
      const next = await lines.next();
      if (next.done) throw new Error(`the load generator exited (${child.exitCode ?? child.signalCode})`);
      const r = JSON.parse(next.value) as { sent: number; errors: number; skipped: number; latenciesMs: number[]; error?: string };
      if (r.error) throw new Error(`the load generator: ${r.error}`);
      return resultOf(r.sent, r.errors, r.skipped, r.latenciesMs);
    },
    close,
  };
}

function nodeFixedRate(name: string): FixedRateGenerator {
  const agents = new Map<string, http.Agent>();
  return {
    name,
    run(t, ratePerS, durationMs) {
      let agent = agents.get(t.name);
      if (!agent) agents.set(t.name, (agent = new (t.tls ? https : http).Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT })));
      return runFixedRate({ port: t.port, host: t.host, hostHeader: t.hostHeader, tls: t.tls, agent, ratePerS, durationMs, maxInFlight: MAX_IN_FLIGHT, requestTimeoutMs: TIMEOUT_MS });
    },
    async close() {
      for (const a of agents.values()) a.destroy();
    },
  };
}

function resultOf(sent: number, errors: number, skipped: number, latencies: number[]): FixedRateResult {
  return { sent, ok: latencies.length, errors, skipped, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: percentile(latencies, 100), latencies };
}
