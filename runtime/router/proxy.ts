// The app router: the hot path. HTTP/1.1 on Node's parser (http1.ts; node:http's server when that
// parser's binding is not usable), no Request/Response objects; each request is host → service →
// lease from the pool → dispatched on that instance's keep-alive connections.
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { Lease, Pool } from '../instances/pool/types.ts';
import { answerClientError, sendError } from './error-page.ts';
import { forwardHeaders, HOP_BY_HOP, parseTrustedProxies, takeAbsoluteTarget, type TrustedProxies } from './forwarding.ts';
import { normalizeHost } from './hosts.ts';
import { Http1Server } from './http1.ts';
import { loadLlhttpBinding } from './llhttp-binding.ts';
import { createNodeHttpServer } from './node-http-server.ts';
import type { ExchangeListener, RouterRequest, RouterResponse, RouterServer, RouterServerOptions } from './request.ts';
import type { Route, RouteResolver } from './route-table.ts';

export interface RequestRecord {
  service: string;
  instanceId: string | null;
  status: number;
  startedAt: number;
  durationMs: number;
  coldStart: boolean;
  errorCode: string | null;
}

export interface RouterOptions {
  pool: Pool;
  /** host (normalized) → route: the route table the control plane writes */
  routes: RouteResolver;
  maxBodyBytes: number;
  /** a client must send its whole header block within this (slowloris) */
  headersTimeoutMs?: number;
  /** open client connections at most; past it new ones are refused */
  maxConnections?: number;
  /** peers (IPs and CIDRs) whose X-Forwarded-* and Forwarded fields are kept and appended to */
  trustProxy?: readonly string[];
  /** auto: Node's parser driven directly when its binding works, else node:http; node: node:http */
  httpParser?: 'auto' | 'node';
  log?: Logger;
  onRequest?(record: RequestRecord): void;
  /** a request no service's host matched: true when the platform answered it itself (its own routes) */
  platform?(req: RouterRequest, requestId: string): boolean;
}

const MAX_HEADER_BYTES = 64 * 1024;
const MAX_REQUEST_LINE = 16 * 1024;

export function createRouter(opts: RouterOptions): RouterServer {
  const log = opts.log ?? silentLogger;
  const headersTimeoutMs = opts.headersTimeoutMs ?? 20_000;
  const trusted = parseTrustedProxies(opts.trustProxy ?? []);

  const onRequest = (req: RouterRequest): void => {
    const requestId = req.requestId ?? nextRequestId();
    if (!takeAbsoluteTarget(req)) {
      sendError(req, new CellhostError('ERR_BAD_REQUEST', 'the request target is neither a path nor an http(s) URL'), requestId);
      return;
    }
    const host = normalizeHost(req.host);
    const route = host ? opts.routes.resolve(host) : null;
    if (!route) {
      if (opts.platform?.(req, requestId)) return;
      sendError(req, new CellhostError('ERR_HOST_UNKNOWN', `no service is served at "${host ?? ''}"`), requestId);
      return;
    }
    const ex = new Exchange(req, route, requestId, opts, trusted);
    if (req.url.length > MAX_REQUEST_LINE) {
      ex.fail(new CellhostError('ERR_HEADERS_TOO_LARGE', `the request line is longer than ${MAX_REQUEST_LINE} bytes`));
      return;
    }
    const declared = Number(req.contentLength ?? 0);
    if (declared > opts.maxBodyBytes) {
      ex.fail(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${opts.maxBodyBytes} bytes`));
      return;
    }
    // a chunked body has no declared size: it is counted on the way through
    req.bodyLimit = opts.maxBodyBytes;
    const lease = opts.pool.tryAcquire(route.service);
    if (lease) {
      ex.forward(lease);
      return;
    }
    opts.pool.acquire(route.service).then(
      (lease) => ex.forward(lease),
      (err: unknown) => {
        if (err instanceof CellhostError) ex.fail(err);
        else {
          log.error('router.acquire_failed', { service: route.service, error: describeError(err) });
          ex.fail(new CellhostError('ERR_INTERNAL', 'the platform could not start the app'));
        }
      },
    );
  };

  const onUpgrade = (req: RouterRequest, socket: net.Socket, head: Buffer): void => {
    const requestId = req.requestId ?? nextRequestId();
    if (req.duplicateHost || !takeAbsoluteTarget(req)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const host = normalizeHost(req.host);
    const route = host ? opts.routes.resolve(host) : null;
    if (!route) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    opts.pool.acquire(route.service).then(
      (lease) => tunnel(req, socket, head, lease, requestId, trusted),
      (err: unknown) => {
        const status = err instanceof CellhostError ? err.status : 500;
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      },
    );
  };

  // Leapcell's limits: 64 KB of headers (431 past it, from the parser), 16 KB request line;
  // the header timeout is checked often enough that slowloris cannot linger (Node's default: 30 s)
  const serverOptions: RouterServerOptions = {
    onRequest,
    onUpgrade,
    onClientError: answerClientError,
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeoutMs,
    keepAliveTimeoutMs: 65_000,
    checkEveryMs: Math.min(1000, Math.max(100, headersTimeoutMs / 4)),
  };
  const parser = loadLlhttpBinding({ disabled: opts.httpParser === 'node' });
  if (!parser.ok && opts.httpParser !== 'node') log.warn('router.parser_fallback', { reason: parser.reason, using: 'node:http' });
  const server: RouterServer = parser.ok ? new Http1Server(serverOptions, parser.binding) : createNodeHttpServer(serverOptions);
  server.maxConnections = opts.maxConnections ?? 10_000;
  return server;
}

// request ids: random per process, then a counter; unique without a UUID's random bytes each time
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  return `${ID_PREFIX}-${(idCounter++).toString(36).padStart(6, '0')}`;
}

/**
 * One request on its way through: the undici handler for the upstream side, and the client
 * side's listeners. A class, so the hot path allocates one object per request instead of a
 * dozen closures.
 */
class Exchange implements Dispatcher.DispatchHandler, ExchangeListener {
  private readonly record: RequestRecord;
  private readonly startedAt = Date.now();
  private readonly res: RouterResponse;
  private lease: Lease | null = null;
  private released = false;
  private timer: NodeJS.Timeout | null = null;
  private body: Readable | null = null;
  // undici hands over its abort once the request has a connection; until then a cancel waits
  private abortUpstream: ((err: Error) => void) | null = null;
  private cancelled: Error | null = null;
  resumeUpstream: (() => void) | null = null;

  constructor(
    private readonly req: RouterRequest,
    readonly route: Route,
    private readonly requestId: string,
    private readonly opts: RouterOptions,
    private readonly trusted: TrustedProxies,
  ) {
    this.res = req.res;
    this.record = { service: route.service, instanceId: null, status: 0, startedAt: this.startedAt, durationMs: 0, coldStart: false, errorCode: null };
    req.listener = this;
  }

  finish(status: number, errorCode: string | null): void {
    const record = this.record;
    if (record.status) return;
    record.status = status;
    record.errorCode = errorCode;
    record.durationMs = Date.now() - this.startedAt;
    this.opts.onRequest?.(record);
  }

  fail(err: CellhostError): void {
    this.finish(err.status, err.code);
    sendError(this.req, err, this.requestId);
  }

  forward(lease: Lease): void {
    const { req, res, record } = this;
    this.lease = lease;
    record.instanceId = lease.instanceId;
    record.coldStart = lease.coldStart;
    if (res.destroyed) {
      this.release();
      this.finish(499, 'ERR_CLIENT_CLOSED');
      return;
    }
    this.timer = setTimeout(onTimeout, this.route.requestTimeoutMs, this);
    // the request's own body stream: undici may destroy it when it gives up, which leaves the
    // client's socket alone, so the 413 or 504 meant for the client can still be sent
    this.body = req.body;
    lease.connections.dispatch({ path: req.url, method: req.method as Dispatcher.HttpMethod, headers: forwardHeaders(req, this.requestId, this.trusted), body: this.body }, this);
  }

  cancel(err: Error): void {
    if (this.cancelled) return;
    this.cancelled = err;
    this.abortUpstream?.(err);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    this.lease?.release();
  }

  // ---- the client's side (http1's listener) ----

  aborted(): void {
    this.cancel(new Error('the client closed the connection'));
    this.release();
    if (!this.record.status) this.finish(499, 'ERR_CLIENT_CLOSED');
  }

  drained(): void {
    this.resumeUpstream?.();
  }

  bodyTooLarge(): void {
    this.cancel(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${this.opts.maxBodyBytes} bytes`));
  }

  // ---- undici's handler ----

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.cancelled) abort(this.cancelled);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusMessage: string): boolean {
    writeResponseHead(this.res, status, statusMessage, raw, this.requestId);
    this.finish(status, null);
    this.resumeUpstream = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    // false pauses the upstream socket until the client has taken what was written (drained)
    return this.res.write(chunk);
  }

  onComplete(): void {
    this.release();
    this.res.end();
  }

  onError(err: Error): void {
    const { req, res, lease } = this;
    const wasDone = this.released;
    if (this.body) req.dump();
    // a wedged instance takes no more requests; it stops once this one lets go of it
    if (err instanceof CellhostError && err.code === 'ERR_REQUEST_TIMEOUT') lease!.recycle(err.message);
    this.release();
    if (wasDone || res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof CellhostError) {
      // an oversized body: read the rest (bounded) before answering, or the close would reset
      // the connection and the client would never see the 413
      if (err.code === 'ERR_BODY_TOO_LARGE' && !req.complete) {
        let answered = false;
        const answer = () => {
          if (answered) return;
          answered = true;
          clearTimeout(cap);
          this.fail(err);
        };
        const cap = setTimeout(answer, 1000);
        req.onComplete = answer;
        req.dump();
        return;
      }
      this.fail(err);
      return;
    }
    void lease!.diagnose().then((death) => {
      this.fail(death ?? new CellhostError('ERR_APP_REFUSED', `the app refused or dropped the connection (${(err as NodeJS.ErrnoException).code ?? err.message})`));
    });
  }
}

function onTimeout(ex: Exchange): void {
  ex.cancel(new CellhostError('ERR_REQUEST_TIMEOUT', `the app did not answer within ${ex.route.requestTimeoutMs / 1000} s`));
}

/** a WebSocket (or any Upgrade): raw bytes both ways; the lease is held for the connection's life */
function tunnel(req: RouterRequest, client: net.Socket, head: Buffer, lease: Lease, requestId: string, trusted: TrustedProxies): void {
  const up = net.connect(lease.upstream.port, lease.upstream.host);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    lease.release();
    client.destroy();
    up.destroy();
  };
  up.on('connect', () => {
    const headers = forwardHeaders(req, requestId, trusted);
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    text += `connection: Upgrade\r\nupgrade: ${req.upgradeTo ?? ''}\r\n\r\n`;
    up.write(text);
    if (head.length) up.write(head);
    up.pipe(client);
    client.pipe(up);
  });
  up.on('error', release);
  up.on('close', release);
  client.on('close', release);
  // one side ended: give the other a moment to finish, then end the tunnel, so a peer that
  // never closes its half cannot hold the instance (and its billing) forever
  const linger = () => setTimeout(release, 5000).unref();
  up.once('end', linger);
  client.once('end', linger);
}

// header bytes are latin1 both ways, so values pass through unchanged
function writeResponseHead(res: RouterResponse, status: number, statusMessage: string, raw: Buffer[], requestId: string): void {
  const out: string[] = [];
  let hasId = false;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toString('latin1');
    const lower = key.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'content-length') hasLength = true;
    else if (lower === 'x-request-id') hasId = true;
    out.push(key, raw[i + 1]!.toString('latin1'));
  }
  if (!hasId) out.push('x-request-id', requestId);
  res.writeHead(status, statusMessage, out, { contentLength: hasLength });
}
