// The HTTPS listener: TLS with the certificate chosen per connection by SNI, then HTTP/2 or
// HTTP/1.1 as ALPN settled, each served by the router's own request handling. A TLS-ALPN-01
// validation (ALPN acme-tls/1) gets the challenge certificate instead and nothing else.
import type net from 'node:net';
import tls from 'node:tls';
import type { H2Handler } from './h2.ts';
import type { RouterServer } from './request.ts';

export interface TlsListenerOptions {
  /** the certificate for a server name, or null: the handshake fails */
  contextFor(servername: string): tls.SecureContext | null;
  /** the acme-tls/1 certificate of a TLS-ALPN-01 challenge under way for this name, or null */
  challengeContextFor(servername: string): tls.SecureContext | null;
  /** serves HTTP/1.1 connections (the router, whichever HTTP/1 server it runs on) */
  http1: Pick<RouterServer, 'adopt'>;
  /** serves HTTP/2 ones */
  h2: H2Handler;
  /** a client must finish its handshake within this (as its headers on the plain listener) */
  handshakeTimeoutMs: number;
  maxConnections?: number;
  /** a handshake failed (bad SNI, no certificate, timeout, garbage) */
  onClientError?(err: Error): void;
}

const kChallenge = Symbol('acme-tls/1');
// a host name as DNS spells it: anything else (empty, over-long, bytes outside ASCII) gets no certificate
const HOST_NAME = /^[a-z0-9_.-]{1,253}$/i;
type ListenerSocket = tls.TLSSocket & { [kChallenge]?: boolean };

export type TlsListener = tls.Server & {
  /** HTTP/2 sessions with no stream open (HTTP/1.1 connections are the HTTP/1 server's) */
  closeIdleConnections(): void;
  /** every connection, handshaken or not, and every HTTP/2 session */
  closeAllConnections(): void;
};

export function createTlsListener(opts: TlsListenerOptions): TlsListener {
  const server = tls.createServer({
    // ALPN is settled before the certificate is picked: a validation asks for acme-tls/1
    ALPNCallback(this: ListenerSocket, { servername, protocols }: { servername: string; protocols: string[] }) {
      if (protocols.includes('acme-tls/1') && servername && opts.challengeContextFor(servername)) {
        this[kChallenge] = true;
        return 'acme-tls/1';
      }
      if (protocols.includes('h2')) return 'h2';
      if (protocols.includes('http/1.1')) return 'http/1.1';
      // no protocol in common: RFC 7301 says refuse
      return undefined;
    },
    SNICallback(this: ListenerSocket, servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) {
      const ctx = !HOST_NAME.test(servername) ? null : this[kChallenge] ? opts.challengeContextFor(servername) : opts.contextFor(servername);
      if (ctx) cb(null, ctx);
      else cb(new Error(`no certificate for "${servername.slice(0, 253)}"`));
    },
    handshakeTimeout: opts.handshakeTimeoutMs,
    noDelay: true,
  } as tls.TlsOptions);
  server.maxConnections = opts.maxConnections ?? 10_000;
  // every TCP connection, handshaken or not, so a stop does not wait for handshakes to time out
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  server.on('secureConnection', (socket: ListenerSocket) => {
    if (socket[kChallenge]) {
      // the validation only needed the handshake
      socket.on('error', () => {});
      socket.end();
      return;
    }
    if (socket.alpnProtocol === 'h2') opts.h2.accept(socket);
    else opts.http1.adopt(socket);
  });
  server.on('tlsClientError', (err: Error, socket: net.Socket) => {
    opts.onClientError?.(err);
    socket.destroy();
  });
  return Object.assign(server, {
    closeIdleConnections() {
      opts.h2.closeIdleSessions();
    },
    closeAllConnections() {
      opts.h2.closeAllSessions();
      for (const s of sockets) s.destroy();
    },
  });
}
