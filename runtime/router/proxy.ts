// The app router: the hot path. HTTP/1.1 on Node's parser (http1.ts; node:http's server when that
// parser's binding is not usable), no Request/Response objects; each request is host → service →
// lease from the pool → dispatched on that instance's keep-alive connections.
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type tls from 'node:tls';
import type { Readable } from 'node:stream';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { Lease, Pool } from '../instances/pool/types.ts';
import type { UpstreamHandler } from '../instances/upstream-types.ts';
import { answerClientError, sendError } from './error-page.ts';
import { forwardHeaders, HOP_BY_HOP, parseTrustedProxies, takeAbsoluteTarget, type TrustedProxies } from './forwarding.ts';
import { normalizeHost } from './hosts.ts';
import { Http1Server } from './http1.ts';
import { loadLlhttpBinding } from '../core/llhttp-binding.ts';
import { createNodeHttpServer } from './node-http-server.ts';
import type { ExchangeListener, RouterRequest, RouterResponse, RouterServer, RouterServerOptions } from './request.ts';
import { createH2Handler } from './h2.ts';
import { createTlsListener, type TlsListener } from './tls-listener.ts';
import type { Route, RouteResolver } from './route-table.ts';

/** what the router needs from the certificates side for its TLS listener; absent: no HTTPS */
export interface RouterHttps {
  /** the certificate for a server name (SNI), or null: the handshake fails */
  contextFor(servername: string): tls.SecureContext | null;
  /** the acme-tls/1 certificate of a TLS-ALPN-01 challenge under way for this name, or null */
  challengeContextFor(servername: string): tls.SecureContext | null;
  /** the key authorization of a pending HTTP-01 challenge for this host and token, else null */
  challengeAnswer(host: string, token: string): string | null;
  /** a certificate is served for this host */
  hasCertificate(host: string): boolean;
  /** the public HTTPS port for redirect URLs, until the listener is bound (then its own port) */
  port: number;
}

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
  https?: RouterHttps;
}

/** the app router: an HTTP/1 server, and with HTTPS its TLS listener (HTTP/1.1 and HTTP/2 through the same request handling) */
export type Router = RouterServer & { readonly tls: TlsListener | null };

const MAX_HEADER_BYTES = 64 * 1024;
const MAX_REQUEST_LINE = 16 * 1024;
const ACME_CHALLENGE = '/.well-known/acme-challenge/';
const HSTS = 'max-age=31536000';

export function createRouter(opts: RouterOptions): Router {
  const log = opts.log ?? silentLogger;
  const https = opts.https;
  const headersTimeoutMs = opts.headersTimeoutMs ?? 20_000;
  const trusted = parseTrustedProxies(opts.trustProxy ?? []);

  const onRequest = (req: RouterRequest): void => {
    const requestId = req.requestId ?? nextRequestId();
    if (!takeAbsoluteTarget(req)) {
      sendError(req, new CellhostError('ERR_BAD_REQUEST', 'the request target is neither a path nor an http(s) URL'), requestId);
      return;
    }
    const host = normalizeHost(req.host);
    if (https && host && req.url.startsWith(ACME_CHALLENGE) && !req.secure && answerChallenge(req, https, host, requestId)) return;
    const route = host ? opts.routes.resolve(host) : null;
    if (!route) {
      if (opts.platform?.(req, requestId)) return;
      sendError(req, new CellhostError('ERR_HOST_UNKNOWN', `no service is served at "${host ?? ''}"`), requestId);
      return;
    }
    if (https && route.httpsRedirect && !req.secure && https.hasCertificate(host!)) {
      redirectToHttps(req, host!, httpsPort(), requestId);
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
  // HTTPS: TLS connections that settle on HTTP/1.1 are adopted by the HTTP/1 server above, HTTP/2
  // streams become requests of the same handling: one set of limits, pages and metering
  const tlsListener = https
    ? createTlsListener({
        contextFor: (name) => https.contextFor(name),
        challengeContextFor: (name) => https.challengeContextFor(name),
        http1: server,
        h2: createH2Handler({ serve: onRequest, maxHeaderBytes: MAX_HEADER_BYTES, headersTimeoutMs, keepAliveTimeoutMs: serverOptions.keepAliveTimeoutMs }),
        handshakeTimeoutMs: headersTimeoutMs,
        maxConnections: opts.maxConnections,
      })
    : null;
  /** for redirects: the TLS listener's own port once it is bound (a test's port 0), else the configured one */
  function httpsPort(): number {
    return tlsListener?.listening ? (tlsListener.address() as net.AddressInfo).port : (https?.port ?? 443);
  }
  return Object.assign(server, { tls: tlsListener });
}

/** HTTP-01: the CA asks the plain listener for the token of an order under way; anything else passes on */
function answerChallenge(req: RouterRequest, https: RouterHttps, host: string, requestId: string): boolean {
  const token = req.url.slice(ACME_CHALLENGE.length);
  const answer = https.challengeAnswer(host, token);
  if (answer === null) return false;
  req.dump();
  req.res.writeHead(200, 'OK', ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(answer)), 'x-request-id', requestId, 'cache-control', 'no-store'], { contentLength: true });
  req.res.end(answer);
  return true;
}

/** 301 for reads; 308 for the rest, so a POST is not turned into a GET on the way */
function redirectToHttps(req: RouterRequest, host: string, port: number, requestId: string): void {
  const location = `https://${host}${port === 443 ? '' : `:${port}`}${req.url.startsWith('/') ? req.url : '/'}`;
  const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
  req.dump();
  req.res.writeHead(status, http.STATUS_CODES[status]!, ['location', location, 'content-length', '0', 'x-request-id', requestId], { contentLength: true });
  req.res.end();
}

// request ids: random per process, then a counter; unique without a UUID's random bytes each time
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  return `${ID_PREFIX}-${(idCounter++).toString(36).padStart(6, '0')}`;
}

/**
 * One request on its way through: the handler of the upstream side, and the client side's
 * listeners. A class, so the hot path allocates one object per request instead of a
 * dozen closures.
 */
class Exchange implements UpstreamHandler, ExchangeListener {
  private readonly record: RequestRecord;
  private readonly startedAt = Date.now();
  private readonly res: RouterResponse;
  private lease: Lease | null = null;
  private released = false;
  private timer: NodeJS.Timeout | null = null;
  private body: Readable | null = null;
  /** sent again once, to a fresh instance: its first instance died as it thawed */
  private retried = false;
  // the upstream hands over its abort once the request has a connection; until then a cancel waits
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
    // the request's own body stream: the upstream may destroy it when it gives up, which leaves
    // the client's socket alone, so the 413 or 504 meant for the client can still be sent
    this.body = req.body;
    lease.connections.dispatch({ path: req.url, method: req.method, headers: forwardHeaders(req, this.requestId, this.trusted), body: this.body }, this);
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

  // ---- the upstream's handler ----

  onConnect(abort: (err: Error) => void): void {
    this.abortUpstream = abort;
    if (this.cancelled) abort(this.cancelled);
  }

  onHeaders(status: number, headers: string[], resume: () => void, statusMessage: string): boolean {
    writeResponseHead(this.res, status, statusMessage, headers, this.requestId, this.route.hsts === true && this.req.secure);
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
      // an oversized body's 413 ends the connection: its rest is read and dropped as it closes
      // (the lingering close, linger.ts), so the client sees the answer rather than a reset
      this.fail(err);
      return;
    }
    // an app that died while frozen (or as it thawed) is only seen now, with a request it never
    // read: one without a body goes once more, to a fresh instance, as nothing of it was used
    const again = lease!.thawed && !this.retried && req.body === null && this.cancelled === null;
    void lease!.diagnose().then((death) => {
      if (again && !res.destroyed) return this.retry();
      this.fail(death ?? new CellhostError('ERR_APP_REFUSED', `the app refused or dropped the connection (${(err as NodeJS.ErrnoException).code ?? err.message})`));
    });
  }

  private retry(): void {
    this.retried = true;
    this.released = false;
    this.lease = null;
    this.abortUpstream = null;
    this.resumeUpstream = null;
    this.opts.pool.acquire(this.route.service).then(
      (lease) => this.forward(lease),
      (err: unknown) => this.fail(err instanceof CellhostError ? err : new CellhostError('ERR_INTERNAL', 'the platform could not start the app')),
    );
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
function writeResponseHead(res: RouterResponse, status: number, statusMessage: string, headers: string[], requestId: string, hsts: boolean): void {
  const out: string[] = [];
  let hasId = false;
  let hasLength = false;
  for (let i = 0; i < headers.length; i += 2) {
    const key = headers[i]!;
    const lower = key.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'content-length') hasLength = true;
    else if (lower === 'x-request-id') hasId = true;
    out.push(key, headers[i + 1]!);
  }
  if (!hasId) out.push('x-request-id', requestId);
  if (hsts) out.push('strict-transport-security', HSTS);
  res.writeHead(status, statusMessage, out, { contentLength: hasLength });
}
