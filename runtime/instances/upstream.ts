// One instance's upstream connections. Where Node's HTTP/1 parser binding works, the router's own
// client on it (upstream-http1.ts); else undici's Pool, whose dispatch API also hands the router
// header fields and body chunks with no IncomingMessage/ClientRequest objects in between (which
// halves the proxy's CPU per request against node:http's client, docs/benchmarks.md).
import net from 'node:net';
import type { Dispatcher } from 'undici';
import type { LlhttpBinding } from '../core/llhttp-binding.ts';
import { Http1Upstream } from './upstream-http1.ts';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream-types.ts';
import buildConnector from 'undici/lib/core/connect.js';
import undiciSymbols from 'undici/lib/core/symbols.js';
import poolBase from 'undici/lib/dispatcher/pool-base.js';
import Pool from 'undici/lib/dispatcher/pool.js';

// CommonJS objects of symbols (Node's ESM loader sees no named exports in them)
const { kConnected, kDispatch } = undiciSymbols;
const { kClients, kGetDispatcher, kNeedDrain } = poolBase;

export type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream-types.ts';

export interface UpstreamOptions {
  /** Node's parser binding: the router's own client on it; null or absent: undici's Pool */
  parser?: LlhttpBinding | null;
  /**
   * open the first connection now, before any request: for an app whose port accepts from its
   * boot on and holds what arrives until it is ready (the edge host), so the connect and the
   * app's accept happen while it starts instead of after
   */
  connectNow?: boolean;
}

/** what the pool reads of each of its connections (an undici Client) */
interface PooledConnection {
  /** busy: its one request is in flight */
  [kNeedDrain]?: boolean;
  /** its socket is open (a connection whose socket closed reconnects when it is next given a request) */
  readonly [kConnected]: boolean;
}

/**
 * undici's Pool gives each request to the first free connection in its list, so under steady
 * load the first one serves nearly everything and the others only the moments when requests
 * overlap. Idle in between, they outlive the app's keep-alive timeout (Node's server closes a
 * connection after 5 s idle), close, and reconnect at the next overlap: a connect on the request
 * path, in code V8 has not optimized, at the very moment requests queue (measured: dozens of
 * reconnects a minute at 1000 req/s, each in a cluster of slow requests). This pool takes the
 * free, open connections in turn instead, so every connection the load needed stays in use and
 * open, and a closed one is reopened only when no open one is free.
 */
class RotatingPool extends Pool {
  /** where the next search for a free connection starts */
  private turn = 0;
  /** a request is being placed: the first search of it takes a connection, and moves the turn on */
  private placing = false;

  [kDispatch](opts: unknown, handler: unknown): boolean {
    this.placing = true;
    try {
      return (Pool.prototype as unknown as Record<typeof kDispatch, (o: unknown, h: unknown) => boolean>)[kDispatch].call(this, opts, handler);
    } finally {
      this.placing = false;
    }
  }

  // undici's Pool calls this again after a connection took its one request, only to learn whether
  // another is free: that search must not move the turn, or every other connection is skipped
  [kGetDispatcher](): unknown {
    const placing = this.placing;
    this.placing = false;
    const clients = (this as unknown as Record<typeof kClients, PooledConnection[]>)[kClients];
    let closed: PooledConnection | null = null;
    for (let k = 0; k < clients.length; k++) {
      const i = (this.turn + k) % clients.length;
      const c = clients[i]!;
      if (c[kNeedDrain]) continue;
      if (c[kConnected]) {
        if (placing) this.turn = i + 1;
        return c;
      }
      closed ??= c;
    }
    // none open and free: a closed one reconnects, else undici's Pool adds one (up to its limit)
    return closed ?? (Pool.prototype as unknown as Record<typeof kGetDispatcher, () => unknown>)[kGetDispatcher].call(this);
  }
}

/** undici's own connect timeout, for the connection opened ahead as for the others */
const CONNECT_TIMEOUT_MS = 10_000;

export function openUpstream(address: { host: string; port: number }, concurrency: number, opts: UpstreamOptions = {}): Upstream {
  if (opts.parser) return new Http1Upstream(opts.parser, address, Math.max(1, concurrency), opts.connectNow === true);
  return openUndiciUpstream(address, concurrency, opts);
}

/** undici's Pool behind the Upstream interface: its header buffers become strings (latin1, as sent) */
class UndiciUpstream implements Upstream {
  constructor(
    private readonly pool: Dispatcher,
    /** closes a connection opened ahead and not yet taken */
    private readonly dropAhead: (() => void) | null = null,
  ) {}

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.pool.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body }, {
      onConnect: (abort: (err?: Error) => void) => handler.onConnect(abort),
      onHeaders: (status: number, raw: Buffer[], resume: () => void, statusMessage: string) => handler.onHeaders(status, raw.map((b) => b.toString('latin1')), resume, statusMessage),
      onData: (chunk: Buffer) => handler.onData(chunk),
      onComplete: () => handler.onComplete(),
      onError: (err: Error) => handler.onError(err),
    });
  }

  destroy(): Promise<void> {
    this.dropAhead?.();
    // requests still on it fail with an error the router answers; nothing else waits on this
    return this.pool.destroy().catch(() => {});
  }
}

function openUndiciUpstream(address: { host: string; port: number }, concurrency: number, opts: UpstreamOptions): Upstream {
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
  if (!opts.connectNow) return new UndiciUpstream(new RotatingPool(url, options));

  let ahead: Promise<net.Socket | null> | null = connectAhead(address);
  const connect = buildConnector({ timeout: CONNECT_TIMEOUT_MS });
  const pool = new RotatingPool(url, {
    ...options,
    connect(connectOpts, callback) {
      const socket = ahead;
      ahead = null;
      if (!socket) return connect(connectOpts, callback);
      // refused (the app did not listen yet) or closed since: a connection of its own
      void socket.then((s) => (s && !s.destroyed ? callback(null, s) : connect(connectOpts, callback)));
    },
  });
  return new UndiciUpstream(pool, () => {
    void ahead?.then((s) => s?.destroy());
    ahead = null;
  });
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
  // requests still on it fail with an error the router answers; nothing else waits on this
  void upstream?.destroy().catch(() => {});
}
