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

  server.on('request', (req, res) => {
    const startedAt = Date.now();
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? crypto.randomUUID();
    const host = normalizeHost(req.headers.host);
    const route = host ? opts.resolve(host) : null;
    if (!route) {
      sendError(req, res, new CellhostError('ERR_HOST_UNKNOWN', `no service is served at "${host ?? ''}"`), requestId);
      return;
    }
    const record: RequestRecord = { service: route.service, instanceId: null, status: 0, startedAt, durationMs: 0, coldStart: false, errorCode: null };
    const finish = (status: number, errorCode: string | null) => {
      if (record.status) return;
      record.status = status;
      record.errorCode = errorCode;
      record.durationMs = Date.now() - startedAt;
      opts.onRequest?.(record);
    };
    const fail = (err: CellhostError) => {
      finish(err.status, err.code);
      sendError(req, res, err, requestId);
    };
    if (req.url && req.url.length > MAX_REQUEST_LINE) {
      fail(new CellhostError('ERR_HEADERS_TOO_LARGE', `the request line is longer than ${MAX_REQUEST_LINE} bytes`));
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > opts.maxBodyBytes) {
      fail(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${opts.maxBodyBytes} bytes`));
      req.resume();
      return;
    }

    opts.pool.acquire(route.service).then(
      (lease) => forward(req, res, lease, route, requestId, record, finish, fail),
      (err: unknown) => {
        if (err instanceof CellhostError) fail(err);
        else {
          log.error('router.acquire_failed', { service: route.service, error: describeError(err) });
          fail(new CellhostError('ERR_INTERNAL', 'the platform could not start the app'));
        }
      },
    );
  });

  function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    lease: Lease,
    route: Route,
    requestId: string,
    record: RequestRecord,
    finish: (status: number, code: string | null) => void,
    fail: (err: CellhostError) => void,
  ): void {
    record.instanceId = lease.instanceId;
    record.coldStart = lease.coldStart;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      lease.release();
    };
    if (req.destroyed || res.destroyed) {
      release();
      finish(499, 'ERR_CLIENT_CLOSED');
      return;
    }
    // undici hands over its abort once the request has a connection; until then a cancel waits
    let abortUpstream: ((err: Error) => void) | null = null;
    let cancelled: Error | null = null;
    const cancel = (err: Error) => {
      if (cancelled) return;
      cancelled = err;
      abortUpstream?.(err);
    };
    const timer = setTimeout(() => {
      cancel(new CellhostError('ERR_REQUEST_TIMEOUT', `the app did not answer within ${route.requestTimeoutMs / 1000} s`));
    }, route.requestTimeoutMs);

    // undici destroys a body stream it gives up on; that must not be the client's socket, or
    // the 413 or 504 meant for the client could never be sent
    let body: PassThrough | null = null;
    if (hasBody(req)) {
      body = new PassThrough();
      req.pipe(body);
      if (req.headers['content-length'] === undefined) {
        // a chunked body has no declared size: count it on the way through
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > opts.maxBodyBytes) {
            req.unpipe(body!);
            cancel(new CellhostError('ERR_BODY_TOO_LARGE', `the request body is larger than ${opts.maxBodyBytes} bytes`));
          }
        });
      }
    }

    const onError = (err: Error) => {
      const wasDone = done;
      if (body) req.unpipe(body);
      // a wedged instance takes no more requests; it stops once this one lets go of it
      if (err instanceof CellhostError && err.code === 'ERR_REQUEST_TIMEOUT') lease.recycle(err.message);
      release();
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
            fail(err);
          };
          const cap = setTimeout(answer, 1000);
          req.once('end', answer);
          req.resume();
          return;
        }
        fail(err);
        return;
      }
      void lease.diagnose().then((death) => {
        fail(death ?? new CellhostError('ERR_APP_REFUSED', `the app refused or dropped the connection (${(err as NodeJS.ErrnoException).code ?? err.message})`));
      });
    };

    // a client that goes away cancels the upstream request
    res.on('close', () => {
      if (!res.writableFinished) cancel(new Error('the client closed the connection'));
      release();
      if (!record.status) finish(499, 'ERR_CLIENT_CLOSED');
    });

    lease.connections.dispatch(
      { path: req.url!, method: req.method as Dispatcher.HttpMethod, headers: forwardHeaders(req, requestId), body },
      {
        onConnect(abort: (err?: Error) => void) {
          abortUpstream = abort;
          if (cancelled) abort(cancelled);
        },
        onHeaders(status: number, raw: Buffer[], resume: () => void, statusMessage: string) {
          res.writeHead(status, statusMessage, responseHeaders(raw, requestId));
          finish(status, null);
          res.on('drain', resume);
          return true;
        },
        // false pauses the upstream socket until the client has taken what was written
        onData(chunk: Buffer) {
          return res.write(chunk);
        },
        onComplete() {
          release();
          res.end();
        },
        onError,
      } as Dispatcher.DispatchHandler,
    );
  }

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? crypto.randomUUID();
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
    for (const [k, v] of Object.entries(headers)) {
      for (const value of Array.isArray(v) ? v : [v]) text += `${k}: ${value}\r\n`;
    }
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

function forwardHeaders(req: http.IncomingMessage, requestId: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connection = req.headers.connection;
  const listed = connection ? new Set(connection.toLowerCase().split(',').map((s) => s.trim())) : null;
  for (const key in req.headers) {
    // the router answered any 100-continue itself; the app gets the body straight away
    const value = req.headers[key];
    if (value === undefined || HOP_BY_HOP.has(key) || key === 'expect' || listed?.has(key)) continue;
    out[key] = value;
  }
  const peer = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
  out['x-forwarded-proto'] = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['x-request-id'] = requestId;
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
