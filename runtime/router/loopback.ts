// Requests the platform makes to its own apps (cron runs, task deliveries) go in through the
// router's listener like a visitor's, with the service's Host: they take the same path (cold
// start, wait queue, request timeout, metering, error pages, events) instead of a second proxy.
import type { Dispatcher } from 'undici';
import request from 'undici/lib/api/api-request.js';
import Pool from 'undici/lib/dispatcher/pool.js';

export interface LoopbackRequest {
  service: string;
  method: string;
  /** path and query, starting with / */
  path: string;
  /** [name, value, ...]; Host is set here */
  headers: string[];
  body?: Buffer | string | null;
  /** a backstop only: the router's own request timeout answers 504 first */
  timeoutMs: number;
}

export interface LoopbackResponse {
  status: number;
  /** the first `headLimit` bytes of the body (the rest is read and dropped) */
  bodyHead: Buffer;
  /** the platform's reason when it answered itself (x-cellhost-error), e.g. ERR_REQUEST_TIMEOUT */
  platformError: string | null;
  /** Retry-After in ms, when the answer carried one */
  retryAfterMs: number | null;
  durationMs: number;
}

export interface Loopback {
  send(req: LoopbackRequest): Promise<LoopbackResponse>;
  close(): Promise<void>;
}

export interface LoopbackOptions {
  /** the router's own address, known once it listens */
  address(): { host: string; port: number };
  /** the base domain: a service is reached at <service>.<domain> */
  domain: string;
  /** connections to the router at most (the rest wait) */
  connections?: number;
  headLimit?: number;
}

export function createLoopback(opts: LoopbackOptions): Loopback {
  const headLimit = opts.headLimit ?? 1024;
  let pool: Dispatcher | null = null;
  const connect = () => {
    if (pool) return pool;
    const { host, port } = opts.address();
    const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
    pool = new Pool(`http://${target}:${port}`, { connections: opts.connections ?? 256, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, maxHeaderSize: 64 * 1024 });
    return pool;
  };

  return {
    async send(req) {
      const started = Date.now();
      const headers = [...req.headers, 'host', `${req.service}.${opts.domain}`];
      const signal = AbortSignal.timeout(req.timeoutMs);
      const res = await request.call(connect(), { method: req.method as Dispatcher.HttpMethod, path: req.path, headers, body: req.body ?? undefined, signal });
      const chunks: Buffer[] = [];
      let kept = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (kept < headLimit) {
          const part = chunk.subarray(0, headLimit - kept);
          chunks.push(part);
          kept += part.length;
        }
      }
      const error = res.headers['x-cellhost-error'];
      return {
        status: res.statusCode,
        bodyHead: Buffer.concat(chunks),
        platformError: typeof error === 'string' ? error : null,
        retryAfterMs: parseRetryAfter(res.headers['retry-after'], Date.now()),
        durationMs: Date.now() - started,
      };
    },
    async close() {
      const p = pool;
      pool = null;
      await p?.destroy().catch(() => {});
    },
  };
}

/** Retry-After as seconds or an HTTP date, in ms from now; null when absent or unreadable */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | null {
  if (typeof value !== 'string') return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
