// The app router: the hot path. Plain node:http, no Request/Response objects; each request
// is host → service → lease from the pool → dispatched on that instance's keep-alive connections.
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { Lease, Pool } from '../instances/pool.ts';
import { answerClientError, sendError } from './error-page.ts';
import { normalizeHost } from './hosts.ts';

export interface Route {
  service: string;
  requestTimeoutMs: number;
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
  /** host (normalized) → route, or null for an unknown host */
  resolve(host: string): Route | null;
  maxBodyBytes: number;
  /** a client must send its whole header block within this (slowloris) */
  headersTimeoutMs?: number;
  /** open client connections at most; past it new ones are refused */
  maxConnections?: number;
  log?: Logger;
  onRequest?(record: RequestRecord): void;
}

const MAX_HEADER_BYTES = 64 * 1024;
const MAX_REQUEST_LINE = 16 * 1024;

// RFC 9110 §7.6.1 hop-by-hop headers, plus the ones we set ourselves
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
const SET_HERE = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']);

export function createRouter(opts: RouterOptions): http.Server {
  const log = opts.log ?? silentLogger;
  // Leapcell's limits: 64 KB of headers (431 past it, from the parser), 16 KB request line
  const server = http.createServer({
    requestTimeout: 0,
    headersTimeout: opts.headersTimeoutMs ?? 20_000,
    // how often the header timeout is checked (Node's default, 30 s, lets slowloris linger)
    connectionsCheckingInterval: Math.min(1000, Math.max(100, (opts.headersTimeoutMs ?? 20_000) / 4)),
    maxHeaderSize: MAX_HEADER_BYTES,
  });
  server.keepAliveTimeout = 65_000;
  server.maxConnections = opts.maxConnections ?? 10_000;
  server.on('clientError', answerClientError);

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? nextRequestId();
    const host = normalizeHost(req.headers.host);
    const route = host ? opts.resolve(host) : null;
    if (!route) {
      sendError(req, res, new CellhostError('ERR_HOST_UNKNOWN', `no service is served at "${host ?? ''}"`), requestId);
      return;
    }
    const ex = new Exchange(req, res, route, requestId, opts);
    if (req.url && req.url.length > MAX_REQUEST_LINE) {
      ex.fail(new CellhostError('ERR_HEADERS_TOO_LARGE', `the request line is longer than ${MAX_REQUEST_LINE} bytes`));
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > opts.maxBodyBytes) {
      ex.fail(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${opts.maxBodyBytes} bytes`));
      req.resume();
      return;
    }
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
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? nextRequestId();
    const host = normalizeHost(req.headers.host);
    const route = host ? opts.resolve(host) : null;
    if (!route) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {});
    opts.pool.acquire(route.service).then(
      (lease) => tunnel(req, socket, head, lease, requestId),
      (err: unknown) => {
        const status = err instanceof CellhostError ? err.status : 500;
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      },
    );
  });

  return server;
}

// request ids: random per process, then a counter; unique without a UUID's random bytes each time
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  return `${ID_PREFIX}-${(idCounter++).toString(36).padStart(6, '0')}`;
}

const kExchange = Symbol('exchange');
type ResponseWithExchange = http.ServerResponse & { [kExchange]?: Exchange };

/**
 * One request on its way through: the undici handler for the upstream side, and the client
 * side's listeners. A class, so the hot path allocates one object per request instead of a
 * dozen closures.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly record: RequestRecord;
  private readonly startedAt = Date.now();
  private lease: Lease | null = null;
  private released = false;
  private timer: NodeJS.Timeout | null = null;
  private body: PassThrough | null = null;
  // undici hands over its abort once the request has a connection; until then a cancel waits
  private abortUpstream: ((err: Error) => void) | null = null;
  private cancelled: Error | null = null;
  resumeUpstream: (() => void) | null = null;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    readonly route: Route,
    private readonly requestId: string,
    private readonly opts: RouterOptions,
  ) {
    this.record = { service: route.service, instanceId: null, status: 0, startedAt: this.startedAt, durationMs: 0, coldStart: false, errorCode: null };
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
    sendError(this.req, this.res, err, this.requestId);
  }

  forward(lease: Lease): void {
    const { req, res, record } = this;
    this.lease = lease;
    record.instanceId = lease.instanceId;
    record.coldStart = lease.coldStart;
    if (req.destroyed || res.destroyed) {
      this.release();
      this.finish(499, 'ERR_CLIENT_CLOSED');
      return;
    }
    this.timer = setTimeout(onTimeout, this.route.requestTimeoutMs, this);
    if (hasBody(req)) {
      // undici destroys a body stream it gives up on; that must not be the client's socket, or
      // the 413 or 504 meant for the client could never be sent
      const body = (this.body = new PassThrough());
      req.pipe(body);
      if (req.headers['content-length'] === undefined) {
        // a chunked body has no declared size: count it on the way through
        let seen = 0;
        const limit = this.opts.maxBodyBytes;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > limit) {
            req.unpipe(body);
            this.cancel(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`));
          }
        });
      }
    }
    (res as ResponseWithExchange)[kExchange] = this;
    res.once('close', onClientClose);
    lease.connections.dispatch({ path: req.url!, method: req.method as Dispatcher.HttpMethod, headers: forwardHeaders(req, this.requestId), body: this.body }, this);
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

  clientClosed(): void {
    if (!this.res.writableFinished) this.cancel(new Error('the client closed the connection'));
    this.release();
    if (!this.record.status) this.finish(499, 'ERR_CLIENT_CLOSED');
  }

  // ---- undici's handler ----

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.cancelled) abort(this.cancelled);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusMessage: string): boolean {
    this.res.writeHead(status, statusMessage, responseHeaders(raw, this.requestId));
    this.finish(status, null);
    this.resumeUpstream = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // false pauses the upstream socket until the client has taken what was written
    this.res.once('drain', onClientDrain);
    return false;
  }

  onComplete(): void {
    this.release();
    this.res.end();
  }

  onError(err: Error): void {
    const { req, res, lease } = this;
    const wasDone = this.released;
    if (this.body) req.unpipe(this.body);
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
      if (err.code === 'ERR_BODY_TOO_LARGE' && !req.readableEnded) {
        let answered = false;
        const answer = () => {
          if (answered) return;
          answered = true;
          clearTimeout(cap);
          this.fail(err);
        };
        const cap = setTimeout(answer, 1000);
        req.once('end', answer);
        req.resume();
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

// listeners with `this` = the response: one function for every request
function onClientClose(this: ResponseWithExchange): void {
  this[kExchange]?.clientClosed();
}

function onClientDrain(this: ResponseWithExchange): void {
  this[kExchange]?.resumeUpstream?.();
}

/** a WebSocket (or any Upgrade): raw bytes both ways; the lease is held for the connection's life */
function tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer, lease: Lease, requestId: string): void {
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
    const headers = forwardHeaders(req, requestId);
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    text += `connection: Upgrade\r\nupgrade: ${req.headers.upgrade}\r\n\r\n`;
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

/** the request's headers for the app, as [name, value, ...]: hop-by-hop ones out, forwarding ones in */
function forwardHeaders(req: http.IncomingMessage, requestId: string): string[] {
  const out: string[] = [];
  const headers = req.headers;
  const connection = headers.connection;
  // names the client's Connection header lists are hop-by-hop too (rare: only then a Set)
  const listed = connection && connection.includes(',') ? new Set(connection.toLowerCase().split(',').map((s) => s.trim())) : connection ? connection.trim().toLowerCase() : null;
  for (const key in headers) {
    const value = headers[key];
    // the router answered any 100-continue itself; the app gets the body straight away
    if (value === undefined || HOP_BY_HOP.has(key) || key === 'expect' || SET_HERE.has(key)) continue;
    if (listed !== null && (typeof listed === 'string' ? listed === key : listed.has(key))) continue;
    if (typeof value === 'string') out.push(key, value);
    else for (const v of value) out.push(key, v);
  }
  const peer = req.socket.remoteAddress ?? '';
  const prior = headers['x-forwarded-for'];
  out.push(
    'x-forwarded-for', prior ? `${prior}, ${peer}` : peer,
    'x-forwarded-proto', (headers['x-forwarded-proto'] as string | undefined) ?? 'http',
    'x-forwarded-host', headers.host ?? '',
    'x-request-id', requestId,
  );
  return out;
}

function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

// header bytes are latin1 both ways, so values pass through unchanged
function responseHeaders(raw: Buffer[], requestId: string): string[] {
  const out: string[] = [];
  let hasId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toString('latin1');
    const lower = key.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'x-request-id') hasId = true;
    out.push(key, raw[i + 1]!.toString('latin1'));
  }
  if (!hasId) out.push('x-request-id', requestId);
  return out;
}
