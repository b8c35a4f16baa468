// The router's HTTP/1.1 layer on its own: framing, order, flow control and timeouts, with raw
// sockets on loopback so each byte on the wire is what is asserted. Every case runs against both
// servers the router can use: its own on Node's parser binding (the parser reading the socket's
// handle itself, and fed from 'data' events where it cannot), and node:http's (the fallback when
// that binding is missing or changed).
import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Http1Server } from '../../../runtime/router/http1.ts';
import { loadLlhttpBinding } from '../../../runtime/core/llhttp-binding.ts';
import { createNodeHttpServer } from '../../../runtime/router/node-http-server.ts';
import { waitFor } from '../../helpers/server.ts';
import type { RouterRequest as InboundRequest, RouterServer, RouterServerOptions } from '../../../runtime/router/request.ts';

const servers: RouterServer[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

interface Handlers {
  onRequest(req: InboundRequest): void;
  onUpgrade?(req: InboundRequest, socket: net.Socket, head: Buffer): void;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

const binding = loadLlhttpBinding();
const ENGINES = ['llhttp', 'llhttp (fed)', 'node:http'] as const;
let engine: (typeof ENGINES)[number] = 'llhttp';

async function start(h: Handlers): Promise<number> {
  const opts: RouterServerOptions = {
    onRequest: h.onRequest,
    onUpgrade: h.onUpgrade ?? ((_req, socket) => socket.destroy()),
    onClientError: (err, socket) => socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\nx-code: ${err.code}\r\ncontent-length: 0\r\n\r\n`),
    maxHeaderSize: 64 * 1024,
    headersTimeoutMs: h.headersTimeoutMs ?? 20_000,
    keepAliveTimeoutMs: h.keepAliveTimeoutMs ?? 65_000,
    checkEveryMs: 50,
  };
  if (engine !== 'node:http' && !binding.ok) throw new Error(`the parser binding is unusable on this Node: ${binding.reason}`);
  const server =
    engine === 'node:http' || !binding.ok ? createNodeHttpServer(opts) : new Http1Server(opts, engine === 'llhttp' ? binding.binding : { ...binding.binding, kOnExecute: null });
  expect(server.engine).toBe(engine === 'node:http' ? 'node:http' : 'llhttp');
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** answers with the path, a content-length and the given status */
function echoPath(req: InboundRequest): void {
  const body = `path=${req.url}`;
  req.res.writeHead(200, 'OK', ['content-length', String(body.length)], { contentLength: true });
  req.res.end(body);
}

/** a raw connection: `send` writes, `until` waits for the bytes received so far to match */
function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let got = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on('data', (b) => {
    got += b.toString('latin1');
    wake();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    wake();
  });
  return {
    socket,
    send: (data: string | Buffer) => socket.write(data),
    get text() {
      return got;
    },
    get closed() {
      return closed;
    },
    async until(test: (text: string, closed: boolean) => boolean, ms = 3000): Promise<string> {
      const deadline = Date.now() + ms;
      while (!test(got, closed)) {
        if (Date.now() > deadline) throw new Error(`timed out; got so far (${got.length} bytes, the last 300): ${JSON.stringify(got.slice(-300))}${closed ? ' (closed)' : ''}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 20);
        });
      }
      return got;
    },
  };
}

describe.each(ENGINES)('%s: framing', (name) => {
  beforeEach(() => void (engine = name));

  it('keeps a 1.1 connection open and answers its requests in order', async () => {
    const port = await start({ onRequest: echoPath });
    const c = connect(port);
    c.send('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((t) => t.includes('path=/a'));
    c.send('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    const text = await c.until((t) => t.includes('path=/b'));
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(text.toLowerCase()).toContain('connection: keep-alive');
    expect(c.closed).toBe(false);
  });

  it.runIf(name !== 'node:http')('reads the socket in the parser when it can (no data events), else from data events', async () => {
    const seen: { consumed: unknown; dataListeners: number }[] = [];
    const port = await start({
      onRequest(req) {
        const socket = (req as unknown as { socket: net.Socket & { _handle: { _consumed?: boolean } } }).socket;
        seen.push({ consumed: socket._handle._consumed, dataListeners: socket.listenerCount('data') });
        echoPath(req);
      },
    });
    const c = connect(port);
    c.send('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((t) => t.includes('path=/a'));
    expect(seen).toEqual([name === 'llhttp' ? { consumed: true, dataListeners: 0 } : { consumed: undefined, dataListeners: 1 }]);
  });

  it('answers pipelined requests one after the other, the first first even when it is slower', async () => {
    const port = await start({
      onRequest: (req) => (req.url === '/slow' ? setTimeout(() => echoPath(req), 100) : echoPath(req)),
    });
    const c = connect(port);
    c.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = await c.until((_t, closed) => closed);
    expect(text.indexOf('path=/slow')).toBeGreaterThan(0);
    expect(text.indexOf('path=/fast')).toBeGreaterThan(text.indexOf('path=/slow'));
    expect(text).toMatch(/connection: close\r\n\r\npath=\/fast$/i);
  });

  it('answers thousands of pipelined requests queued behind a slow one without recursing', async () => {
    let answered = 0;
    const port = await start({
      onRequest: (req) => {
        answered++;
        if (req.url === '/slow') setTimeout(() => echoPath(req), 50);
        else echoPath(req);
      },
    });
    const c = connect(port);
    const n = 3000;
    c.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n - 1) + 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = await c.until((_t, closed) => closed, 10_000);
    expect((text.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(n + 1);
    expect(text.endsWith('path=/last')).toBe(true);
    expect(answered).toBe(n + 1);
  });

  it('chunks a body of unknown length for a 1.1 client, and ends the connection for a 1.0 one', async () => {
    const port = await start({
      onRequest: (req) => {
        req.res.writeHead(200, 'OK', ['content-type', 'text/plain']);
        req.res.write(Buffer.from('first,'));
        setTimeout(() => {
          req.res.write(Buffer.from('second'));
          req.res.end();
        }, 20);
      },
    });
    const body = await new Promise<string>((resolve, reject) =>
      http.get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
        expect(res.headers['transfer-encoding']).toBe('chunked');
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      }).on('error', reject),
    );
    expect(body).toBe('first,second');
    const c = connect(port);
    c.send('GET / HTTP/1.0\r\n\r\n');
    const text = await c.until((_t, closed) => closed);
    expect(text.toLowerCase()).not.toContain('transfer-encoding');
    expect(text.toLowerCase()).toContain('connection: close');
    expect(text.endsWith('\r\n\r\nfirst,second')).toBe(true);
  });

  it('sends no body for HEAD, 204 and 304, and the connection goes on', async () => {
    const port = await start({
      onRequest: (req) => {
        const status = req.url === '/204' ? 204 : req.url === '/304' ? 304 : 200;
        req.res.writeHead(status, 'X', []);
        req.res.write(Buffer.from('never'));
        req.res.end();
      },
    });
    const c = connect(port);
    c.send('HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n');
    const text = await c.until((t) => (t.match(/HTTP\/1\.1/g) ?? []).length === 3);
    expect(text).not.toContain('never');
    expect(text.toLowerCase()).not.toContain('transfer-encoding');
    expect(c.closed).toBe(false);
  });

  it('reads a head in many pieces and with many fields whole, and keeps trailers out of the next request', async () => {
    const seen: { url: string; names: string[] }[] = [];
    const port = await start({
      onRequest: (req) => {
        seen.push({ url: req.url, names: req.rawHeaders.filter((_, i) => i % 2 === 0) });
        if (req.body) {
          req.body.on('end', () => echoPath(req));
          req.body.resume();
        } else echoPath(req);
      },
    });
    const c = connect(port);
    const fields = Array.from({ length: 40 }, (_, i) => `X-Field-${i}: ${i}\r\n`).join('');
    const first = `POST /first/${'p'.repeat(3000)} HTTP/1.1\r\nHost: x\r\n${fields}Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n`;
    // a byte at a time for the start, so the parser hands the head over in parts
    for (const ch of first.slice(0, 200)) c.send(ch);
    c.send(first.slice(200));
    await c.until((t) => t.includes('path=/first'));
    c.send('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((t) => t.includes('path=/second'));
    expect(seen[0]!.url).toBe(`/first/${'p'.repeat(3000)}`);
    expect(seen[0]!.names.filter((n) => n.startsWith('X-Field-'))).toHaveLength(40);
    expect(seen[1]!.names).toEqual(['Host']);
  });

  it('refuses a 1.1 request without Host or with two, and malformed requests, and closes', async () => {
    let reached = 0;
    const port = await start({ onRequest: (req) => (reached++, echoPath(req)) });
    const noHost = connect(port);
    noHost.send('GET / HTTP/1.1\r\n\r\n');
    expect(await noHost.until((_t, closed) => closed)).toMatch(/^HTTP\/1\.1 400[^]*x-code: HPE_NO_HOST/);
    const twoHosts = connect(port);
    twoHosts.send('GET / HTTP/1.1\r\nHost: a.localhost\r\nhost: b.localhost\r\n\r\n');
    expect(await twoHosts.until((_t, closed) => closed)).toMatch(/^HTTP\/1\.1 400[^]*x-code: HPE_DUPLICATE_HOST/);
    const bad = connect(port);
    bad.send('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(await bad.until((_t, closed) => closed)).toMatch(/^HTTP\/1\.1 400/);
    expect(reached).toBe(0);
  });
});

describe.each(ENGINES)('%s: bodies and flow', (name) => {
  beforeEach(() => void (engine = name));

  it('answers Expect: 100-continue at once, and refuses any other expectation', async () => {
    const port = await start({
      onRequest: (req) => {
        let n = 0;
        req.body!.on('data', (d: Buffer) => (n += d.length));
        req.body!.on('end', () => {
          req.res.writeHead(200, 'OK', ['content-length', String(String(n).length)], { contentLength: true });
          req.res.end(String(n));
        });
      },
    });
    const c = connect(port);
    c.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await c.until((t) => t.startsWith('HTTP/1.1 100 Continue\r\n\r\n'));
    c.send('hello');
    await c.until((t) => t.endsWith('\r\n\r\n5'));
    const other = connect(port);
    other.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: something\r\n\r\nhello');
    expect(await other.until((_t, closed) => closed)).toMatch(/^HTTP\/1\.1 417/);
  });

  it('stops reading a body its reader is not taking, and goes on when it does', async () => {
    let req0: InboundRequest | null = null;
    const port = await start({ onRequest: (req) => (req0 = req) });
    const c = connect(port);
    const size = 8 * 1024 * 1024;
    c.send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    c.socket.write(Buffer.alloc(size, 1));
    await new Promise((r) => setTimeout(r, 300));
    // the router holds the body stream's buffer and the socket's, not the 8 MB
    expect(req0).not.toBeNull();
    const held = req0!.received;
    expect(held).toBeLessThan(size / 2);
    let n = 0;
    await new Promise<void>((resolve) => {
      req0!.body!.on('data', (d: Buffer) => (n += d.length));
      req0!.body!.on('end', resolve);
    });
    expect(n).toBe(size);
  });

  it('throws away the rest of a body once answered, and serves the next request', async () => {
    const port = await start({ onRequest: echoPath });
    const c = connect(port);
    c.send('POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    await c.until((t) => t.includes('path=/first'));
    c.send(Buffer.alloc(100000, 2));
    c.send('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((t) => t.includes('path=/second'));
  });

  it('ends a connection answered before its body arrived without a reset: the rest is read and dropped', async () => {
    // closing with unread bytes makes the kernel answer the client's next segment with a reset,
    // and a client still writing its upload gets EPIPE instead of the answer it was sent
    const port = await start({ onRequest: echoPath });
    const c = connect(port);
    const size = 8 * 1024 * 1024;
    c.send(`POST /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${size}\r\n\r\n`);
    await c.until((t) => t.includes('path=/early'));
    let writeError: Error | null = null;
    const written = new Promise<void>((resolve) => c.socket.write(Buffer.alloc(size, 3), (err) => ((writeError = err ?? null), resolve())));
    const errors: Error[] = [];
    c.socket.on('error', (err) => errors.push(err));
    await written;
    c.socket.end();
    await c.until((_t, closed) => closed, 5000);
    expect(writeError).toBe(null);
    expect(errors).toEqual([]);
  });

  it('tells the listener when the client goes away mid-response', async () => {
    let aborted = false;
    const port = await start({
      onRequest: (req) => {
        req.listener = { aborted: () => (aborted = true), drained: () => {}, bodyTooLarge: () => {} };
        req.res.writeHead(200, 'OK', []);
        req.res.write(Buffer.from('partial'));
      },
    });
    const c = connect(port);
    c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((t) => t.includes('partial'));
    c.socket.destroy();
    const deadline = Date.now() + 2000;
    while (!aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(aborted).toBe(true);
  });

  it('counts a chunked body against its limit', async () => {
    let tooLarge = false;
    const port = await start({
      onRequest: (req) => {
        req.bodyLimit = 1000;
        req.listener = {
          aborted: () => {},
          drained: () => {},
          bodyTooLarge: () => {
            tooLarge = true;
            echoPath(req);
          },
        };
        req.body!.on('error', () => {});
        req.body!.resume();
      },
    });
    const c = connect(port);
    const chunk = 'x'.repeat(600);
    c.send(`POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
    await c.until((t) => t.includes('path=/big'));
    expect(tooLarge).toBe(true);
  });

  it('hands an Upgrade over with the bytes that came after its head', async () => {
    const port = await start({
      onRequest: echoPath,
      onUpgrade: (req, socket, head) => {
        socket.write(`upgraded to ${req.upgradeTo}, head=${head.toString()}`);
        socket.on('data', (d) => socket.write(`|echo:${d}`));
      },
    });
    const c = connect(port);
    c.send('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly');
    await c.until((t) => t === 'upgraded to websocket, head=early');
    c.send('later');
    await c.until((t) => t.endsWith('|echo:later'));
  });
});

describe.each(ENGINES)('%s: timeouts and closing', (name) => {
  beforeEach(() => void (engine = name));

  it('cuts a slow head off with the header timeout, and an idle connection with the keep-alive one', async () => {
    const port = await start({ onRequest: echoPath, headersTimeoutMs: 300, keepAliveTimeoutMs: 400 });
    const slow = connect(port);
    slow.send('GET / HTTP/1.1\r\nHost: x\r\n');
    const t0 = Date.now();
    // node:http names it its own way
    expect(await slow.until((_t, closed) => closed)).toMatch(/x-code: (HPE_HEADERS_TIMEOUT|ERR_HTTP_REQUEST_TIMEOUT)/);
    expect(Date.now() - t0).toBeLessThan(1500);
    const idle = connect(port);
    idle.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.until((t) => t.includes('path=/'));
    const t1 = Date.now();
    await idle.until((_t, closed) => closed);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(300);
  });

  it('a refused connection whose client goes on sending and then closes is closed: none is left behind', async () => {
    const port = await start({ onRequest: echoPath, headersTimeoutMs: 300 });
    const server = servers[0]!;
    for (const first of ['NOT HTTP AT ALL\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n']) {
      // half-open: the client may still write after the answer's FIN, as a slow client's next field
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      sockets.push(socket);
      socket.on('error', () => {});
      let got = '';
      socket.on('data', (b) => (got += b.toString('latin1')));
      socket.write(first);
      await new Promise<void>((r) => socket.once('end', r));
      expect(got).toMatch(/^HTTP\/1\.1 (400|408)/);
      socket.write('X-Late: 1\r\n');
      await new Promise((r) => setTimeout(r, 50));
      socket.end();
      const open = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
      await waitFor(async () => (await open()) === 0, { timeoutMs: 2000, intervalMs: 20, what: 'the refused connection to close' });
      expect(await open()).toBe(0);
    }
  });

  it('closeIdleConnections leaves a connection with a request in progress', async () => {
    let pending: InboundRequest | null = null;
    const server = { port: await start({ onRequest: (req) => (req.url === '/hold' ? (pending = req) : echoPath(req)) }) };
    const idle = connect(server.port);
    idle.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.until((t) => t.includes('path=/'));
    const busy = connect(server.port);
    busy.send('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!pending) await new Promise((r) => setTimeout(r, 10));
    servers[0]!.closeIdleConnections();
    await idle.until((_t, closed) => closed);
    expect(busy.closed).toBe(false);
    echoPath(pending);
    await busy.until((t) => t.includes('path=/hold'));
  });
});
