// The router's HTTP/1.1 server side: Node's own parser (llhttp, reached through
// llhttp-binding.ts) reading the socket's handle itself (or fed from its data events where it
// cannot), without http.Server's
// IncomingMessage/ServerResponse streams. The parser does all the validating that http.Server
// relies on (tokens, header bytes, sizes, Content-Length against Transfer-Encoding, chunked
// framing); this file only keeps the connection's order: one request answered at a time,
// pipelined ones wait, bodies stream with backpressure, timeouts as http.Server's. Measured in
// front of the same app: 20–25 % less router CPU per keep-alive request and ~10 % less per
// one-shot connection than http.Server, which is what the router falls back to
// (node-http-server.ts) when the binding is not usable (docs/benchmarks.md).
import net from 'node:net';
import { Readable } from 'node:stream';
import { lingerClose } from './linger.ts';
import type { LlhttpBinding, LlhttpParser } from '../core/llhttp-binding.ts';
import { hostError, RouterRequest, type RouterResponse, type RouterServerOptions } from './request.ts';

interface Parser extends LlhttpParser {
  conn: Connection | null;
}

/** a request read by the parser on one of this server's connections */
export class InboundRequest extends RouterRequest {
  /** the body's reader has not asked for more since its buffer filled */
  bodyFull = false;
  readonly res: OutboundResponse;

  constructor(
    readonly conn: Connection,
    method: string,
    url: string,
    versionMinor: number,
    keepAlive: boolean,
    headers: string[],
  ) {
    super(method, url, versionMinor, keepAlive, headers);
    this.res = new OutboundResponse(conn, this);
  }

  get socket(): net.Socket {
    return this.conn.socket;
  }

  dump(): void {
    if (this.dumping) return;
    this.dumping = true;
    const body = this.body;
    this.body = null;
    if (body && !body.destroyed) body.destroy();
    this.conn.updateFlow();
  }
}

/** what the router sends back: the head once, then the body, framed for this client */
export class OutboundResponse implements RouterResponse {
  headersSent = false;
  /** the whole response has been handed to the socket */
  finished = false;
  /** the connection ends after this response */
  last: boolean;
  private chunked = false;
  private bodyless: boolean;
  private corked = false;

  constructor(
    private readonly conn: Connection,
    private readonly req: InboundRequest,
  ) {
    this.last = !req.keepAlive;
    this.bodyless = req.method === 'HEAD';
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  /** the head: `headers` as [name, value, ...], already free of hop-by-hop fields */
  writeHead(status: number, statusMessage: string, headers: string[], opts?: { close?: boolean; contentLength?: boolean }): void {
    if (opts?.close) this.last = true;
    if (status === 204 || status === 304 || status < 200) this.bodyless = true;
    let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    if (!this.bodyless && !opts?.contentLength) {
      // no length: chunks for a 1.1 client, the connection's end for a 1.0 one
      if (this.req.versionMinor >= 1) {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else this.last = true;
    }
    head += this.last ? 'connection: close\r\n\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=65\r\n\r\n';
    this.headersSent = true;
    // the head leaves with the first body chunk (or the end), in one write
    this.conn.socket.cork();
    this.corked = true;
    this.conn.socket.write(head, 'latin1');
  }

  /** false: the client is behind; the listener's drained() is called once it has caught up */
  write(chunk: Buffer): boolean {
    const socket = this.conn.socket;
    if (this.bodyless || chunk.length === 0) return true;
    let ok: boolean;
    if (this.chunked) {
      if (!this.corked) socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else {
      ok = socket.write(chunk);
      if (this.corked) socket.uncork();
    }
    this.corked = false;
    return ok;
  }

  /** `body`: a whole one, with its content-length given in the head */
  end(body?: string): void {
    if (this.finished) return;
    const socket = this.conn.socket;
    if (body !== undefined && !this.bodyless) socket.write(body);
    if (this.chunked) socket.write('0\r\n\r\n', 'latin1');
    if (this.corked) socket.uncork();
    this.corked = false;
    this.finished = true;
    this.conn.responseDone(this.req);
  }

  destroy(): void {
    this.conn.socket.destroy();
  }
}

// The parser's callbacks and the socket's listeners are the same functions for every connection
// (the parser and the socket point back at it): a one-shot connection allocates no closures.
function newParser(b: LlhttpBinding): Parser {
  const p = b.newParser() as Parser;
  p.conn = null;
  // each callback runs inside the parser's execute: fed (onData) or reading a consumed handle
  p[b.kOnMessageBegin] = function (this: Parser) {
    const c = this.conn!;
    c.executing = true;
    c.headSince = Date.now();
  };
  // a consumed handle's read was parsed (it is what onData's execute returning is, fed)
  if (b.kOnExecute !== null) {
    p[b.kOnExecute] = function (this: Parser, ret: number | (Error & { code?: string })) {
      this.conn?.afterExecute(ret, null);
    };
  }
  p[b.kOnHeaders] = function (this: Parser, headers: string[], url: string) {
    this.conn!.executing = true;
    this.conn!.onPartialHead(headers, url);
  };
  p[b.kOnHeadersComplete] = function (this: Parser, _major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) {
    this.conn!.executing = true;
    this.conn!.onHead(minor, headers, method, url, upgrade, keepAlive);
    return 0;
  };
  p[b.kOnBody] = function (this: Parser, chunk: Buffer) {
    this.conn!.executing = true;
    this.conn!.onBody(chunk);
  };
  p[b.kOnMessageComplete] = function (this: Parser) {
    this.conn!.executing = true;
    this.conn!.onMessageComplete();
  };
  return p;
}

const kConnection = Symbol('connection');
type ConnectionSocket = net.Socket & { [kConnection]: Connection };

function onSocketData(this: ConnectionSocket, data: Buffer): void {
  this[kConnection].onData(data);
}
function onSocketDrain(this: ConnectionSocket): void {
  this[kConnection].current?.listener?.drained();
}
function onSocketClose(this: ConnectionSocket): void {
  this[kConnection].onClose();
}
function ignoreError(): void {}

export class Connection {
  private parser: Parser;
  /** the request being answered; later ones (pipelined) wait in `waiting` */
  current: InboundRequest | null = null;
  private waiting: InboundRequest[] = [];
  /** the request whose body the parser is reading */
  private reading: InboundRequest | null = null;
  private upgrading: InboundRequest | null = null;
  /** when the head being read began; 0 while none is */
  headSince = 0;
  idleSince = 0;
  private partHeaders: string[] = [];
  private partUrl = '';
  private paused = false;
  /** inside the parser's execute: the parser cannot be freed until it returns */
  executing = false;
  /**
   * The socket's handle when the parser reads it in C++ (as http.Server does): no 'data' events,
   * no Buffer per read in JavaScript; the parser calls back after each read. Null: fed from
   * 'data' events (a handle that is not a stream of Node's, or a binding that cannot consume).
   */
  private consumed: (object & { _consumed?: boolean; reading?: boolean; readStart(): number; readStop(): number }) | null = null;
  /** no longer read as HTTP (closing, failed or upgraded) */
  private retired = false;
  /** inside next(): a response finished meanwhile leaves the next request to its loop */
  private starting = false;

  constructor(
    readonly socket: net.Socket,
    private readonly server: Http1Server,
  ) {
    this.parser = server.parsers.pop() ?? newParser(server.binding);
    this.parser.initialize(server.binding.REQUEST, {}, server.opts.maxHeaderSize, 0);
    this.parser.conn = this;
    // as http.Server: the first head is awaited, and timed, from the connection's start
    this.headSince = Date.now();
    (socket as ConnectionSocket)[kConnection] = this;
    const handle = (socket as unknown as { _handle?: Connection['consumed'] & { isStreamBase?: boolean } })._handle;
    if (server.binding.kOnExecute !== null && handle?.isStreamBase && !handle._consumed) {
      handle._consumed = true;
      this.consumed = handle;
      this.parser.consume!(handle);
    } else socket.on('data', onSocketData);
    socket.on('drain', onSocketDrain);
    socket.on('error', ignoreError);
    socket.on('close', onSocketClose);
  }

  onPartialHead(headers: string[], url: string): void {
    for (const h of headers) this.partHeaders.push(h);
    this.partUrl += url;
  }

  onHead(minor: number, headers: string[] | undefined, method: number, url: string | undefined, upgrade: boolean, keepAlive: boolean): void {
    if (!headers) {
      headers = this.partHeaders;
      this.partHeaders = [];
    } else if (this.partHeaders.length) {
      headers = this.partHeaders.concat(headers);
      this.partHeaders = [];
    }
    if (url === undefined || this.partUrl) {
      url = this.partUrl + (url ?? '');
      this.partUrl = '';
    }
    this.headSince = 0;
    // requests parsed behind one that ends the connection are not served
    if (this.retired) return;
    const req = new InboundRequest(this, this.server.binding.methods[method]!, url, minor, keepAlive, headers);
    if (upgrade) {
      this.upgrading = req;
      return;
    }
    if (req.hasBody) {
      req.body = new Readable({
        read: () => {
          req.bodyFull = false;
          this.updateFlow();
        },
      });
      // a body nobody reads to the end (the app answered first, the client went away) must not
      // leave an error nobody listens to
      req.body.on('error', () => {});
    }
    this.reading = req;
    if (this.current) this.waiting.push(req);
    else this.begin(req);
    this.updateFlow();
  }

  onBody(chunk: Buffer): void {
    const req = this.reading;
    if (!req) return;
    req.received += chunk.length;
    if (req.dumping || !req.body) return;
    if (req.received > req.bodyLimit) {
      req.listener?.bodyTooLarge();
      req.dump();
      return;
    }
    if (!req.body.push(chunk)) {
      req.bodyFull = true;
      this.updateFlow();
    }
  }

  onMessageComplete(): void {
    // a chunked body's trailer fields arrive as headers: they are not the next request's, and
    // are not forwarded (undici sends none)
    if (this.partHeaders.length) this.partHeaders = [];
    this.partUrl = '';
    const req = this.reading;
    if (!req) return;
    this.reading = null;
    this.idleSince = Date.now();
    req.complete = true;
    req.body?.push(null);
    this.updateFlow();
  }

  private begin(req: InboundRequest): void {
    const refused = hostError(req);
    if (refused) {
      this.fail(refused);
      return;
    }
    this.current = req;
    if (req.expect !== undefined) {
      if (req.expect.toLowerCase() !== '100-continue') {
        req.res.writeHead(417, 'Expectation Failed', ['content-length', '0'], { close: true, contentLength: true });
        req.dump();
        req.res.end();
        return;
      }
      // the body is sent to the app without waiting: the client may send it now
      this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    this.server.opts.onRequest(req);
  }

  onData(data: Buffer): void {
    this.executing = true;
    const ret = this.parser.execute(data);
    this.afterExecute(ret, data);
  }

  /** a read was parsed: `data` when it was fed, null when the parser read it (consumed) */
  afterExecute(ret: number | (Error & { code?: string }), data: Buffer | null): void {
    this.executing = false;
    if (this.retired) {
      this.freeParser();
      return;
    }
    if (typeof ret !== 'number') {
      this.fail(ret);
      return;
    }
    if (this.upgrading) {
      const req = this.upgrading;
      this.upgrading = null;
      // a tunnel to anywhere (CONNECT) is not served, nor an upgrade pipelined behind a request
      if (this.current || req.method === 'CONNECT') {
        this.detach();
        this.socket.destroy();
        return;
      }
      // what followed the head in this read is the tunnel's (copied: a consumed read's bytes are
      // the parser's buffer, reused by the next read)
      const rest = data ? data.subarray(ret) : Buffer.from(this.parser.getCurrentBuffer!().subarray(ret));
      this.detach();
      this.server.opts.onUpgrade(req, this.socket, rest);
    }
  }

  private fail(err: Error & { code?: string }): void {
    // mid-response, a 400 would land inside the answer the client is reading
    const current = this.current;
    this.detach();
    if (current) {
      this.socket.destroy();
      return;
    }
    this.server.opts.onClientError(err, this.socket);
    // the socket is no longer read (a consumed one not even for its end): what the client still
    // sends, and its close, must be read for the socket to close, and a stop must find it
    this.server.linger(this.socket);
  }

  /** pause reading while a body's reader is behind or requests wait their turn; else read */
  updateFlow(): void {
    const reading = this.reading;
    const pause = this.waiting.length > 0 || (reading !== null && reading.bodyFull && !reading.dumping);
    if (pause === this.paused || this.socket.destroyed) return;
    this.paused = pause;
    const handle = this.consumed;
    if (handle) {
      // the socket's own pause() does not reach a consumed handle (as http.Server's onSocketPause)
      handle.reading = !pause;
      if (pause) handle.readStop();
      else handle.readStart();
    } else if (pause) this.socket.pause();
    else this.socket.resume();
  }

  /** the response to `req` has been handed to the socket: the next request's turn */
  responseDone(req: InboundRequest): void {
    if (this.current !== req) return;
    this.current = null;
    if (!req.complete) req.dump();
    if (req.res.last) {
      this.endSoon();
      return;
    }
    this.idleSince = Date.now();
    this.next();
  }

  /** start the waiting requests in turn: a loop, not a recursion, for those answered at once */
  private next(): void {
    if (this.starting) return;
    this.starting = true;
    while (this.current === null && !this.retired && this.waiting.length) this.begin(this.waiting.shift()!);
    this.starting = false;
    this.updateFlow();
  }

  /** end after what was written has gone out, as http.Server's destroySoon */
  endSoon(): void {
    const socket = this.socket;
    // a body still arriving (answered early, or pipelined behind the last answer)
    const unread = this.reading !== null;
    this.detach();
    if (socket.destroyed) return;
    if (unread) {
      this.server.linger(socket);
      return;
    }
    socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  /** the timeouts, checked every so often for all connections (as http.Server does) */
  check(now: number): void {
    const { headersTimeoutMs, keepAliveTimeoutMs } = this.server.opts;
    if (this.current) return;
    if (this.headSince && now - this.headSince > headersTimeoutMs) this.fail(Object.assign(new Error('headers timeout'), { code: 'HPE_HEADERS_TIMEOUT' }));
    else if (!this.reading && !this.headSince && now - this.idleSince > keepAliveTimeoutMs) this.socket.destroy();
  }

  onClose(): void {
    this.detach();
    const req = this.current;
    if (req && !req.res.finished) req.listener?.aborted();
    const reading = this.reading;
    if (reading?.body && !reading.complete) reading.body.destroy(new Error('the client closed the connection'));
  }

  /** the parser goes back to the server's spares; the socket is no longer read as HTTP */
  private detach(): void {
    if (this.retired) return;
    this.retired = true;
    this.server.live.delete(this);
    if (!this.consumed) this.socket.removeListener('data', onSocketData);
    this.headSince = 0;
    if (!this.executing) this.freeParser();
  }

  private freeParser(): void {
    const p = this.parser;
    if (!p) return;
    this.parser = null as unknown as Parser;
    p.conn = null;
    const handle = this.consumed;
    if (handle) {
      // the socket is read by JavaScript again (a tunnel's, or nobody's while it closes)
      this.consumed = null;
      handle._consumed = false;
      p.unconsume!();
      if (this.paused && !this.socket.destroyed) {
        handle.reading = true;
        handle.readStart();
      }
    }
    p.remove?.();
    p.free();
    if (this.server.parsers.length < 1000) this.server.parsers.push(p);
  }
}

/** a net.Server speaking HTTP/1.1 to each connection, with http.Server's ways to close them */
export class Http1Server extends net.Server {
  readonly engine = 'llhttp';
  readonly live = new Set<Connection>();
  /** answered and closing, the client's late bytes still read and dropped */
  private readonly lingering = new Set<net.Socket>();
  readonly parsers: Parser[] = [];
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly opts: RouterServerOptions,
    readonly binding: LlhttpBinding,
  ) {
    super({ noDelay: true });
    this.on('connection', (socket: net.Socket) => this.adopt(socket));
    this.on('listening', () => {
      this.sweeper = setInterval(() => {
        const now = Date.now();
        for (const c of this.live) c.check(now);
      }, opts.checkEveryMs).unref();
    });
    this.on('close', () => {
      if (this.sweeper) clearInterval(this.sweeper);
    });
  }

  /** serve HTTP/1.1 on a connection accepted elsewhere (a TLS one), with this server's limits */
  adopt(socket: net.Socket): void {
    this.live.add(new Connection(socket, this));
  }

  /** ends a connection whose client is still sending, without a reset (linger.ts) */
  linger(socket: net.Socket): void {
    this.lingering.add(socket);
    socket.once('close', () => this.lingering.delete(socket));
    lingerClose(socket);
  }

  /** connections with no request in progress (a lingering one has none) */
  closeIdleConnections(): void {
    for (const c of this.live) if (!c.current) c.socket.destroy();
    for (const s of this.lingering) s.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.live) c.socket.destroy();
    for (const s of this.lingering) s.destroy();
  }
}
