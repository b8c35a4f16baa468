// Readiness = the serving port accepts a TCP connection. Polling with a short, growing
// interval lands within a few ms of the real moment (NOTES: 1–5 ms polls) without taking
// the CPU the starting app needs.
import http from 'node:http';
import net from 'node:net';

export function probePort(host: string, port: number, timeoutMs = 250): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** poll interval after `elapsedMs` of waiting: 1 ms at first, 5 ms after 100 ms, 20 ms after 2 s */
export function pollInterval(elapsedMs: number): number {
  if (elapsedMs < 100) return 1;
  if (elapsedMs < 2000) return 5;
  return 20;
}

export interface WaitForPortOptions {
  host: string;
  port: number;
  signal: AbortSignal;
  /** optional HTTP path that must answer < 500 before the instance counts as ready */
  healthPath?: string | null;
}

/** Resolves when the port accepts (and the health path answers); rejects with the signal's reason. */
export async function waitForPort(opts: WaitForPortOptions): Promise<void> {
  const started = Date.now();
  const { signal } = opts;
  for (;;) {
    signal.throwIfAborted();
    if (await probePort(opts.host, opts.port)) {
      if (!opts.healthPath || (await probeHealth(opts.host, opts.port, opts.healthPath))) return;
    }
    signal.throwIfAborted();
    await sleep(pollInterval(Date.now() - started), signal);
  }
}

async function probeHealth(host: string, port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method: 'GET', timeout: 1000, headers: { 'user-agent': 'cellhost-health' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
