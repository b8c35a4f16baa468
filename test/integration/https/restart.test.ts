// Certificates survive the platform: `cellhost serve` as a real child process gets a certificate
// from Pebble, is stopped with SIGTERM and then killed with SIGKILL, and each time the next start
// serves the same certificate from the store (decrypted with the master key) without a new order.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlHttps, handshake } from '../../helpers/https.ts';
import { pebbleMissing, startPebble, type Pebble } from '../../helpers/pebble.ts';
import { adminApi, tempDir, waitFor } from '../../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../../helpers/subprocess-server.ts';

const missing = pebbleMissing();
if (missing.length && process.env.CI === 'true') throw new Error(`the ACME tests need ${missing.join(', ')}`);

describe.skipIf(missing.length > 0)('certificates across restarts', () => {
  let pebble: Pebble;
  let child: ChildServer | null = null;
  let dataDir: string;
  let ports: { http: number; admin: number; https: number };
  let env: Record<string, string>;
  let root: string;

  const start = async () => {
    child = await spawnServer(dataDir, ports, env);
    return child;
  };

  beforeAll(async () => {
    ports = { http: await freePortSync(), admin: await freePortSync(), https: await freePortSync() };
    pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.https });
    root = fs.readFileSync(pebble.rootFile, 'utf8');
    dataDir = tempDir();
    env = {
      CELLHOST_DOMAIN: 'apps.test',
      CELLHOST_HTTPS_ADDR: `127.0.0.1:${ports.https}`,
      CELLHOST_ACME_DIRECTORY: pebble.directory,
      CELLHOST_ACME_CA_FILE: pebble.caFile,
      CELLHOST_DNS_RESOLVER: pebble.dnsServer,
      CELLHOST_ACME_CHALLENGES: 'http-01',
    };
  });

  afterAll(async () => {
    await stopServer(child);
    await pebble?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the stored certificate after SIGTERM and after kill -9, with no new order', { timeout: 120_000 }, async () => {
    const server = await start();
    const api = adminApi(() => server.adminUrl);
    expect((await api('POST', '/api/v1/services', { name: 'kept', runtime: 'node', domains: ['kept.example.test'] })).status).toBe(201);
    const issued = async () => {
      const { body } = await api('GET', '/api/v1/services/kept/domains');
      return body.domains.every((d: any) => d.status === 'issued') ? body.domains : null;
    };
    await waitFor(issued, { timeoutMs: 30_000, intervalMs: 200, what: 'both certificates' });
    const serialsOf = async () => {
      const out: string[] = [];
      for (const name of ['kept.apps.test', 'kept.example.test']) {
        const h = await handshake(ports.https, name, { ca: root });
        if (!h.ok) throw new Error(`${name}: ${h.error}`);
        expect(h.authorized).toBe(true);
        out.push(h.serial);
      }
      return out;
    };
    const serials = await serialsOf();
    const orders = pebble.orders();
    expect(orders).toBe(2);
    // the keys in the database are ciphertexts
    const db = fs.readFileSync(`${dataDir}/cellhost.db`);
    expect(db.includes('PRIVATE KEY')).toBe(false);

    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      child!.proc.kill(signal);
      const code = await child!.exited;
      if (signal === 'SIGTERM') expect(code).toBe(0);
      const again = await start();
      const api2 = adminApi(() => again.adminUrl);
      expect(await serialsOf()).toEqual(serials);
      const res = await curlHttps('kept.example.test', ports.https, '/', { cacert: pebble.rootFile, http: '2' });
      expect(res.exitCode, res.stderr).toBe(0);
      // no live deployment yet: the router's own answer, over the stored certificate
      expect(res.status).toBe(503);
      const { body } = await api2('GET', '/api/v1/services/kept/domains');
      for (const d of body.domains) {
        expect(d.status).toBe('issued');
        expect(Date.parse(d.certificate.nextAttemptAt)).toBeGreaterThan(Date.now() + 86_400_000);
      }
      await new Promise((r) => setTimeout(r, 1000));
      expect(pebble.orders(), `orders after ${signal}`).toBe(orders);
    }
  });
});
