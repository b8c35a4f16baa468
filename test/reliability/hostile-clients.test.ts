// Hostile clients on the router: raw sockets, bounded in count and time.
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';
import { sendRaw } from '../helpers/raw-socket.ts';

let server: TestServer;
let port: number;
beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_HEADERS_TIMEOUT_MS: '1000', CELLHOST_MAX_BODY_BYTES: String(1024 * 1024) } });
  port = Number(new URL(server.routerUrl).port);
  await server.deploy('echo', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
  await server.deploy('sink', path.join(FIXTURES, 'node-stream'), { startCommand: 'node app.js', buildCommand: 'true' });
});
afterAll(async () => {
  await server?.close();
});

function raw(data: string | Buffer, waitMs = 3000): Promise<string> {
  return sendRaw(port, data, waitMs);
}

describe('hostile clients', () => {
  it('slow headers (slowloris) are cut off at the header timeout', async () => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    sock.write('GET / HTTP/1.1\r\nHost: echo.localhost\r\n');
    const dripper = setInterval(() => sock.writable && sock.write('X-Slow: 1\r\n'), 200);
    const got = await new Promise<string>((resolve) => {
      let buf = '';
      sock.on('data', (b) => (buf += b));
      sock.on('close', () => resolve(buf));
      sock.on('error', () => resolve(buf));
      setTimeout(() => resolve(buf + '[timeout]'), 5000);
    });
    clearInterval(dripper);
    sock.destroy();
    expect(got).not.toContain('[timeout]');
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('a request line over 16 KB and headers over 64 KB get 431', async () => {
    const longLine = await raw(`GET /${'a'.repeat(17 * 1024)} HTTP/1.1\r\nHost: echo.localhost\r\n\r\n`);
    expect(longLine).toMatch(/^HTTP\/1\.1 431/);
    const bigHeaders = await raw(`GET / HTTP/1.1\r\nHost: echo.localhost\r\nX-Big: ${'b'.repeat(70 * 1024)}\r\n\r\n`);
    expect(bigHeaders).toMatch(/^HTTP\/1\.1 431/);
  });

  it('bodies over the limit get 413, declared or chunked', async () => {
    const declared = await raw(`POST / HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
    expect(declared).toMatch(/^HTTP\/1\.1 413/);
    const chunk = 'x'.repeat(64 * 1024);
    let body = '';
    for (let i = 0; i < 20; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    // an app that reads the whole body before it answers, so the body crosses the limit first
    const chunked = await raw(`POST /upload HTTP/1.1\r\nHost: sink.localhost\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`);
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
  });

  it('conflicting Content-Length and Transfer-Encoding is refused, nothing reaches the app', async () => {
    const smuggle = await raw(
      'POST / HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.localhost\r\n\r\n',
    );
    expect(smuggle).toMatch(/^HTTP\/1\.1 400/);
    expect(smuggle).not.toContain('/smuggled');
    const dup = await raw('POST / HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde');
    expect(dup).toMatch(/^HTTP\/1\.1 400/);
  });

  it('malformed HTTP gets 400 and the connection is closed', async () => {
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET / HTTP/1.1\r\nHost echo.localhost\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
  });

  it('a thousand idle connections do not stop other clients', async () => {
    const idle: net.Socket[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      idle.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const r = await server.app('echo');
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
    for (const s of idle) s.destroy();
  });

  it('the admin API is never reachable through the router, whatever Host says', async () => {
    const admin = new URL(server.adminUrl);
    for (const host of [admin.host, 'localhost', '127.0.0.1', `localhost:${admin.port}`]) {
      const r = await raw(`GET /api/v1/services HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(r).toMatch(/^HTTP\/1\.1 404/);
      expect(r).toContain('ERR_HOST_UNKNOWN');
    }
  });
});
