// One instance's upstream connections on Node's own HTTP/1 parser, the one the router's server
// side reads clients with. A request goes out as one head (and its body); the response's head and
// body reach the handler as the parser reads them. It is used where that parser's binding works,
// instead of undici's Pool (upstream.ts), which parses with llhttp compiled to WebAssembly and
// makes a request object, header buffers and timers per request: about half of what the router
// allocated per proxied request, and its largest CPU cost after the sockets (docs/benchmarks.md).
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { LlhttpBinding, LlhttpParser } from '../core/llhttp-binding.ts';
import type { Upstream, UpstreamHandler, UpstreamRequest } from './upstream-types.ts';

/** as undici's connector: a connect that takes longer fails the request */
const CONNECT_TIMEOUT_MS = 10_000;
/** an idle connection is not reused this close to the app's keep-alive timeout: its close may be on the way */
const KEEP_ALIVE_MARGIN_MS = 2000;
/** without a hint from the app (Keep-Alive: timeout=N): Node's servers close after 5 s idle */
const DEFAULT_IDLE_MS = 4000;
const MAX_IDLE_MS = 600_000;
const MAX_HEADER_BYTES = 64 * 1024;
/** methods whose request has a body by definition: sent with content-length: 0 when it has none */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

type Parser = LlhttpParser & { conn: Conn | null };
type FailError = Error & { code?: string };

function socketError(message: string, code: string): FailError {
  return Object.assign(new Error(message), { code });
}

export class Http1Upstream implements Upstream {
  /** open and connecting connections; a closed one leaves the list */
  private conns: Conn[] = [];
  /** requests waiting for a free connection, first come first served */
  private queue: { req: UpstreamRequest; handler: UpstreamHandler }[] = [];
  /** where the next search for a free connection starts (see pickIdle) */
  private turn = 0;
  private closed = false;
  /** a connection opened before any request (connectNow), until the first request takes it */
  private ahead: Conn | null = null;

  constructor(
    readonly binding: LlhttpBinding,
    readonly address: { host: string; port: number },
    private readonly limit: number,
    connectNow = false,
  ) {
    if (connectNow) this.ahead = this.open();
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closed) {
      process.nextTick(() => handler.onError(socketError('the instance stopped', 'UND_ERR_DESTROYED')));
      return;
    }
    const conn = this.pickIdle() ?? this.takeAhead() ?? (this.conns.length < this.limit ? this.open() : null);
    if (conn) conn.send(req, handler);
    else this.queue.push({ req, handler });
  }

  destroy(): Promise<void> {
    this.closed = true;
    const err = socketError('the instance stopped', 'UND_ERR_DESTROYED');
    for (const conn of [...this.conns]) conn.fail(err);
    for (const { handler } of this.queue.splice(0)) handler.onError(err);
    return Promise.resolve();
  }

  /**
   * The free, open connections are taken in turn, not the first in the list: under steady load
   * every connection the load needed stays in use, so none outlives the app's keep-alive timeout
   * and reconnects on the request path (a connect in code V8 has not optimized, as requests queue).
   */
  private pickIdle(): Conn | null {
    const now = Date.now();
    const n = this.conns.length;
    for (let k = 0; k < n; k++) {
      const i = (this.turn + k) % n;
      const c = this.conns[i]!;
      if (c.state !== 'idle') continue;
      if (!c.fresh && now >= c.reusableUntil) {
        // the app may be closing it right now: not worth the race, a new one is made instead
        c.fail(socketError('idle past the keep-alive timeout', 'UND_ERR_CLOSED'));
        return this.pickIdle();
      }
      this.turn = i + 1;
      return c;
    }
    return null;
  }

  private takeAhead(): Conn | null {
    const c = this.ahead;
    this.ahead = null;
    return c && c.state === 'connecting' ? c : null;
  }

  private open(): Conn {
    const conn = new Conn(this);
    this.conns.push(conn);
    return conn;
  }

  /** a connection finished its request and can take another */
  released(conn: Conn): void {
    const next = this.queue.shift();
    if (next) conn.send(next.req, next.handler);
  }

  /** a connection closed: out of the list; a waiting request gets a new one */
  removed(conn: Conn): void {
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    if (this.ahead === conn) this.ahead = null;
    if (!this.closed && this.queue.length && this.conns.length < this.limit) {
      const next = this.queue.shift()!;
      this.open().send(next.req, next.handler);
    }
  }
}

/** one keep-alive connection to the instance: one request at a time */
class Conn {
  state: 'connecting' | 'idle' | 'busy' | 'closed' = 'connecting';
  reusableUntil = 0;
  /** no request sent on it yet: kept however long it waits (one opened ahead of a frozen app's thaw) */
  fresh = true;
  private readonly socket: net.Socket;
  private readonly parser: Parser;
  private handler: UpstreamHandler | null = null;
  private method = '';
  /** the app may keep the connection after this response */
  private keepAlive = false;
  /** the response is a 1xx before the real one */
  private informational = false;
  private idleMs = DEFAULT_IDLE_MS;
  private partHeaders: string[] = [];
  private body: Readable | null = null;
  private chunked = false;
  /** the request's body is all written (or it had none) */
  private bodyDone = true;
  private paused = false;
  /** an error seen on the socket, reported when it closes */
  private error: FailError | null = null;
  private connectTimer: NodeJS.Timeout | null;
  private pending: { req: UpstreamRequest } | null = null;
  /** inside send's onConnect: an abort then needs no close */
  private sending = false;
  private early: Error | null = null;
  /** inside the parser's execute or finish: the parser is freed when it returns, not before */
  private executing = false;
  private freeLater = false;

  constructor(private readonly upstream: Http1Upstream) {
    const { host, port } = upstream.address;
    const socket = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
    this.socket = socket;
    this.parser = newParser(upstream.binding, this);
    this.connectTimer = setTimeout(() => this.fail(socketError(`connect to ${host}:${port} timed out`, 'UND_ERR_CONNECT_TIMEOUT')), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => this.onConnected());
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('drain', () => this.body?.resume());
    socket.on('error', (err: FailError) => void (this.error ??= err));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
  }

  send(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.handler = handler;
    this.fresh = false;
    this.method = req.method;
    this.informational = false;
    const wasIdle = this.state === 'idle';
    if (wasIdle) this.state = 'busy';
    this.early = null;
    this.sending = true;
    handler.onConnect((err) => this.abort(handler, err));
    this.sending = false;
    const early = this.early as Error | null;
    if (early) {
      // cancelled before anything went out (its client left while it waited): the connection
      // stays as it was, for the next request
      this.early = null;
      this.handler = null;
      if (wasIdle) this.state = 'idle';
      handler.onError(early);
      if (this.state === 'idle') this.upstream.released(this);
      return;
    }
    if (this.state === 'connecting') this.pending = { req };
    else this.write(req);
  }

  private onConnected(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.state !== 'connecting') return;
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      this.state = 'busy';
      this.write(pending.req);
    } else {
      this.state = 'idle';
      this.reusableUntil = Date.now() + this.idleMs;
      this.upstream.released(this);
    }
  }

  private write(req: UpstreamRequest): void {
    const h = req.headers;
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    let hasLength = false;
    for (let i = 0; i < h.length; i += 2) {
      const key = h[i]!;
      if (key.length === 14 && key.toLowerCase() === 'content-length') hasLength = true;
      head += `${key}: ${h[i + 1]}\r\n`;
    }
    const body = req.body;
    this.chunked = body !== null && !hasLength;
    if (this.chunked) head += 'transfer-encoding: chunked\r\n';
    else if (body === null && !hasLength && PAYLOAD_METHODS.has(req.method)) head += 'content-length: 0\r\n';
    head += 'connection: keep-alive\r\n\r\n';
    this.socket.write(head, 'latin1');
    this.bodyDone = body === null;
    if (body) {
      this.body = body;
      body.on('data', this.onBodyData);
      body.once('end', this.onBodyEnd);
      body.once('error', this.onBodyError);
    }
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    const socket = this.socket;
    let ok: boolean;
    if (this.chunked) {
      if (chunk.length === 0) return;
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else ok = socket.write(chunk);
    // the socket's buffer is full: the client's body waits for its drain
    if (!ok) this.body?.pause();
  };

  private readonly onBodyEnd = (): void => {
    if (this.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.detachBody();
    this.bodyDone = true;
  };

  private readonly onBodyError = (err: Error): void => {
    if (this.handler) this.abort(this.handler, err);
  };

  private detachBody(): void {
    const body = this.body;
    if (!body) return;
    this.body = null;
    body.removeListener('data', this.onBodyData);
    body.removeListener('end', this.onBodyEnd);
    body.removeListener('error', this.onBodyError);
  }

  private onData(data: Buffer): void {
    if (this.state === 'closed') return;
    if (!this.handler) {
      // bytes with no request out: the app broke the protocol, the connection cannot be trusted
      this.fail(socketError('the app sent bytes with no request', 'UND_ERR_INFO'));
      return;
    }
    this.executing = true;
    const ret = this.parser.execute(data);
    this.executing = false;
    if (this.freeLater) return this.freeParser();
    if (typeof ret !== 'number') this.fail(Object.assign(new Error(`the app's response could not be parsed: ${ret.message}`), { code: ret.code ?? 'HPE_INVALID' }));
  }

  private onEnd(): void {
    // a body that runs to the close ends here
    if (this.handler && this.state === 'busy') {
      this.executing = true;
      const ret = this.parser.finish();
      this.executing = false;
      if (this.freeLater) this.freeParser();
      else if (ret !== undefined && typeof ret !== 'number') this.error ??= Object.assign(new Error(`the app's response was cut short: ${ret.message}`), { code: ret.code ?? 'HPE_INVALID' });
    }
    // the app closed its side: nothing more goes out on this connection
    this.fail(this.error ?? socketError('the app closed the connection', 'UND_ERR_SOCKET'));
  }

  private onClose(): void {
    const handler = this.handler;
    this.close();
    if (handler) handler.onError(this.error ?? socketError('the app closed the connection', 'UND_ERR_SOCKET'));
  }

  onHeadersComplete(headers: string[] | undefined, status: number, statusMessage: string, keepAlive: boolean): number {
    if (!headers) {
      headers = this.partHeaders;
      this.partHeaders = [];
    }
    const handler = this.handler;
    if (!handler) return 0;
    // 100 Continue, 103 Early Hints: the real response follows
    if (status < 200 && status !== 101) {
      this.informational = true;
      return 1;
    }
    if (status === 101) {
      this.fail(socketError('the app switched protocols on a request that asked for none', 'UND_ERR_INFO'));
      return 1;
    }
    this.keepAlive = keepAlive;
    this.idleMs = keepAliveHint(headers) ?? DEFAULT_IDLE_MS;
    handler.onHeaders(status, headers, this.resume, statusMessage);
    // a HEAD response's length describes a body that is not sent
    return this.method === 'HEAD' ? 1 : 0;
  }

  onPartialHeaders(headers: string[]): void {
    for (const h of headers) this.partHeaders.push(h);
  }

  onBody(chunk: Buffer): void {
    // false: the client's socket is full; reading waits for its drain (resume)
    if (this.handler && !this.handler.onData(chunk) && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private readonly resume = (): void => {
    if (!this.paused) return;
    this.paused = false;
    if (this.state !== 'closed') this.socket.resume();
  };

  onMessageComplete(): void {
    if (this.informational) {
      this.informational = false;
      return;
    }
    const handler = this.handler;
    // a chunked body's trailer fields come as partial headers: not the next response's
    if (this.partHeaders.length) this.partHeaders = [];
    if (!handler) return;
    this.handler = null;
    this.resume();
    // reusable only when both sides of the exchange are complete and the app keeps it open
    if (this.keepAlive && this.bodyDone) {
      this.state = 'idle';
      this.reusableUntil = Date.now() + this.idleMs - KEEP_ALIVE_MARGIN_MS;
    } else this.close();
    handler.onComplete();
    if (this.state === 'idle') this.upstream.released(this);
  }

  private abort(handler: UpstreamHandler, err: Error): void {
    if (this.handler !== handler) return;
    if (this.sending) this.early ??= err;
    else this.fail(err);
  }

  /** ends the connection; the request on it, if any, fails with `err` */
  fail(err: Error): void {
    if (this.state === 'closed') return;
    const handler = this.handler;
    this.close();
    handler?.onError(err);
  }

  private close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.handler = null;
    this.pending = null;
    this.detachBody();
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.socket.destroy();
    this.parser.conn = null;
    if (this.executing) this.freeLater = true;
    else this.freeParser();
    this.upstream.removed(this);
  }

  private freeParser(): void {
    this.freeLater = false;
    this.parser.remove?.();
    this.parser.free();
  }
}

/** the app's Keep-Alive: timeout=N, in ms (bounded), or null */
function keepAliveHint(headers: string[]): number | null {
  for (let i = 0; i < headers.length; i += 2) {
    const key = headers[i]!;
    if (key.length !== 10 || key.toLowerCase() !== 'keep-alive') continue;
    const m = /timeout=(\d+)/i.exec(headers[i + 1]!);
    return m ? Math.min(MAX_IDLE_MS, Number(m[1]) * 1000) : null;
  }
  return null;
}

// The parser's callbacks are the same functions for every connection (the parser points back at it)
function newParser(b: LlhttpBinding, conn: Conn): Parser {
  const p = b.newParser() as Parser;
  p.conn = conn;
  p[b.kOnMessageBegin] = function () {};
  p[b.kOnHeaders] = function (this: Parser, headers: string[]) {
    this.conn?.onPartialHeaders(headers);
  };
  p[b.kOnHeadersComplete] = function (this: Parser, _major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown, status: number, statusMessage: string, _upgrade: boolean, keepAlive: boolean) {
    return this.conn ? this.conn.onHeadersComplete(headers, status, statusMessage, keepAlive) : 0;
  };
  p[b.kOnBody] = function (this: Parser, chunk: Buffer) {
    this.conn?.onBody(chunk);
  };
  p[b.kOnMessageComplete] = function (this: Parser) {
    this.conn?.onMessageComplete();
  };
  p.initialize(b.RESPONSE, {}, MAX_HEADER_BYTES, 0);
  return p;
}
