// A request as the router sees it, whichever HTTP/1 server read it: the fast one on Node's parser
// (http1.ts) or node:http's own (node-http-server.ts). Both read the head into these fields once
// and give the body as a stream; the router answers through a RouterResponse.
import type net from 'node:net';
import { Readable } from 'node:stream';

/** what the router does when the client's side of an exchange moves */
export interface ExchangeListener {
  /** the client went away before its response was finished */
  aborted(): void;
  /** the client has taken what was written: the upstream may go on */
  drained(): void;
  /** the body grew past `bodyLimit` (a chunked one: a declared length is checked up front) */
  bodyTooLarge(): void;
}

/** what the router sends back: the head once, then the body, framed for this client */
export interface RouterResponse {
  readonly headersSent: boolean;
  /** the whole response has been handed to the socket */
  readonly finished: boolean;
  readonly destroyed: boolean;
  /** the head: `headers` as [name, value, ...], already free of hop-by-hop fields */
  writeHead(status: number, statusMessage: string, headers: string[], opts?: { close?: boolean; contentLength?: boolean }): void;
  /** false: the client is behind; the listener's drained() is called once it has caught up */
  write(chunk: Buffer): boolean;
  /** `body`: a whole one, with its content-length given in the head */
  end(body?: string): void;
  destroy(): void;
}

/** a request's head, and its body as a stream when it has one */
export abstract class RouterRequest {
  /** the header fields as sent, [name, value, ...] */
  rawHeaders: string[];
  /** each field's name lowercased, at the name's index in rawHeaders */
  names: string[];
  /**
   * the Host field (the router may replace it with an absolute-form target's authority), and
   * the other fields the router reads
   */
  host: string | undefined = undefined;
  /** more than one Host field: which one names the service is ambiguous, so it is refused */
  duplicateHost = false;
  contentLength: string | undefined = undefined;
  transferEncoding: string | undefined = undefined;
  connection: string | undefined = undefined;
  accept: string | undefined = undefined;
  expect: string | undefined = undefined;
  upgradeTo: string | undefined = undefined;
  requestId: string | undefined = undefined;
  // the client's forwarding fields: read only when it is a proxy the operator trusts
  forwardedFor: string | undefined = undefined;
  forwardedProto: string | undefined = undefined;
  forwardedHost: string | undefined = undefined;
  forwarded: string | undefined = undefined;
  /** the body, for a request with one; ended when the message is */
  body: Readable | null = null;
  /** the whole message has been read (a body too) */
  complete = false;
  /** body bytes read so far */
  received = 0;
  /** the rest of the body is read and thrown away (answered early, or given up on) */
  dumping = false;
  bodyLimit = Infinity;
  listener: ExchangeListener | null = null;
  abstract readonly res: RouterResponse;

  constructor(
    readonly method: string,
    /** the request target; origin-form once the router has read an absolute-form one */
    public url: string,
    readonly versionMinor: number,
    readonly keepAlive: boolean,
    headers: string[],
  ) {
    this.rawHeaders = headers;
    // every name lowercased once, here: the router's forwarding reads `names` too
    const names = (this.names = new Array<string>(headers.length));
    for (let i = 0; i < headers.length; i += 2) {
      const name = (names[i] = headers[i]!.toLowerCase());
      const value = headers[i + 1]!;
      switch (name) {
        case 'host':
          if (this.host === undefined) this.host = value;
          else this.duplicateHost = true;
          break;
        case 'accept':
          this.accept = value;
          break;
        case 'expect':
          this.expect = value;
          break;
        case 'upgrade':
          this.upgradeTo = value;
          break;
        case 'connection':
          this.connection = this.connection === undefined ? value : `${this.connection}, ${value}`;
          break;
        case 'x-request-id':
          this.requestId = value;
          break;
        case 'content-length':
          this.contentLength = value;
          break;
        case 'transfer-encoding':
          this.transferEncoding = value;
          break;
        case 'x-forwarded-for':
          this.forwardedFor = this.forwardedFor === undefined ? value : `${this.forwardedFor}, ${value}`;
          break;
        case 'x-forwarded-proto':
          this.forwardedProto ??= value;
          break;
        case 'x-forwarded-host':
          this.forwardedHost ??= value;
          break;
        case 'forwarded':
          this.forwarded = this.forwarded === undefined ? value : `${this.forwarded}, ${value}`;
          break;
      }
    }
  }

  abstract get socket(): net.Socket;

  /** it came over TLS (the HTTPS listener hands the router TLS sockets) */
  get secure(): boolean {
    return (this.socket as { encrypted?: boolean }).encrypted === true;
  }

  get hasBody(): boolean {
    return this.contentLength !== undefined ? this.contentLength !== '0' : this.transferEncoding !== undefined;
  }

  /** the rest of the body is not wanted: read it and throw it away */
  abstract dump(): void;
}

export interface RouterServerOptions {
  onRequest(req: RouterRequest): void;
  /** an Upgrade request; the socket and the bytes after its head are the handler's */
  onUpgrade(req: RouterRequest, socket: net.Socket, head: Buffer): void;
  /** a request the parser refused (400, 431) or a head that took too long (408): answer and close */
  onClientError(err: Error & { code?: string }, socket: net.Socket): void;
  maxHeaderSize: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** how often the timeouts are checked */
  checkEveryMs: number;
}

/** the router's listener, whichever server reads HTTP on it */
export interface RouterServer extends net.Server {
  /** which HTTP/1 implementation reads the requests */
  readonly engine: 'llhttp' | 'node:http';
  /** serve HTTP/1.1 on a connection accepted elsewhere (a TLS one from the HTTPS listener), with this server's limits */
  adopt(socket: net.Socket): void;
  /** connections with no request in progress */
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

/** the router's refusals of a request it cannot route, as the parser's errors are shaped */
export function hostError(req: RouterRequest): (Error & { code: string }) | null {
  if (req.versionMinor >= 1 && req.host === undefined) return Object.assign(new Error('an HTTP/1.1 request needs a Host header'), { code: 'HPE_NO_HOST' });
  if (req.duplicateHost) return Object.assign(new Error('the request has more than one Host header'), { code: 'HPE_DUPLICATE_HOST' });
  return null;
}

/**
 * A request whose body arrives on a Node stream (node:http's IncomingMessage, an HTTP/2 stream)
 * rather than from the router's own parser: the chunks go into the request's body stream,
 * counted against its limit, and the app's reading paces the client (the source pauses while the
 * body's buffer is full).
 */
export function streamBody(req: RouterRequest, source: Readable): void {
  const body = new Readable({ read: () => void (req.dumping || source.resume()) });
  // a body nobody reads to the end must not leave an error nobody listens to
  body.on('error', () => {});
  req.body = body;
  source.on('data', (chunk: Buffer) => {
    req.received += chunk.length;
    if (req.dumping) return;
    if (req.received > req.bodyLimit) {
      req.listener?.bodyTooLarge();
      req.dump();
      return;
    }
    if (!body.push(chunk)) source.pause();
  });
  source.once('end', () => {
    req.complete = true;
    if (!req.dumping) body.push(null);
  });
  source.on('error', (err) => {
    if (!req.complete && !body.destroyed) body.destroy(err);
  });
}

/** the rest of a streamed body is not wanted: read it from `source` and throw it away */
export function dumpStreamBody(req: RouterRequest, source: Readable): void {
  if (req.dumping) return;
  req.dumping = true;
  const body = req.body;
  req.body = null;
  if (body && !body.destroyed) body.destroy();
  source.resume();
}
