// What a visitor can make the router tell an app: two Host headers, a request line naming another
// host than its Host header, and forwarding headers (X-Forwarded-*, X-Real-IP, Forwarded) of its
// own. The router must refuse the ambiguous request, route by the request line's authority, and
// give the app what it saw itself, trusting a client's forwarding headers only from a proxy the
// operator names. Raw sockets to the real platform's router, two deployed apps that echo what
// reached them.
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';

const APP = path.join(FIXTURES, 'node-stream');
const SETTINGS = { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 60 };

interface Raw {
  status: number;
  head: string;
  body: string;
}

/** one request written as is; the router closes after it (Connection: close is sent) */
function rawRequest(server: TestServer, text: string): Promise<Raw> {
  const url = new URL(server.routerUrl);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let got = '';
    sock.on('data', (b) => (got += b.toString('latin1')));
    sock.on('error', reject);
    sock.on('end', () => {
      const at = got.indexOf('\r\n\r\n');
      const head = got.slice(0, at);
      let body = got.slice(at + 4);
      // a chunked answer: good enough for the small JSON bodies here
      if (/transfer-encoding: chunked/i.test(head)) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      resolve({ status: Number(head.split(' ')[1]), head, body });
    });
    sock.write(text);
  });
}

/** the fields the app received, lowercased name → values in order */
function fieldsSeen(raw: Raw): { url: string; get(name: string): string[] } {
  const seen = JSON.parse(raw.body) as { url: string; rawHeaders: string[] };
  return {
    url: seen.url,
    get: (name) => pick(seen.rawHeaders, name),
  };
}

function pick(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}

const SPOOFED =
  'X-Forwarded-For: 203.0.113.66\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: bank.example\r\n' +
  'X-Real-IP: 203.0.113.66\r\nForwarded: for=203.0.113.66;proto=https;host=bank.example\r\n';

describe('router headers from an untrusted client', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    const [a, b] = await Promise.all([server.deploy('spoof-a', APP, SETTINGS), server.deploy('spoof-b', APP, SETTINGS)]);
    expect([a.status, b.status]).toEqual(['live', 'live']);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('two Host headers are refused with 400, not routed', async () => {
    const res = await rawRequest(server, 'GET / HTTP/1.1\r\nHost: spoof-a.localhost\r\nHost: spoof-b.localhost\r\nConnection: close\r\n\r\n');
    expect(res.status, res.head + res.body).toBe(400);
    expect(res.body).toContain('ERR_BAD_REQUEST');
    expect(res.body).toMatch(/Host/);
  });

  it('an absolute-form request line routes by its authority, not by the Host header', async () => {
    // the app records the arrival in the instance that served it
    const res = await rawRequest(server, 'GET http://spoof-b.localhost/order?key=absolute&seq=7&ms=0 HTTP/1.1\r\nHost: spoof-a.localhost\r\nConnection: close\r\n\r\n');
    expect(res.status, res.head + res.body).toBe(200);
    expect((await server.app('spoof-b', '/order-log?key=absolute')).json.order).toEqual([7]);
    expect((await server.app('spoof-a', '/order-log?key=absolute')).json.order).toEqual([]);
    // the app gets the path, and the authority as its Host
    const seen = fieldsSeen(await rawRequest(server, 'GET http://spoof-b.localhost/headers?x=1 HTTP/1.1\r\nHost: spoof-a.localhost\r\nConnection: close\r\n\r\n'));
    expect(seen.url).toBe('/headers?x=1');
    expect(seen.get('host')).toEqual(['spoof-b.localhost']);
    expect(seen.get('x-forwarded-host')).toEqual(['spoof-b.localhost']);
  });

  it("a client's X-Forwarded-*, X-Real-IP and Forwarded are replaced by what the router saw", async () => {
    const res = await rawRequest(server, `GET /headers HTTP/1.1\r\nHost: spoof-a.localhost\r\n${SPOOFED}Connection: close\r\n\r\n`);
    expect(res.status, res.head + res.body).toBe(200);
    const seen = fieldsSeen(res);
    expect(seen.get('x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(seen.get('x-forwarded-proto')).toEqual(['http']);
    expect(seen.get('x-forwarded-host')).toEqual(['spoof-a.localhost']);
    expect(seen.get('x-real-ip')).toEqual(['127.0.0.1']);
    expect(seen.get('forwarded')).toEqual(['for=127.0.0.1;proto=http;host="spoof-a.localhost"']);
  });
});

describe('router headers behind a trusted proxy (CELLHOST_TRUST_PROXY)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_TRUST_PROXY: '10.9.9.9, 127.0.0.0/8' } });
    expect((await server.deploy('spoof-t', APP, SETTINGS)).status).toBe('live');
  });

  afterAll(async () => {
    await server?.close();
  });

  it('the client is appended to X-Forwarded-For, and the proxy’s proto, host and client address are kept', async () => {
    const res = await rawRequest(server, `GET /headers HTTP/1.1\r\nHost: spoof-t.localhost\r\n${SPOOFED}Connection: close\r\n\r\n`);
    expect(res.status, res.head + res.body).toBe(200);
    const seen = fieldsSeen(res);
    expect(seen.get('x-forwarded-for')).toEqual(['203.0.113.66, 127.0.0.1']);
    expect(seen.get('x-forwarded-proto')).toEqual(['https']);
    expect(seen.get('x-forwarded-host')).toEqual(['bank.example']);
    expect(seen.get('x-real-ip')).toEqual(['203.0.113.66']);
    expect(seen.get('forwarded')).toEqual(['for=203.0.113.66;proto=https;host=bank.example, for=127.0.0.1;proto=http;host="spoof-t.localhost"']);
  });
});
