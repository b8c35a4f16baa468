// wrk as the closed-loop load generator: `wrk -t1 -c32 -d5s --latency`, its text output parsed.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { deferCleanup } from './cleanup.ts';

export interface WrkResult {
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** socket errors (connect, read, write, timeout) plus non-2xx/3xx answers */
  errors: number;
}

export const WRK_ARGS = { threads: 1, connections: 32, durationS: 5 };

export function findBinary(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat('/usr/sbin', '/sbin')) {
    try {
      fs.accessSync(`${dir}/${name}`, fs.constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return null;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !p50 || !p99 || !total) throw new Error(`unexpected wrk output:\n${out}`);
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) errors += sock.slice(1).reduce((a, b) => a + Number(b), 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  return { requestsPerS: Number(rps[1]), p50Ms: toMs(p50[1]!, p50[2]!), p99Ms: toMs(p99[1]!, p99[2]!), requests: Number(total[1]), errors };
}

export function runWrk(wrk: string, url: string, opts: { host?: string; durationS?: number; headers?: string[] } = {}): Promise<WrkResult> {
  const durationS = opts.durationS ?? WRK_ARGS.durationS;
  const args = [`-t${WRK_ARGS.threads}`, `-c${WRK_ARGS.connections}`, `-d${durationS}s`, '--latency', '--timeout', '2s'];
  if (opts.host) args.push('-H', `Host: ${opts.host}`);
  for (const h of opts.headers ?? []) args.push('-H', h);
  args.push(url);
  return new Promise((resolve, reject) => {
    // bounded: wrk itself stops at -d, the kill is for a wrk that hangs or a run cut short
    const child = execFile(wrk, args, { timeout: (durationS + 20) * 1000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      void stop();
      if (err) return reject(new Error(`wrk failed: ${err.message} ${stderr}`));
      try {
        resolve(parseWrk(stdout));
      } catch (e) {
        reject(e);
      }
    });
    const stop = deferCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  });
}
