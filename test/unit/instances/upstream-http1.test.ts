// The router's own client to instances, on Node's parser, against apps that answer in each way
// HTTP/1.1 allows: a body that runs to the close, informational answers before the real one, a
// HEAD answer's length with no body, an answer cut short, one that closes the connection, a
// keep-alive timeout too short to reuse, bodies sent chunked and with a length, and a request
// cancelled before it went out. Raw sockets on loopback, so each answer is exactly as written.
import net from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLlhttpBinding } from '../../../runtime/core/llhttp-binding.ts';
import { Http1Upstream } from '../../../runtime/instances/upstream-http1.ts';
import type { UpstreamRequest } from '../../../runtime/instances/upstream-types.ts';

const loaded = loadLlhttpBinding();
if (!loaded.ok) throw new Error(loaded.reason);
const binding = loaded.binding;

const servers: net.Server[] = [];
const upstreams: Http1Upstream[] = [];
afterEach(async () => {
  for (const u of upstreams.splice(0)) await u.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

interface RawApp {
  port: number;
  /** every request's bytes as received, per connection */
  received: string[];
  connections: () => number;
}

/** an app that answers each request (its head and body complete) with `answer(request, n)` */
async function rawApp(answer: (request: string, n: number, socket: net.Socket) => void): Promise<RawApp> {
  const received: string[] = [];
  let connections = 0;
  let n = 0;
  const server = net.createServer((socket) => {
    connections++;
    const index = received.push('') - 1;
    let buffered = '';
    socket.on('data', (d) => {
      received[index] += d.toString('latin1');
      buffered += d.toString('latin1');
      for (;;) {
        const end = requestEnd(buffered);
        if (end < 0) return;
        const request = buffered.slice(0, end);
        buffered = buffered.slice(end);
        answer(request, n++, socket);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, received, connections: () => connections };
}

/** where the first complete request in `s` ends (a length or a chunked body), or -1 */
function requestEnd(s: string): number {
  const head = s.indexOf('\r\n\r\n');
  if (head < 0) return -1;
  const h = s.slice(0, head).toLowerCase();
  const len = /content-length: (\d+)/.exec(h);
  if (len) return s.length >= head + 4 + Number(len[1]) ? head + 4 + Number(len[1]) : -1;
  if (h.includes('transfer-encoding: chunked')) {
    const last = s.indexOf('\r\n0\r\n\r\n', head);
    return last < 0 ? -1 : last + 7;
  }
  return head + 4;
}

interface Answer {
  status: number;
  headers: string[];
  body: string;
}

function send(u: Http1Upstream, req: Partial<UpstreamRequest> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: string[] = [];
    const chunks: Buffer[] = [];
    u.dispatch({ path: '/', method: 'GET', headers: ['host', 'app.test'], body: null, ...req }, {
      onConnect() {},
      onHeaders: (s, h) => ((status = s), (headers = h), true),
      onData: (chunk) => (chunks.push(Buffer.from(chunk)), true),
      onComplete: () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }),
      onError: reject,
    });
  });
}

function open(app: Pick<RawApp, 'port'>, limit = 1): Http1Upstream {
  const u = new Http1Upstream(binding, { host: '127.0.0.1', port: app.port }, limit);
  upstreams.push(u);
  return u;
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('the upstream client on Node\'s parser', () => {
  it('reuses one connection for requests one after another, and sends each as one head', async () => {
    const app = await rawApp((_r, n, s) => s.write(ok(`answer ${n}`)));
    const u = open(app);
    expect((await send(u, { path: '/a' })).body).toBe('answer 0');
    const second = await send(u, { path: '/b?x=1', headers: ['host', 'app.test', 'x-custom', 'v'] });
    expect(second).toEqual({ status: 200, headers: ['content-length', '8'], body: 'answer 1' });
    expect(app.connections()).toBe(1);
    expect(app.received[0]).toBe('GET /a HTTP/1.1\r\nhost: app.test\r\nconnection: keep-alive\r\n\r\nGET /b?x=1 HTTP/1.1\r\nhost: app.test\r\nx-custom: v\r\nconnection: keep-alive\r\n\r\n');
  });

  it('reads a body that runs to the close, and does not reuse that connection', async () => {
    const app = await rawApp((_r, n, s) => s.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close ${n}`));
    const u = open(app);
    expect((await send(u)).body).toBe('until the close 0');
    expect((await send(u)).body).toBe('until the close 1');
    expect(app.connections()).toBe(2);
  });

  it('skips 100 Continue and 103 Early Hints, and answers with the response after them', async () => {
    const app = await rawApp((_r, _n, s) => s.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n${ok('final')}`));
    const u = open(app);
    expect(await send(u)).toEqual({ status: 200, headers: ['content-length', '5'], body: 'final' });
    expect((await send(u)).body).toBe('final');
    expect(app.connections()).toBe(1);
  });

  it('expects no body after a HEAD answer\'s length, and keeps the connection', async () => {
    const app = await rawApp((r, _n, s) => s.write(r.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n' : ok('got')));
    const u = open(app);
    expect(await send(u, { method: 'HEAD' })).toEqual({ status: 200, headers: ['content-length', '1234'], body: '' });
    expect((await send(u)).body).toBe('got');
    expect(app.connections()).toBe(1);
  });

  it('reads a head of many fields, and does not take a chunked body\'s trailer fields for the next head', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `x-field-${i}: ${i}\r\n`).join('');
    const app = await rawApp((_r, n, s) =>
      s.write(n === 0 ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n2\r\nok\r\n0\r\nx-sum: 42\r\n\r\n' : ok('many', many)),
    );
    const u = open(app);
    expect((await send(u)).body).toBe('ok');
    const second = await send(u);
    expect(second.headers.length).toBe(82);
    expect(second.headers).not.toContain('x-sum');
    expect(second.headers.slice(-2)).toEqual(['x-field-39', '39']);
  });

  it('fails a response cut short of its length, and one the app drops before answering', async () => {
    const short = await rawApp((_r, _n, s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    await expect(send(open(short))).rejects.toMatchObject({ code: expect.stringMatching(/^(HPE_|UND_ERR_SOCKET)/) });
    const dropped = await rawApp((_r, _n, s) => s.destroy());
    await expect(send(open(dropped))).rejects.toMatchObject({ code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) });
  });

  it('fails with the connect error when nothing listens', async () => {
    const app = await rawApp(() => {});
    await new Promise((r) => servers.pop()!.close(r));
    await expect(send(open(app))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('does not reuse a connection the app answered with connection: close, or whose keep-alive timeout is too short', async () => {
    const closing = await rawApp((_r, _n, s) => s.write(ok('bye', 'connection: close\r\n')));
    const u = open(closing);
    await send(u);
    await send(u);
    expect(closing.connections()).toBe(2);
    // timeout=2: idle connections are not reused within 2 s of the app's timeout
    const brief = await rawApp((_r, _n, s) => s.write(ok('brief', 'keep-alive: timeout=2\r\n')));
    const v = open(brief);
    await send(v);
    await send(v);
    expect(brief.connections()).toBe(2);
    const longer = await rawApp((_r, _n, s) => s.write(ok('long', 'keep-alive: timeout=30\r\n')));
    const w = open(longer);
    await send(w);
    await send(w);
    expect(longer.connections()).toBe(1);
  });

  it('sends a body of unknown length chunked, and one with a length as it is', async () => {
    const app = await rawApp((_r, n, s) => s.write(ok(`got ${n}`)));
    const u = open(app);
    await send(u, { method: 'POST', body: Readable.from([Buffer.from('hello '), Buffer.from('world')]) });
    await send(u, { method: 'PUT', headers: ['host', 'app.test', 'content-length', '5'], body: Readable.from([Buffer.from('12345')]) });
    await send(u, { method: 'POST' });
    expect(app.received[0]).toBe(
      'POST / HTTP/1.1\r\nhost: app.test\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n' +
        'PUT / HTTP/1.1\r\nhost: app.test\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n12345' +
        'POST / HTTP/1.1\r\nhost: app.test\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n',
    );
  });

  it('closes the connection of an answer that came before its request\'s body was sent', async () => {
    // answers as soon as the head arrives, without reading the body
    let opened = 0;
    const early = net.createServer((s) => {
      opened++;
      s.once('data', () => s.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n'));
      s.on('error', () => {});
    });
    servers.push(early);
    await new Promise<void>((r) => early.listen(0, '127.0.0.1', () => r()));
    const u = open({ port: (early.address() as net.AddressInfo).port });
    const body = new Readable({ read() {} });
    body.push('part');
    expect((await send(u, { method: 'POST', body })).status).toBe(413);
    body.push(null);
    const again = send(u, { method: 'POST', body: Readable.from([Buffer.from('x')]) });
    expect((await again).status).toBe(413);
    expect(opened).toBe(2);
  });

  it('keeps the connection of a request cancelled before it went out, and queues past its limit in order', async () => {
    const app = await rawApp((r, _n, s) => setTimeout(() => s.write(ok(r.split(' ')[1]!)), 20));
    const u = open(app, 1);
    const order: string[] = [];
    const first = send(u, { path: '/1' }).then((a) => order.push(a.body));
    // waits for the one connection, and is cancelled when given it
    const cancelled = new Promise<Error>((resolve) =>
      u.dispatch({ path: '/cancelled', method: 'GET', headers: ['host', 'app.test'], body: null }, {
        onConnect: (abort) => abort(new Error('the client left')),
        onHeaders: () => true,
        onData: () => true,
        onComplete: () => resolve(new Error('it was sent')),
        onError: resolve,
      }),
    );
    const third = send(u, { path: '/3' }).then((a) => order.push(a.body));
    await Promise.all([first, third]);
    expect((await cancelled).message).toBe('the client left');
    expect(order).toEqual(['/1', '/3']);
    expect(app.connections()).toBe(1);
    expect(app.received[0]).not.toContain('/cancelled');
  });

  it('fails the requests on it and waiting when destroyed', async () => {
    const app = await rawApp(() => {});
    const u = open(app, 1);
    const inFlight = send(u);
    const waiting = send(u);
    await new Promise((r) => setTimeout(r, 50));
    await u.destroy();
    await expect(inFlight).rejects.toMatchObject({ code: 'UND_ERR_DESTROYED' });
    await expect(waiting).rejects.toMatchObject({ code: 'UND_ERR_DESTROYED' });
    await expect(send(u)).rejects.toMatchObject({ code: 'UND_ERR_DESTROYED' });
  });
});
