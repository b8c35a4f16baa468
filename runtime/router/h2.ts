// HTTP/2 on the HTTPS listener (ALPN h2): node:http2 sessions whose streams become requests of
// the same router as HTTP/1.1 ones, so routing, limits, error pages and metering are the
// router's. The app is still reached over HTTP/1.1: each stream is one upstream request.
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { dumpStreamBody, RouterRequest, streamBody, type RouterResponse } from './request.ts';

export interface H2Options {
  /** the router's request handling */
  serve(req: RouterRequest): void;
  /** header block size at most (HPACK-decoded) */
  maxHeaderBytes: number;
  /** a connection that has sent no request this long after its handshake is closed */
  headersTimeoutMs: number;
  /** a connection with no stream open this long is closed */
  keepAliveTimeoutMs: number;
  /** streams open at once per connection */
  maxStreams?: number;
}

export interface H2Handler {
  /** serve HTTP/2 on a TLS socket that negotiated h2 */
  accept(socket: tls.TLSSocket): void;
  closeIdleSessions(): void;
  closeAllSessions(): void;
  readonly sessions: ReadonlySet<http2.ServerHttp2Session>;
}

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, HTTP2_HEADER_STATUS } = http2.constants;
const END_STREAM = 0x1;
// fields HTTP/2 forbids (RFC 9113 §8.2.2); the router has already taken hop-by-hop ones out
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export function createH2Handler(opts: H2Options): H2Handler {
  const sessions = new Set<http2.ServerHttp2Session>();
  const open = new WeakMap<http2.ServerHttp2Session, number>();
  const idleTimers = new WeakMap<http2.ServerHttp2Session, NodeJS.Timeout>();

  const server = http2.createServer({
    settings: { maxConcurrentStreams: opts.maxStreams ?? 128, maxHeaderListSize: opts.maxHeaderBytes, enablePush: false },
    maxHeaderListPairs: 1000,
  });

  const idleAfter = (session: http2.ServerHttp2Session, ms: number) => {
    clearTimeout(idleTimers.get(session));
    idleTimers.set(session, setTimeout(() => session.close(), ms).unref());
  };

  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    open.set(session, 0);
    idleAfter(session, opts.headersTimeoutMs);
    session.on('error', () => {});
    session.on('close', () => {
      clearTimeout(idleTimers.get(session));
      sessions.delete(session);
    });
  });

  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => {
    const session = stream.session as http2.ServerHttp2Session;
    const method = headers[':method'] ?? 'GET';
    // CONNECT (a tunnel anywhere, or a WebSocket over HTTP/2) is not served: browsers then open
    // an HTTP/1.1 connection for their WebSockets
    if (method === 'CONNECT') {
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    open.set(session, open.get(session)! + 1);
    clearTimeout(idleTimers.get(session));
    stream.on('error', () => {});
    stream.once('close', () => {
      const n = open.get(session)! - 1;
      open.set(session, n);
      if (n === 0 && !session.closed) idleAfter(session, opts.keepAliveTimeoutMs);
    });
    opts.serve(new H2Request(stream, headers, session.socket as net.Socket, (flags & END_STREAM) !== 0));
  });

  return {
    accept(socket) {
      server.emit('connection', socket);
    },
    closeIdleSessions() {
      for (const s of sessions) if (open.get(s) === 0) s.close();
    },
    closeAllSessions() {
      for (const s of sessions) s.destroy();
    },
    sessions,
  };
}

/** a stream's request as the router reads it: its header fields as HTTP/1.1 would carry them */
class H2Request extends RouterRequest {
  readonly res: H2Response;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly tlsSocket: net.Socket,
    ended: boolean,
  ) {
    // the app gets a Host field, as over HTTP/1.1; the other fields as they came (HTTP/2 names
    // are lowercase already)
    const raw: string[] = [];
    const host = headers[':authority'] ?? headers.host;
    if (host !== undefined) raw.push('host', host);
    for (const name of Object.keys(headers)) {
      if (name.charCodeAt(0) === 58 /* : */ || name === 'host') continue;
      const value = headers[name];
      if (Array.isArray(value)) for (const v of value) raw.push(name, v);
      else if (value !== undefined) raw.push(name, value);
    }
    super(headers[':method'] ?? 'GET', headers[':path'] ?? '/', 1, true, raw);
    this.res = new H2Response(stream, this);
    if (ended) {
      this.complete = true;
      stream.resume();
    } else this.readBody();
    stream.once('close', () => {
      if (!this.res.finished) this.listener?.aborted();
      if (this.body && !this.complete) this.body.destroy(new Error('the client closed the stream'));
    });
  }

  get socket(): net.Socket {
    return this.tlsSocket;
  }

  private readBody(): void {
    streamBody(this, this.stream);
  }

  /** the rest of the body is not wanted: read it and throw it away */
  dump(): void {
    dumpStreamBody(this, this.stream);
  }
}

class H2Response implements RouterResponse {
  headersSent = false;
  finished = false;
  private bodyless: boolean;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    req: H2Request,
  ) {
    this.bodyless = req.method === 'HEAD';
    stream.on('drain', () => req.listener?.drained());
  }

  get destroyed(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  writeHead(status: number, _statusMessage: string, headers: string[]): void {
    if (status === 204 || status === 304 || status < 200) this.bodyless = true;
    const out: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: status };
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (CONNECTION_SPECIFIC.has(name)) continue;
      const value = headers[i + 1]!;
      const prior = out[name];
      // repeated fields: Set-Cookie stays a list, the rest combine as RFC 9110 allows
      if (prior === undefined) out[name] = value;
      else if (name === 'set-cookie') out[name] = Array.isArray(prior) ? [...prior, value] : [String(prior), value];
      else out[name] = `${String(prior)}, ${value}`;
    }
    this.headersSent = true;
    if (this.destroyed) return;
    try {
      this.stream.respond(out, { endStream: this.bodyless });
    } catch {
      // a field HTTP/2 cannot carry: the stream fails rather than the session
      this.stream.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  write(chunk: Buffer): boolean {
    if (this.bodyless || chunk.length === 0 || this.destroyed) return true;
    return this.stream.write(chunk);
  }

  end(body?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.destroyed) return;
    if (this.bodyless) return;
    this.stream.end(body);
  }

  destroy(): void {
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
  }
}
