// One instance's upstream connections: an undici Pool. Its dispatch API hands the router raw
// header buffers and body chunks with no IncomingMessage/ClientRequest objects in between,
// which halves the proxy's CPU per request against node:http's client (docs/benchmarks.md).
import net from 'node:net';
import type { Dispatcher } from 'undici';
import buildConnector from 'undici/lib/core/connect.js';
import Pool from 'undici/lib/dispatcher/pool.js';

export type Upstream = Dispatcher;

export interface UpstreamOptions {
  /**
   * open the first connection now, before any request: for an app whose port accepts from its
   * boot on and holds what arrives until it is ready (the edge host), so the connect and the
   * app's accept happen while it starts instead of after
   */
  connectNow?: boolean;
}

/** undici's own connect timeout, for the connection opened ahead as for the others */
const CONNECT_TIMEOUT_MS = 10_000;

/** a connection opened ahead and not yet taken by the pool, by pool: closed with it */
const openedAhead = new WeakMap<Upstream, () => void>();

export function openUpstream(address: { host: string; port: number }, concurrency: number, opts: UpstreamOptions = {}): Upstream {
  const options = {
    // at most as many connections as the instance takes requests: the rest wait, in order
    connections: Math.max(1, concurrency),
    pipelining: 1,
    // the router's own request timeout applies; SSE and long downloads must not be cut
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: 64 * 1024,
  };
  const url = `http://${address.host}:${address.port}`;
  if (!opts.connectNow) return new Pool(url, options);

  let ahead: Promise<net.Socket | null> | null = connectAhead(address);
  const connect = buildConnector({ timeout: CONNECT_TIMEOUT_MS });
  const pool = new Pool(url, {
    ...options,
    connect(connectOpts, callback) {
      const socket = ahead;
      ahead = null;
      if (!socket) return connect(connectOpts, callback);
      // refused (the app did not listen yet) or closed since: a connection of its own
      void socket.then((s) => (s && !s.destroyed ? callback(null, s) : connect(connectOpts, callback)));
    },
  });
  openedAhead.set(pool, () => {
    void ahead?.then((s) => s?.destroy());
    ahead = null;
  });
  return pool;
}

/** a connected socket as undici's connector makes it (no delay, keep-alive), or null */
function connectAhead(address: { host: string; port: number }): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    // an error before the pool takes it (refused, reset) must not go unheard: it is seen by the
    // pool as a destroyed socket, or on its own listeners once taken
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

export function closeUpstream(upstream: Upstream | null): void {
  if (!upstream) return;
  openedAhead.get(upstream)?.();
  // requests still on it fail with an error the router answers; nothing else waits on this
  upstream.destroy().catch(() => {});
}
