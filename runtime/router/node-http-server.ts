// The router's HTTP/1 server when Node's parser binding cannot be used (llhttp-binding.ts says
// why): node:http's own server, its IncomingMessage and ServerResponse dressed as the router's
// request and response. Same behaviour as http1.ts (limits, timeouts, flow control, upgrades,
// the refusals), at node:http's cost per request; one difference: pipelined requests reach the
// app together (node:http answers them in order all the same).
import http from 'node:http';
import type net from 'node:net';
import { lingerClose } from './linger.ts';
import { dumpStreamBody, hostError, RouterRequest, streamBody, type RouterResponse, type RouterServer, type RouterServerOptions } from './request.ts';

class NodeRequest extends RouterRequest {
  readonly res: NodeResponse;

  constructor(
    private readonly incoming: http.IncomingMessage,
    response: http.ServerResponse | null,
  ) {
    // keep-alive is node:http's to decide here
    super(incoming.method ?? 'GET', incoming.url ?? '/', incoming.httpVersionMinor, true, incoming.rawHeaders);
    this.res = new NodeResponse(response, this);
  }

  get socket(): net.Socket {
    return this.incoming.socket;
  }

  /** reads the body into the router's stream, counted against the limit, with backpressure */
  readBody(): void {
    const incoming = this.incoming;
    if (!this.hasBody) {
      this.complete = true;
      incoming.resume();
      return;
    }
    streamBody(this, incoming);
  }

  dump(): void {
    dumpStreamBody(this, this.incoming);
  }

  /**
   * Answered before the body arrived: should the connection end after this answer while the body
   * is still arriving, it lingers rather than ending in a reset, as http1.ts does (linger.ts).
   * node:http ends a last response's socket with destroySoon().
   */
  lingerOnClose(): void {
    const incoming = this.incoming;
    const socket = incoming.socket as net.Socket & { destroySoon(): void };
    const destroySoon = socket.destroySoon;
    socket.destroySoon = function (this: typeof socket) {
      if (incoming.complete) destroySoon.call(this);
      else lingerClose(this);
    };
  }
}

class NodeResponse implements RouterResponse {
  finished = false;

  constructor(
    private readonly res: http.ServerResponse | null,
    private readonly req: NodeRequest,
  ) {
    if (!res) return;
    res.on('drain', () => req.listener?.drained());
    res.on('close', () => {
      if (!this.finished) req.listener?.aborted();
    });
  }

  get headersSent(): boolean {
    return this.res?.headersSent ?? false;
  }

  get destroyed(): boolean {
    return !this.res || this.res.destroyed || this.res.socket?.destroyed !== false;
  }

  writeHead(status: number, statusMessage: string, headers: string[], opts?: { close?: boolean }): void {
    const res = this.res!;
    if (opts?.close) res.shouldKeepAlive = false;
    res.writeHead(status, statusMessage, headers);
  }

  write(chunk: Buffer): boolean {
    return this.res!.write(chunk);
  }

  end(body?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.req.complete) this.req.lingerOnClose();
    this.res!.end(body);
    // answered before the body was read: the rest is read and thrown away, as http1.ts does
    if (!this.req.complete) this.req.dump();
  }

  destroy(): void {
    this.res?.destroy();
  }
}

export function createNodeHttpServer(opts: RouterServerOptions): RouterServer {
  const server = http.createServer({
    maxHeaderSize: opts.maxHeaderSize,
    headersTimeout: opts.headersTimeoutMs,
    // a request may stream for as long as the app takes; the app's timeout is the router's
    requestTimeout: 0,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    // refused below with the router's own answer, as http1.ts does
    requireHostHeader: false,
    connectionsCheckingInterval: opts.checkEveryMs,
    noDelay: true,
  });
  server.timeout = 0;
  server.on('request', (incoming: http.IncomingMessage, response: http.ServerResponse) => {
    const req = new NodeRequest(incoming, response);
    const refused = hostError(req);
    if (refused) {
      opts.onClientError(refused, incoming.socket);
      return;
    }
    req.readBody();
    opts.onRequest(req);
  });
  server.on('upgrade', (incoming: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    // node:http keeps half-closed sockets open; a plain net.Server (http1.ts) ends them
    socket.allowHalfOpen = false;
    opts.onUpgrade(new NodeRequest(incoming, null), socket, head);
  });
  // as http1.ts: an expectation other than 100-continue is refused, and the connection closed
  server.on('checkExpectation', (_req: http.IncomingMessage, response: http.ServerResponse) => {
    response.shouldKeepAlive = false;
    response.writeHead(417, { 'content-length': '0' });
    response.end();
  });
  // a tunnel to anywhere is not served
  server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => socket.destroy());
  server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => opts.onClientError(err, socket));
  return Object.assign(server, {
    engine: 'node:http' as const,
    // as https.Server does with its TLS sockets: node:http's own connection handling, timeouts
    // and connection tracking (closeIdleConnections sees them)
    adopt(socket: net.Socket) {
      server.emit('connection', socket);
    },
  });
}
