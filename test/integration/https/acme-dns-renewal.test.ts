// The platform domain's wildcard through DNS-01 (a hook script writing TXT records into
// pebble-challtestsrv, with Pebble unable to reach the listeners, so nothing else could pass),
// and renewal: with Pebble issuing 30-second certificates, the certificate is replaced while
// requests keep coming, new connections and an HTTP/2 connection alike, and none fails.
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlHttps, httpsGet } from '../../helpers/https.ts';
import { acmePlatformEnv, pebbleMissing, startPebble, type Pebble } from '../../helpers/pebble.ts';
import { FIXTURES, startTestServer, tempDir, waitFor, type TestServer } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

const missing = pebbleMissing();
if (missing.length && process.env.CI === 'true') throw new Error(`the ACME tests need ${missing.join(', ')}`);

const APP = { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 };
const STREAM_APP = path.join(FIXTURES, 'node-stream');

async function certificateOf(server: TestServer, service: string, domain: string): Promise<any> {
  const { body } = await server.api('GET', `/api/v1/services/${service}/domains`);
  return body.domains.find((d: any) => d.domain === domain)?.certificate;
}

describe.skipIf(missing.length > 0)('the wildcard by DNS-01 through a hook', () => {
  let pebble: Pebble;
  let server: TestServer;
  let ports: { http: number; https: number };
  let dir: string;
  let hookLog: string;

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    // validations by HTTP or TLS would reach nobody
    pebble = await startPebble({ httpPort: await freePortSync(), tlsPort: await freePortSync() });
    dir = tempDir('cellhost-dns-hook-');
    hookLog = path.join(dir, 'calls.log');
    const hook = path.join(dir, 'dns-hook.sh');
    fs.writeFileSync(
      hook,
      `#!/bin/sh
# called as: dns-hook.sh set|unset NAME VALUE; publishes TXT records in pebble-challtestsrv
echo "$@" >> '${hookLog}'
case "$1" in
  set) exec curl -sf -X POST -d "{\\"host\\":\\"$2.\\",\\"value\\":\\"$3\\"}" '${pebble.dnsApi}/set-txt' ;;
  unset) exec curl -sf -X POST -d "{\\"host\\":\\"$2.\\"}" '${pebble.dnsApi}/clear-txt' ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
`,
      { mode: 0o755 },
    );
    server = await startTestServer({ env: { ...acmePlatformEnv(pebble, ports), CELLHOST_ACME_DNS_HOOK: hook } });
    const [a, b] = await Promise.all([server.deploy('alpha', STREAM_APP, APP), server.deploy('beta', STREAM_APP, APP)]);
    expect([a.status, b.status]).toEqual(['live', 'live']);
  });

  afterAll(async () => {
    await server?.close();
    await pebble?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('orders one wildcard certificate for every service, and serves each name with it', async () => {
    const cert = await waitFor(
      async () => {
        const c = await certificateOf(server, 'alpha', 'alpha.apps.test');
        return c?.status === 'issued' ? c : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the wildcard to be issued' },
    );
    expect(cert.servedBy).toEqual({ identifier: '*.apps.test', source: 'acme' });
    expect(cert.challenge).toBe('dns-01');
    expect((await certificateOf(server, 'beta', 'beta.apps.test')).servedBy).toEqual({ identifier: '*.apps.test', source: 'acme' });
    for (const name of ['alpha.apps.test', 'beta.apps.test']) {
      for (const http of ['2', '1.1'] as const) {
        const res = await curlHttps(name, ports.https, '/headers', { cacert: pebble.rootFile, http });
        expect(res.exitCode, res.stderr).toBe(0);
        expect([res.status, res.httpVersion]).toEqual([200, http]);
      }
    }
    expect(pebble.orders()).toBe(1);
    const calls = fs.readFileSync(hookLog, 'utf8').trim().split('\n');
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatch(/^set _acme-challenge\.apps\.test [A-Za-z0-9_-]{43}$/);
    expect(calls[1]).toBe(calls[0]!.replace(/^set/, 'unset'));
    // a service created later needs no order
    expect((await server.api('POST', '/api/v1/services', { name: 'gamma', runtime: 'node' })).status).toBe(201);
    expect((await certificateOf(server, 'gamma', 'gamma.apps.test')).status).toBe('issued');
    await new Promise((r) => setTimeout(r, 500));
    expect(pebble.orders()).toBe(1);
  });
});

describe.skipIf(missing.length > 0)('renewal under steady load', () => {
  let pebble: Pebble;
  let server: TestServer;
  let ports: { http: number; https: number };

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    // 30-second certificates: renewal starts with a third of the lifetime left, 20 s in
    pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.https, validitySeconds: 30 });
    server = await startTestServer({ env: { ...acmePlatformEnv(pebble, ports), CELLHOST_ACME_CHALLENGES: 'http-01' } });
    expect((await server.deploy('steady', STREAM_APP, APP)).status).toBe('live');
  });

  afterAll(async () => {
    await server?.close();
    await pebble?.close();
  });

  it('replaces the certificate without a failed request', { timeout: 90_000 }, async () => {
    const first = await waitFor(
      async () => {
        const c = await certificateOf(server, 'steady', 'steady.apps.test');
        return c?.status === 'issued' ? c : null;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the first certificate' },
    );
    const root = fs.readFileSync(pebble.rootFile, 'utf8');
    const secureContext = tls.createSecureContext({ ca: root });
    const h2 = http2.connect(`https://steady.apps.test:${ports.https}`, { createConnection: () => tls.connect({ host: '127.0.0.1', port: ports.https, servername: 'steady.apps.test', secureContext, ALPNProtocols: ['h2'] }) });
    h2.on('error', () => {});
    const h2Get = () =>
      new Promise<number>((resolve, reject) => {
        const req = h2.request({ ':path': '/headers' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        req.end();
      });
    const serials: string[] = [];
    const failures: string[] = [];
    let requests = 0;
    let renewedAt = 0;
    const deadline = Date.now() + 45_000;
    try {
      // a fresh connection (new handshake, new certificate once renewed) and an HTTP/2 request
      // on a connection that lives through the renewal, every 100 ms
      while (Date.now() < deadline && (!renewedAt || Date.now() - renewedAt < 2000)) {
        const [fresh, stream] = await Promise.allSettled([httpsGet(ports.https, 'steady.apps.test', '/headers', root), h2Get()]);
        requests += 2;
        if (fresh.status === 'fulfilled' && fresh.value.status === 200) {
          if (serials.at(-1) !== fresh.value.serial) serials.push(fresh.value.serial);
          if (serials.length === 2 && !renewedAt) renewedAt = Date.now();
        } else failures.push(fresh.status === 'rejected' ? String(fresh.reason) : `status ${fresh.value.status}`);
        if (stream.status !== 'fulfilled' || stream.value !== 200) failures.push(`h2: ${stream.status === 'rejected' ? String(stream.reason) : stream.value}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      h2.close();
    }
    expect(failures).toEqual([]);
    expect(serials.length, `serials seen over ${requests} requests`).toBe(2);
    const second = await certificateOf(server, 'steady', 'steady.apps.test');
    expect(second.status).toBe('issued');
    expect(Date.parse(second.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
    const { entries } = (await server.api('GET', '/api/v1/services/steady/logs')).body;
    expect(entries.map((e: { message: string }) => e.message)).toContainEqual(expect.stringMatching(/^certificate for steady\.apps\.test renewed/));
  });
});
