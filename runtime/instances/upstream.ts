// One instance's upstream connections: an undici Pool. Its dispatch API hands the router raw
// header buffers and body chunks with no IncomingMessage/ClientRequest objects in between,
// which halves the proxy's CPU per request against node:http's client (docs/benchmarks.md).
import type { Dispatcher } from 'undici';
import Pool from 'undici/lib/dispatcher/pool.js';

export type Upstream = Dispatcher;

export function openUpstream(address: { host: string; port: number }, concurrency: number): Upstream {
  return new Pool(`http://${address.host}:${address.port}`, {
    // at most as many connections as the instance takes requests: the rest wait, in order
    connections: Math.max(1, concurrency),
    pipelining: 1,
    // the router's own request timeout applies; SSE and long downloads must not be cut
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: 64 * 1024,
  });
}

export function closeUpstream(upstream: Upstream | null): void {
  // requests still on it fail with an error the router answers; nothing else waits on this
  upstream?.destroy().catch(() => {});
}
