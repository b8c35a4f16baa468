// Certificates from a real ACME CA (Pebble, Let's Encrypt's test CA) on loopback: a service's
// platform name and a custom domain get theirs by HTTP-01, another platform by TLS-ALPN-01 only;
// curl loads the app over HTTP/2 and HTTP/1.1 verified against Pebble's root; a name whose DNS
// points elsewhere waits without an order, a CA that refuses or is down leaves a failed state
// with its reason and no order loop, and the plain listener keeps serving.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { curlHttps, handshake, httpsGet } from '../../helpers/https.ts';
import { acmePlatformEnv, pebbleMissing, startPebble, type Pebble } from '../../helpers/pebble.ts';
import { FIXTURES, requestRouter, startTestServer, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

const missing = pebbleMissing();
if (missing.length && process.env.CI === 'true') throw new Error(`the ACME tests need ${missing.join(', ')}`);

const APP = { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 };
const STREAM_APP = path.join(FIXTURES, 'node-stream');

async function startPlatform(pebble: Pebble, ports: { http: number; https: number }, env: Record<string, string> = {}): Promise<TestServer> {
  return startTestServer({
    env: {
      ...acmePlatformEnv(pebble, ports),
      CELLHOST_ACME_EMAIL: 'ops@example.test',
      ...env,
    },
  });
}

async function domainState(server: TestServer, service: string, domain: string): Promise<any> {
  const { body } = await server.api('GET', `/api/v1/services/${service}/domains`);
  return body.domains.find((d: any) => d.domain === domain);
}

function waitStatus(server: TestServer, service: string, domain: string, status: string, timeoutMs = 30_000): Promise<any> {
  return waitFor(
    async () => {
      const d = await domainState(server, service, domain);
      return d?.status === status ? d : null;
    },
    { timeoutMs, intervalMs: 100, what: `${domain} to be ${status}` },
  );
}

describe.skipIf(missing.length > 0)('HTTP-01 with Pebble', () => {
  let pebble: Pebble;
  let server: TestServer;
  let ports: { http: number; https: number };

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.https, blocklist: ['blocked.example.test'] });
    server = await startPlatform(pebble, ports, { CELLHOST_ACME_CHALLENGES: 'http-01' });
    const dep = await server.deploy('web', STREAM_APP, APP);
    expect(dep.status).toBe('live');
  });

  afterAll(async () => {
    await server?.close();
    await pebble?.close();
  });

  it('orders the platform name when the service is created and serves it over HTTP/2 and HTTP/1.1', async () => {
    const issued = await waitStatus(server, 'web', 'web.apps.test', 'issued');
    expect(issued.certificate).toMatchObject({ challenge: 'http-01', error: null, servedBy: { identifier: 'web.apps.test', source: 'acme' } });
    expect(Date.parse(issued.certificate.expiresAt)).toBeGreaterThan(Date.now() + 30 * 86_400_000);
    for (const http of ['2', '1.1'] as const) {
      const res = await curlHttps('web.apps.test', ports.https, '/headers', { cacert: pebble.rootFile, http });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.status).toBe(200);
      expect(res.httpVersion).toBe(http);
      const seen = JSON.parse(res.body) as { rawHeaders: string[] };
      const fields = Object.fromEntries(seen.rawHeaders.reduce<[string, string][]>((acc, v, i, a) => (i % 2 ? acc : [...acc, [v.toLowerCase(), a[i + 1]!]]), []));
      expect(fields['x-forwarded-proto']).toBe('https');
      expect(fields.host).toBe(`web.apps.test:${ports.https}`);
    }
    // the same name without Pebble's root is not trusted: the certificate really is Pebble's
    const untrusted = await curlHttps('web.apps.test', ports.https, '/', { cacert: pebble.caFile, http: '2' });
    expect(untrusted.exitCode).toBe(60);
  });

  it('redirects plain HTTP to HTTPS once the certificate exists, and answers no challenge that is not under way', async () => {
    const plain = await requestRouter(server.routerUrl, 'web.apps.test', '/headers?x=1');
    expect(plain.status).toBe(301);
    expect(plain.headers.get('location')).toBe(`https://web.apps.test:${ports.https}/headers?x=1`);
    const post = await requestRouter(server.routerUrl, 'web.apps.test', '/upload', { method: 'POST', body: 'x' });
    expect(post.status).toBe(308);
    // no order under way: /.well-known/acme-challenge/ is not the router's (and redirects like any path)
    const probe = await requestRouter(server.routerUrl, 'web.apps.test', '/.well-known/acme-challenge/not-a-token');
    expect(probe.status).toBe(301);
    expect((await server.api('PATCH', '/api/v1/services/web', { httpsRedirect: false })).status).toBe(200);
    const served = await requestRouter(server.routerUrl, 'web.apps.test', '/.well-known/acme-challenge/not-a-token');
    expect(served.headers.get('x-cellhost-error')).toBeNull();
    expect(served.text).not.toMatch(/^not-a-token\./);
    expect((await requestRouter(server.routerUrl, 'web.apps.test', '/headers')).status).toBe(200);
    // HSTS, when asked for, only over HTTPS
    expect((await server.api('PATCH', '/api/v1/services/web', { httpsRedirect: true, hsts: true })).status).toBe(200);
    const secure = await httpsGet(ports.https, 'web.apps.test', '/headers', fs.readFileSync(pebble.rootFile, 'utf8'));
    expect(secure.headers['strict-transport-security']).toBe('max-age=31536000');
    expect((await server.api('PATCH', '/api/v1/services/web', { hsts: false })).status).toBe(200);
  });

  it('a custom domain shows its DNS record, then gets its own certificate; the CLI lists it', async () => {
    const added = await server.api('POST', '/api/v1/services/web/domains', { domain: 'shop.example.test' });
    expect(added.status).toBe(201);
    expect(added.body.dnsRecords).toContainEqual({ type: 'CNAME', value: 'web.apps.test' });
    expect(added.body.dnsRecords).toContainEqual({ type: 'A', value: '127.0.0.1' });
    const issued = await waitStatus(server, 'web', 'shop.example.test', 'issued');
    expect(issued.certificate.dns).toMatchObject({ ok: true });
    const res = await curlHttps('shop.example.test', ports.https, '/', { cacert: pebble.rootFile, http: '2' });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.status).toBe(200);
    // the service's log tells the story
    const logs = await server.api('GET', '/api/v1/services/web/logs');
    const events = JSON.stringify(logs.body);
    expect(events).toContain('certificate for web.apps.test issued');
    expect(events).toContain('certificate for shop.example.test issued');

    let out = '';
    const io = { env: { CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN }, cwd: '/', out: (t: string) => void (out += t), err: (t: string) => void (out += t), isTTY: false };
    expect(await runCli(['domains', 'ls', 'web'], io)).toBe(0);
    expect(out).toMatch(/shop\.example\.test\s+custom\s+issued, expires \d{4}-/);
    expect(out).toMatch(/web\.apps\.test\s+platform\s+issued/);
    const metrics = await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
    expect(metrics).toMatch(/cellhost_certificate_expiry_seconds\{domain="shop\.example\.test",source="acme"\} \d+/);
    expect(metrics).toContain('cellhost_certificates{state="issued"} 2');
  });

  it('refuses bad names with their codes and a second claim with 409', async () => {
    const cases: [string, string][] = [
      ['192.0.2.1', 'ERR_DOMAIN_IP'],
      ['*.example.test', 'ERR_DOMAIN_WILDCARD'],
      ['Shop.Example.test', 'ERR_DOMAIN_UPPERCASE'],
      ['shop.example.test.', 'ERR_DOMAIN_TRAILING_DOT'],
      [`${'a'.repeat(60)}.`.repeat(5) + 'test', 'ERR_DOMAIN_TOO_LONG'],
      ['bücher.example', 'ERR_DOMAIN_NOT_PUNYCODE'],
      ['no_underscores.example', 'ERR_DOMAIN_INVALID'],
      ['x'.repeat(10_000), 'ERR_DOMAIN_TOO_LONG'],
    ];
    for (const [domain, code] of cases) {
      const res = await server.api('POST', '/api/v1/services/web/domains', { domain });
      expect([domain.slice(0, 30), res.status, res.body.error?.code]).toEqual([domain.slice(0, 30), 400, code]);
    }
    expect((await server.api('POST', '/api/v1/services/web/domains', {})).body.error.code).toBe('ERR_VALIDATION');
    // a new service's platform name is ordered at once
    const ordersBefore = pebble.orders();
    expect((await server.api('POST', '/api/v1/services', { name: 'other', runtime: 'node' })).status).toBe(201);
    await waitStatus(server, 'other', 'other.apps.test', 'issued');
    expect(pebble.orders() - ordersBefore).toBe(1);
    const taken = await server.api('POST', '/api/v1/services/other/domains', { domain: 'shop.example.test' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('ERR_DOMAIN_TAKEN');
    const platform = await server.api('POST', '/api/v1/services/other/domains', { domain: 'web.apps.test' });
    expect([platform.status, platform.body.error.code]).toEqual([409, 'ERR_DOMAIN_TAKEN']);
    // the owner adding it again is no new claim: its DNS is checked again
    expect((await server.api('POST', '/api/v1/services/web/domains', { domain: 'shop.example.test' })).status).toBe(200);
    expect((await server.api('DELETE', '/api/v1/services/other/domains/shop.example.test')).body.error.code).toBe('ERR_DOMAIN_NOT_FOUND');
    expect((await server.api('DELETE', '/api/v1/services/other')).status).toBe(204);
  });

  it('a name whose DNS points elsewhere waits for DNS with the reason, and the CA gets no order', async () => {
    await pebble.setA('elsewhere.example.test', ['192.0.2.10']);
    const before = pebble.orders();
    expect((await server.api('POST', '/api/v1/services/web/domains', { domain: 'elsewhere.example.test' })).status).toBe(201);
    const waiting = await waitFor(
      async () => {
        const d = await domainState(server, 'web', 'elsewhere.example.test');
        return d.certificate.dns ? d : null;
      },
      { what: 'the first DNS check' },
    );
    expect(waiting.status).toBe('pending_dns');
    expect(waiting.certificate.dns.message).toMatch(/points to 192\.0\.2\.10, not to this host: create A 127\.0\.0\.1 or CNAME web\.apps\.test/);
    expect(Date.parse(waiting.certificate.nextAttemptAt)).toBeGreaterThan(Date.now() + 5000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(pebble.orders()).toBe(before);
    // it still routes over plain HTTP: the name is attached, only the certificate waits
    const plain = await requestRouter(server.routerUrl, 'elsewhere.example.test', '/headers');
    expect(plain.status).toBe(200);
    expect((await server.api('DELETE', '/api/v1/services/web/domains/elsewhere.example.test')).status).toBe(204);
  });

  it("a CA that refuses says why, once: no order loop", async () => {
    const before = pebble.orders();
    expect((await server.api('POST', '/api/v1/services/web/domains', { domain: 'blocked.example.test' })).status).toBe(201);
    const failed = await waitStatus(server, 'web', 'blocked.example.test', 'failed');
    expect(failed.certificate.error).toMatch(/blocked/i);
    expect(Date.parse(failed.certificate.nextAttemptAt) - Date.now()).toBeGreaterThan(50_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(pebble.orders() - before).toBe(1);
    // asking again at once does not bring the next attempt before the backoff allows
    expect((await server.api('POST', '/api/v1/services/web/domains', { domain: 'blocked.example.test' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect(pebble.orders() - before).toBe(1);
    const { entries } = (await server.api('GET', '/api/v1/services/web/logs')).body;
    expect(entries.map((e: { message: string }) => e.message)).toContainEqual(expect.stringMatching(/^certificate for blocked\.example\.test failed: .*forbidden by policy.*next attempt/));
    const metrics = await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
    expect(metrics).toContain('cellhost_certificate_failures_total{domain="blocked.example.test"} 1');
    // doctor says it too
    let out = '';
    const io = { env: { CELLHOST_DATA: server.dataDir, CELLHOST_HTTPS_ADDR: `127.0.0.1:${ports.https}`, CELLHOST_CGROUP_PREFIX: server.cgroupPrefix }, cwd: '/', out: (t: string) => void (out += t), err: (t: string) => void (out += t), isTTY: false };
    await runCli(['doctor'], io);
    expect(out).toMatch(/MISS\s+blocked\.example\.test: no certificate: [^\n]*blocked/i);
  });

  it('a CA that is down: the state says so, and the plain and TLS listeners keep serving', async () => {
    await pebble.stopCa();
    expect((await server.api('POST', '/api/v1/services/web/domains', { domain: 'later.example.test' })).status).toBe(201);
    const failed = await waitStatus(server, 'web', 'later.example.test', 'failed');
    expect(failed.certificate.error).toMatch(/could not be reached \(ECONNREFUSED\)/);
    expect((await requestRouter(server.routerUrl, 'later.example.test', '/headers')).status).toBe(200);
    const res = await curlHttps('web.apps.test', ports.https, '/headers', { cacert: pebble.rootFile, http: '2' });
    expect(res.status).toBe(200);
    // a name with no certificate is refused at the handshake, not served with another's
    const none = await handshake(ports.https, 'later.example.test');
    expect(none.ok).toBe(false);
  });
});

describe.skipIf(missing.length > 0)('TLS-ALPN-01 with Pebble', () => {
  let pebble: Pebble;
  let server: TestServer;
  let ports: { http: number; https: number };

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    // Pebble's HTTP-01 validations would go to a port nobody listens on: only TLS-ALPN-01 can pass
    pebble = await startPebble({ httpPort: await freePortSync(), tlsPort: ports.https });
    server = await startPlatform(pebble, ports, { CELLHOST_ACME_CHALLENGES: 'tls-alpn-01' });
    expect((await server.deploy('alpn', STREAM_APP, APP)).status).toBe('live');
  });

  afterAll(async () => {
    await server?.close();
    await pebble?.close();
  });

  it('validates on the TLS listener and serves the certificate over HTTP/2 and HTTP/1.1', async () => {
    const issued = await waitStatus(server, 'alpn', 'alpn.apps.test', 'issued');
    expect(issued.certificate.challenge).toBe('tls-alpn-01');
    for (const http of ['2', '1.1'] as const) {
      const res = await curlHttps('alpn.apps.test', ports.https, '/headers', { cacert: pebble.rootFile, http });
      expect(res.exitCode, res.stderr).toBe(0);
      expect([res.status, res.httpVersion]).toEqual([200, http]);
      expect(res.body).toContain('"x-forwarded-proto","https"');
    }
    // outside a validation, acme-tls/1 gets nothing
    const probe = await handshake(ports.https, 'alpn.apps.test', { alpn: ['acme-tls/1'] });
    expect(probe.ok).toBe(false);
  });
});

