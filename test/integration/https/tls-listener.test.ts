// The HTTPS listener with a certificate the user provides (CELLHOST_TLS_CERT / CELLHOST_TLS_KEY):
// HTTP/2 and HTTP/1.1 to the app, the admin API never answered whatever SNI and Host, hostile
// client hellos (no SNI, 10 KB, non-ASCII, one that never finishes) refused or timed out
// without harm, 1000 idle TLS connections held and then closed, and the certificate read again
// when its files change or on SIGHUP.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientHello, curlHttps, handshake, httpsGet } from '../../helpers/https.ts';
import { FIXTURES, requestRouter, startTestServer, tempDir, waitFor, type TestServer } from '../../helpers/server.ts';

const HEADERS_TIMEOUT_MS = 4000;
// the 1000 idle connections get a platform of their own, whose timeout outlasts opening them all
const IDLE_HEADERS_TIMEOUT_MS = 25_000;
let server: TestServer;
let dir: string;
let port: number;
let ca: string;

/** a CA, and a leaf for `names` signed by it, as PEM files in `dir` */
function makeCertificate(dir: string, names: string[], leafName = 'leaf'): void {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  if (!fs.existsSync(path.join(dir, 'ca.pem'))) {
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=cellhost test CA']);
  }
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${leafName}.key`, '-out', `${leafName}.csr`, '-subj', `/CN=${names[0]}`]);
  fs.writeFileSync(path.join(dir, 'ext'), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  run(['x509', '-req', '-in', `${leafName}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${leafName}.pem`, '-days', '1', '-extfile', 'ext']);
}

/** a wss:// handshake to `host`, one text frame out, the echo's text back */
function wssEcho(port: number, host: string, text: string): Promise<string> {
  const key = crypto.randomBytes(16).toString('base64');
  return new Promise<string>((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port,
      servername: host,
      ca,
      path: '/',
      agent: false,
      headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
    });
    req.on('response', (res) => reject(new Error(`expected 101, got ${res.statusCode}`)));
    req.on('error', reject);
    req.on('upgrade', (res, socket, head) => {
      expect(res.headers['sec-websocket-accept']).toBe(crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'));
      // one masked text frame out; the server's unmasked frame back (short: 2-byte header)
      const payload = Buffer.from(text);
      const mask = crypto.randomBytes(4);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      let buf = head;
      const onData = (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) {
          socket.destroy();
          resolve(buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString());
        }
      };
      socket.on('data', onData);
      socket.on('error', reject);
      if (head.length) onData(Buffer.alloc(0));
    });
    req.end();
  });
}

beforeAll(async () => {
  dir = tempDir('cellhost-tls-');
  makeCertificate(dir, ['*.apps.test', 'www.custom.test']);
  ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  server = await startTestServer({
    env: {
      CELLHOST_DOMAIN: 'apps.test',
      CELLHOST_HTTPS_ADDR: '127.0.0.1:0',
      CELLHOST_TLS_CERT: path.join(dir, 'leaf.pem'),
      CELLHOST_TLS_KEY: path.join(dir, 'leaf.key'),
      CELLHOST_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    },
  });
  port = Number(new URL(server.httpsUrl!).port);
  const dep = await server.deploy('web', path.join(FIXTURES, 'node-stream'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120, domains: ['www.custom.test'] });
  expect(dep.status).toBe('live');
});

afterAll(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('serving', () => {
  it('serves the app over HTTP/2 and HTTP/1.1 with the user certificate, X-Forwarded-Proto https', async () => {
    for (const name of ['web.apps.test', 'www.custom.test']) {
      for (const http of ['2', '1.1'] as const) {
        const res = await curlHttps(name, port, '/headers', { cacert: path.join(dir, 'ca.pem'), http });
        expect(res.exitCode, res.stderr).toBe(0);
        expect([res.status, res.httpVersion]).toEqual([200, http]);
        expect(res.body).toContain('"x-forwarded-proto","https"');
      }
    }
    // the service's URL is its HTTPS one
    expect((await server.api('GET', '/api/v1/services/web')).body.url).toBe(`https://web.apps.test:${port}`);
    const domains = (await server.api('GET', '/api/v1/services/web/domains')).body.domains;
    expect(domains.map((d: any) => [d.domain, d.status, d.certificate.servedBy?.source])).toEqual([
      ['web.apps.test', 'issued', 'user'],
      ['www.custom.test', 'issued', 'user'],
    ]);
    // an unknown host under a covered name: the router's 404 page, over TLS
    const unknown = await curlHttps('nope.apps.test', port, '/', { cacert: path.join(dir, 'ca.pem'), http: '2' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain('ERR_HOST_UNKNOWN');
  });

  it('streams a large body through HTTP/2 both ways with backpressure', async () => {
    const res = await curlHttps('web.apps.test', port, '/download?mb=8', { cacert: path.join(dir, 'ca.pem'), http: '2', args: ['-o', '/dev/null'] });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.status).toBe(200);
    const client = http2.connect(`https://web.apps.test:${port}`, { ca, createConnection: () => tls.connect({ host: '127.0.0.1', port, servername: 'web.apps.test', ca, ALPNProtocols: ['h2'] }) });
    try {
      const body = Buffer.alloc(3 * 1024 * 1024, 'x');
      const answer = await new Promise<string>((resolve, reject) => {
        const req = client.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
        let text = '';
        req.on('data', (b: Buffer) => (text += b));
        req.on('end', () => resolve(text));
        req.on('error', reject);
        req.end(body);
      });
      expect(answer).toContain(String(body.length));
    } finally {
      client.close();
    }
  });
});

describe('WebSockets over TLS', () => {
  it('upgrades a wss:// connection through the router and echoes', async () => {
    expect((await server.deploy('ws', path.join(FIXTURES, 'node-websocket'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 })).status).toBe('live');
    expect(JSON.parse(await wssEcho(port, 'ws.apps.test', 'over tls'))).toMatchObject({ echo: 'over tls' });
  });
});

describe('the admin API is not on the TLS listener', () => {
  it('answers nothing of the admin API or UI, whatever SNI and Host, over HTTP/1.1 and HTTP/2', async () => {
    const admin = new URL(server.adminUrl);
    const hosts = [admin.host, `localhost:${admin.port}`, '127.0.0.1', 'localhost', 'web.apps.test', 'apps.test', ''];
    const paths = ['/api/v1/health', '/api/v1/services', '/api/openapi.json', '/metrics', '/login', '/services'];
    const seen = new Set<number>();
    for (const sni of ['web.apps.test', 'www.custom.test']) {
      for (const host of hosts) {
        for (const p of paths) {
          const r = await httpsGet(port, sni, p, ca, { host }).catch((err: Error) => ({ status: 0, body: err.message, headers: {}, serial: '' }));
          seen.add(r.status);
          expect(r.body, `${sni} ${host} ${p}`).not.toMatch(/"isolation"|"openapi"|cellhost_requests_total|<form[^>]*login|"services":\[/);
        }
      }
      // HTTP/2 carries the host in :authority
      const client = http2.connect(`https://${sni}:${port}`, { ca, createConnection: () => tls.connect({ host: '127.0.0.1', port, servername: sni, ca, ALPNProtocols: ['h2'] }) });
      try {
        for (const host of hosts.filter(Boolean)) {
          for (const p of paths) {
            const body = await new Promise<string>((resolve, reject) => {
              const req = client.request({ ':path': p, ':authority': host });
              let text = '';
              req.on('data', (b: Buffer) => (text += b));
              req.on('end', () => resolve(text));
              req.on('error', reject);
              req.end();
            });
            expect(body, `h2 ${sni} ${host} ${p}`).not.toMatch(/"isolation"|"openapi"|cellhost_requests_total|<form[^>]*login|"services":\[/);
          }
        }
      } finally {
        client.close();
      }
    }
    expect([...seen].every((s) => s === 404 || s === 400 || s === 200)).toBe(true);
  });
});

describe('hostile clients', () => {
  /** sends raw bytes, returns what came back and how long until the server closed */
  function raw(bytes: Buffer, opts: { waitMs?: number } = {}): Promise<{ reply: Buffer; closedAfterMs: number }> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
      const chunks: Buffer[] = [];
      sock.on('data', (b) => chunks.push(b));
      sock.on('close', () => resolve({ reply: Buffer.concat(chunks), closedAfterMs: Date.now() - started }));
      sock.on('error', () => {});
      setTimeout(() => {
        sock.destroy();
        reject(new Error(`the server kept the connection open past ${opts.waitMs ?? 5000} ms`));
      }, opts.waitMs ?? 5000).unref();
    });
  }

  it('refuses a handshake without SNI, with a 10 KB SNI or a non-ASCII one, and goes on serving', async () => {
    expect((await handshake(port, undefined, { ca })).ok).toBe(false);
    for (const sni of [null, Buffer.alloc(0), Buffer.alloc(10 * 1024, 'a'), Buffer.from('wéb.apps.test', 'utf8'), Buffer.from([0xff, 0xfe, 0x00, 0x41])]) {
      const { reply } = await raw(clientHello(sni));
      // an alert record (21), or nothing: never a ServerHello with a certificate
      expect(reply.length === 0 || reply[0] === 21, `SNI ${sni?.length ?? 'none'}: got record type ${reply[0]}`).toBe(true);
    }
    // a name no certificate covers
    expect((await handshake(port, 'other.example', { ca })).ok).toBe(false);
    const ok = await handshake(port, 'web.apps.test', { ca });
    expect(ok).toMatchObject({ ok: true, authorized: true });
  });

  it('closes a client hello that never finishes at the headers timeout', async () => {
    const hello = clientHello(Buffer.from('web.apps.test'));
    const { closedAfterMs } = await raw(hello.subarray(0, 40), { waitMs: HEADERS_TIMEOUT_MS + 4000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 500);
    expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
  });

  it('holds 1000 idle TLS connections, still serves, then closes them', { timeout: 120_000 }, async () => {
    const idle = await startTestServer({
      env: {
        CELLHOST_DOMAIN: 'apps.test',
        CELLHOST_HTTPS_ADDR: '127.0.0.1:0',
        CELLHOST_TLS_CERT: path.join(dir, 'leaf.pem'),
        CELLHOST_TLS_KEY: path.join(dir, 'leaf.key'),
        CELLHOST_HEADERS_TIMEOUT_MS: String(IDLE_HEADERS_TIMEOUT_MS),
      },
    });
    const idlePort = Number(new URL(idle.httpsUrl!).port);
    expect((await idle.deploy('web', path.join(FIXTURES, 'node-stream'), { startCommand: 'node app.js', buildCommand: 'true' })).status).toBe('live');
    // the clients run in their own process, as they would on other machines: the router's core
    // is not spent on their side of the handshakes
    const script = `
      const tls = require('node:tls');
      const ctx = tls.createSecureContext({ ca: process.env.CA });
      let open = 0, closed = 0, failed = 0, started = 0;
      const report = () => process.stdout.write(JSON.stringify({ open, closed, failed }) + '\\n');
      function one(i) {
        started++;
        const s = tls.connect({ host: '127.0.0.1', port: Number(process.env.PORT), servername: 'web.apps.test', secureContext: ctx, ALPNProtocols: [i % 2 ? 'h2' : 'http/1.1'] }, () => {
          open++;
          if (open + failed === 1000) report();
        });
        // read what the server says (its 408, its GOAWAY), so its close completes
        s.resume();
        s.on('error', () => { failed++; });
        s.on('close', () => { closed++; if (closed === 1000) { report(); process.exit(0); } });
      }
      (async () => {
        for (let i = 0; i < 1000; i += 100) {
          for (let k = 0; k < 100; k++) one(i + k);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      setInterval(report, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', CA: ca, PORT: String(idlePort) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let last = { open: 0, closed: 0, failed: 0 };
    let peak = 0;
    child.stdout!.on('data', (b: Buffer) => {
      for (const line of b.toString().trim().split('\n')) {
        last = JSON.parse(line);
        peak = Math.max(peak, last.open - last.closed);
      }
    });
    try {
      const opening = Date.now();
      await waitFor(() => last.open + last.failed === 1000, { timeoutMs: IDLE_HEADERS_TIMEOUT_MS, intervalMs: 50, what: '1000 TLS connections to be open' }).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(last)}`);
      });
      const openedMs = Date.now() - opening;
      expect(last.failed).toBe(0);
      // all open at once, unless opening them took nearly the timeout
      expect(peak, `opened in ${openedMs} ms`).toBe(1000);
      // a new client is served at once
      const t = Date.now();
      const res = await httpsGet(idlePort, 'web.apps.test', '/headers', ca);
      expect(res.status).toBe(200);
      expect(Date.now() - t).toBeLessThan(1000);
      // they sent nothing: each is closed when its first request is overdue (h2: no stream)
      await waitFor(() => last.closed === 1000, { timeoutMs: IDLE_HEADERS_TIMEOUT_MS + 5000, intervalMs: 100, what: 'the idle connections to be closed' }).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(last)}`);
      });
    } finally {
      child.kill('SIGKILL');
      await idle.close();
    }
  });
});

describe("the user's certificate", () => {
  it('is read again when its files change, and on SIGHUP; a broken pair keeps the old one', async () => {
    const before = await handshake(port, 'web.apps.test', { ca });
    if (!before.ok) throw new Error(before.error);
    // a new pair written over the old files (as certbot's deploy hook would)
    makeCertificate(dir, ['*.apps.test', 'www.custom.test', 'more.custom.test'], 'next');
    fs.copyFileSync(path.join(dir, 'next.key'), path.join(dir, 'leaf.key'));
    fs.copyFileSync(path.join(dir, 'next.pem'), path.join(dir, 'leaf.pem'));
    const after = await waitFor(
      async () => {
        const h = await handshake(port, 'web.apps.test', { ca });
        return h.ok && h.serial !== before.serial ? h : null;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the new certificate to be served' },
    );
    expect(after.authorized).toBe(true);
    expect((await handshake(port, 'more.custom.test', { ca })).ok).toBe(true);
    // a key that does not match: refused, the loaded certificate stays
    fs.copyFileSync(path.join(dir, 'ca.key'), path.join(dir, 'leaf.key'));
    expect(server.reloadCertificates()).toBe(false);
    const still = await handshake(port, 'web.apps.test', { ca });
    expect(still).toMatchObject({ ok: true, serial: after.serial });
    fs.copyFileSync(path.join(dir, 'next.key'), path.join(dir, 'leaf.key'));
    expect(server.reloadCertificates()).toBe(true);
  });

  it('plain HTTP to a covered host is redirected to HTTPS', async () => {
    const res = await requestRouter(server.routerUrl, 'web.apps.test', '/headers');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe(`https://web.apps.test:${port}/headers`);
  });
});

describe("with node:http's parser (CELLHOST_HTTP_PARSER=node)", () => {
  it('serves HTTP/1.1 and HTTP/2 on the TLS listener the same, bodies, X-Forwarded-Proto, WebSockets and timeouts included', { timeout: 60_000 }, async () => {
    const fallback = await startTestServer({
      env: {
        CELLHOST_DOMAIN: 'apps.test',
        CELLHOST_HTTPS_ADDR: '127.0.0.1:0',
        CELLHOST_TLS_CERT: path.join(dir, 'leaf.pem'),
        CELLHOST_TLS_KEY: path.join(dir, 'leaf.key'),
        CELLHOST_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        CELLHOST_HTTP_PARSER: 'node',
      },
    });
    try {
      expect(fallback.httpParser).toBe('node:http');
      const p = Number(new URL(fallback.httpsUrl!).port);
      expect((await fallback.deploy('web', path.join(FIXTURES, 'node-stream'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 })).status).toBe('live');
      for (const http of ['1.1', '2'] as const) {
        const res = await curlHttps('web.apps.test', p, '/headers', { cacert: path.join(dir, 'ca.pem'), http });
        expect(res.exitCode, res.stderr).toBe(0);
        expect([res.status, res.httpVersion]).toEqual([200, http]);
        expect(res.body).toContain('"x-forwarded-proto","https"');
        // a body up through node:http's TLS connection
        const up = await curlHttps('web.apps.test', p, '/upload', { cacert: path.join(dir, 'ca.pem'), http, args: ['--data-binary', `@${path.join(dir, 'leaf.pem')}`, '-H', 'content-type: application/octet-stream'] });
        expect(up.status).toBe(200);
        expect(up.body).toContain(`"bytes":${fs.statSync(path.join(dir, "leaf.pem")).size}`);
      }
      expect((await fallback.deploy('ws', path.join(FIXTURES, 'node-websocket'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 })).status).toBe('live');
      expect(JSON.parse(await wssEcho(p, 'ws.apps.test', 'through node:http'))).toMatchObject({ echo: 'through node:http' });
      // the admin API is not there either
      const admin = await httpsGet(p, 'web.apps.test', '/api/v1/health', ca, { host: new URL(fallback.adminUrl).host });
      expect(admin.status).toBe(404);
      // a TLS connection that sends no request is closed at the headers timeout, as on the plain listener
      const started = Date.now();
      const closedAfterMs = await new Promise<number>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: p, servername: 'web.apps.test', ca, ALPNProtocols: ['http/1.1'] });
        s.resume();
        s.on('error', () => {});
        s.on('close', () => resolve(Date.now() - started));
        setTimeout(() => {
          s.destroy();
          reject(new Error('the idle TLS connection was kept open'));
        }, HEADERS_TIMEOUT_MS + 8000).unref();
      });
      expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
    } finally {
      await fallback.close();
    }
  });
});
