// An open-loop load generator (wrk cannot hold a fixed rate): requests go out on a schedule,
// N per second over keep-alive connections, whatever the server does, and each one's latency
// is timed from the moment it was sent to the end of its response.
import http from 'node:http';
import https from 'node:https';
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

export async function runFixedRate(opts: FixedRateOptions): Promise<FixedRateResult> {
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
  return {
    sent,
    ok: latencies.length,
    errors,
    skipped,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: percentile(latencies, 100),
    latencies,
  };
}
