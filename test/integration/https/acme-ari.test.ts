// Renewal when the CA says (ARI, RFC 9773), with real certificates from Pebble: the renewal
// information comes from a front that adds it to Pebble's directory (Debian 12's Pebble has
// none), everything else is Pebble's. The CA suggests renewing the first certificate at once (as
// before a revocation): it is renewed, the new order names it in `replaces`, the user's log says
// why, and the new certificate, whose window lies ahead, is served and left alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAriFront, type AriFront } from '../../helpers/ari-front.ts';
import { acmePlatformEnv, pebbleMissing, startPebble, type Pebble } from '../../helpers/pebble.ts';
import { FIXTURES, startTestServer, waitFor, type TestServer } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

const missing = pebbleMissing();
if (missing.length && process.env.CI === 'true') throw new Error(`the ACME tests need ${missing.join(', ')}`);

const APP = { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 };
const HOUR = 3_600_000;
const EXPLANATION = 'https://ca.test/incident-42';

/** the served certificate's ARI identifier, read by openssl (not by the platform's own parser) */
function servedCertId(port: number, servername: string, root: string, dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: root }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.destroy();
      const file = path.join(dir, `served-${Date.now()}.der`);
      fs.writeFileSync(file, der);
      const text = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', file, '-noout', '-serial', '-ext', 'authorityKeyIdentifier'], { encoding: 'utf8' });
      fs.rmSync(file);
      const serialHex = /serial=([0-9A-F]+)/i.exec(text)![1]!;
      const keyIdHex = /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/i.exec(text)![1]!.replace(/:/g, '');
      let serial = Buffer.from(serialHex.length % 2 ? '0' + serialHex : serialHex, 'hex');
      if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.alloc(1), serial]);
      resolve(`${Buffer.from(keyIdHex, 'hex').toString('base64url')}.${serial.toString('base64url')}`);
    });
    socket.on('error', reject);
  });
}

describe.skipIf(missing.length > 0)('renewal information (ARI) from the CA', () => {
  let pebble: Pebble;
  let front: AriFront;
  let server: TestServer;
  let ports: { http: number; https: number };

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.https });
    // the first certificate asked about is to be renewed now; any other in two months
    let first: string | null = null;
    front = await startAriFront(pebble, (id) => {
      first ??= id;
      const now = Date.now();
      return id === first ? { start: new Date(now - 2 * HOUR), end: new Date(now - HOUR), explanationURL: EXPLANATION } : { start: new Date(now + 1440 * HOUR), end: new Date(now + 1488 * HOUR) };
    });
    server = await startTestServer({ env: { ...acmePlatformEnv(pebble, ports), CELLHOST_ACME_DIRECTORY: front.directory, CELLHOST_ACME_CHALLENGES: 'http-01' } });
    expect((await server.deploy('ari', path.join(FIXTURES, 'node-stream'), APP)).status).toBe('live');
  });

  afterAll(async () => {
    await server?.close();
    await front?.close();
    await pebble?.close();
  });

  it('renews at once when the window says so, naming the certificate it replaces, and serves the new one', { timeout: 60_000 }, async () => {
    const name = 'ari.apps.test';
    // the renewed certificate's own window is asked about too: then all is done
    await waitFor(async () => front.asked.length >= 2, { timeoutMs: 40_000, intervalMs: 100, what: 'renewal information about two certificates' });
    expect(front.orders).toHaveLength(2);
    expect(front.orders[0]).not.toHaveProperty('replaces');
    expect(front.orders[1]).toMatchObject({ identifiers: [{ type: 'dns', value: name }], replaces: front.asked[0] });
    expect(pebble.orders()).toBe(2);

    const root = fs.readFileSync(pebble.rootFile, 'utf8');
    const served = await servedCertId(ports.https, name, root, pebble.dir);
    expect(served).toBe(front.asked[1]);
    expect(served).not.toBe(front.asked[0]);

    const { entries } = (await server.api('GET', '/api/v1/services/ari/logs')).body;
    const messages = entries.map((e: { message: string }) => e.message);
    expect(messages).toContainEqual(expect.stringMatching(new RegExp(`^certificate for ari\\.apps\\.test renewed ahead of its dates, as the CA's renewal window asked \\(${EXPLANATION.replace(/\./g, '\\.')}\\)`)));
    const { body } = await server.api('GET', '/api/v1/services/ari/domains');
    const state = body.domains.find((d: { domain: string }) => d.domain === name);
    expect(state).toMatchObject({ status: 'issued', certificate: { error: null } });
    // asked again when the CA's Retry-After (six hours) says
    expect(Date.parse(state.certificate.nextAttemptAt) - Date.now()).toBeGreaterThan(5.9 * HOUR);
    expect(Date.parse(state.certificate.nextAttemptAt) - Date.now()).toBeLessThanOrEqual(6 * HOUR);

    // the new certificate's window is months away: no third order
    await new Promise((r) => setTimeout(r, 1500));
    expect(pebble.orders()).toBe(2);
    expect(front.asked).toHaveLength(2);
  });
});
