// Readiness = the serving port accepts a TCP connection. Polling with a short, growing
// interval lands within a few ms of the real moment (NOTES: 1–5 ms polls) without taking
// the CPU the starting app needs.
import fs from 'node:fs/promises';
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
  /**
   * a cheap "is it listening yet?" (a /proc read) polled instead of connecting, so a start costs
   * the platform almost no CPU; one real connection still confirms before ready
   */
  isListening?(): Promise<boolean>;
}

/** Resolves when the port accepts (and the health path answers); rejects with the signal's reason. */
export async function waitForPort(opts: WaitForPortOptions): Promise<void> {
  const started = Date.now();
  const { signal } = opts;
  for (;;) {
    signal.throwIfAborted();
    const maybe = opts.isListening ? await opts.isListening().catch(() => true) : true;
    if (maybe && (await probePort(opts.host, opts.port))) {
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

/** true when /proc/<pid>/net/tcp or tcp6 (the pid's network namespace) has a socket listening on `port` */
export async function hasListener(pid: number, port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const needle = `:${hex} `;
  for (const file of ['tcp6', 'tcp']) {
    let text: string;
    try {
      text = await fs.readFile(`/proc/${pid}/net/${file}`, 'latin1');
    } catch {
      continue;
    }
    // "sl local_address rem_address st ...": a local address ending in :PORT with state 0A (LISTEN)
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
      const st = text.slice(i + needle.length).split(' ', 2)[1];
      if (st === '0A') return true;
    }
  }
  return false;
}
