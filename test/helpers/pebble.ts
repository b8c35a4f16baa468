// Let's Encrypt's test CA on loopback: Pebble, with pebble-challtestsrv as its DNS server (every
// name resolves to 127.0.0.1 unless a test says otherwise). Pebble's validations go to the ports
// the test gives (the platform's plain and TLS listeners). Pebble's own HTTPS certificate is made
// here with openssl; the root it issues from is fetched from its management port.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePortSync } from './subprocess-server.ts';
import { tempDir } from './server.ts';

export const PEBBLE = '/usr/bin/pebble';
export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

/** what is missing to run Pebble, for the CI=true rule (fail, never skip) */
export function pebbleMissing(): string[] {
  return [PEBBLE, CHALLTESTSRV, '/usr/bin/openssl'].filter((p) => !fs.existsSync(p)).map((p) => `${p} (apt-get install pebble openssl)`);
}

export interface PebbleOptions {
  /** where Pebble validates HTTP-01 and TLS-ALPN-01 (the platform's listeners) */
  httpPort: number;
  tlsPort: number;
  /** certificate lifetime in seconds (Pebble's default is 5 years) */
  validitySeconds?: number;
  /** names Pebble refuses to issue for (its error is the CA's reason a test reads) */
  blocklist?: string[];
}

export interface Pebble {
  directory: string;
  /** Pebble's own HTTPS certificate: what cellhost trusts through CELLHOST_ACME_CA_FILE */
  caFile: string;
  /** the root Pebble issues from (PEM file), for clients verifying what cellhost serves */
  rootFile: string;
  /** challtestsrv's DNS, for CELLHOST_DNS_RESOLVER */
  dnsServer: string;
  /** challtestsrv's management API (TXT records for the DNS-01 hook) */
  dnsApi: string;
  dir: string;
  /** orders Pebble received so far (its log's newOrder requests) */
  orders(): number;
  log(): string;
  /** make a name resolve to these addresses instead of 127.0.0.1 */
  setA(host: string, addresses: string[]): Promise<void>;
  /** stop the CA (challtestsrv keeps answering DNS) */
  stopCa(): Promise<void>;
  close(): Promise<void>;
}

async function waitReady(url: string, ca: string, proc: ChildProcess, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = https.get(url, { ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGKILL');
  return exited;
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = tempDir('cellhost-pebble-');
  const caFile = path.join(dir, 'pebble-https.pem');
  const keyFile = path.join(dir, 'pebble-https.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=pebble', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const [acmePort, mgmtPort, dnsPort, dnsApiPort] = [await freePortSync(), await freePortSync(), await freePortSync(), await freePortSync()];
  fs.writeFileSync(
    path.join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: caFile,
        privateKey: keyFile,
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        domainBlocklist: opts.blocklist ?? [],
        ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
      },
    }),
  );
  let dnsOut = '';
  const dns = spawn(CHALLTESTSRV, ['-http01', '', '-https01', '', '-tlsalpn01', '', '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${dnsApiPort}`, '-defaultIPv6', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  dns.stdout!.on('data', (b) => (dnsOut += b));
  dns.stderr!.on('data', (b) => (dnsOut += b));
  let caOut = '';
  // every validation done (no random sleeps), every order validated anew (no authorization
  // reuse), no nonce refused at random (a refused one is retried by the client and would count
  // as a second newOrder request in the log the tests count orders from)
  const ca = spawn(PEBBLE, ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' },
  });
  ca.stdout!.on('data', (b) => (caOut += b));
  ca.stderr!.on('data', (b) => (caOut += b));
  const caPem = fs.readFileSync(caFile, 'utf8');
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  try {
    await waitReady(directory, caPem, ca, 'pebble', () => caOut);
    const deadline = Date.now() + 10_000;
    while (!(await fetch(`http://127.0.0.1:${dnsApiPort}/clear-txt`, { method: 'POST', body: '{"host":"ready.test."}' }).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error(`pebble-challtestsrv did not start: ${dnsOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await Promise.all([stop(ca), stop(dns)]);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const root = await new Promise<string>((resolve, reject) => {
    https.get(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca: caPem, agent: false }, (res) => {
      let body = '';
      res.on('data', (b) => (body += b));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const rootFile = path.join(dir, 'pebble-root.pem');
  fs.writeFileSync(rootFile, root);
  return {
    directory,
    caFile,
    rootFile,
    dnsServer: `127.0.0.1:${dnsPort}`,
    dnsApi: `http://127.0.0.1:${dnsApiPort}`,
    dir,
    orders: () => caOut.split('\n').filter((l) => l.includes('POST /order-plz')).length,
    log: () => caOut,
    async setA(host, addresses) {
      const res = await fetch(`http://127.0.0.1:${dnsApiPort}/add-a`, { method: 'POST', body: JSON.stringify({ host: host.endsWith('.') ? host : `${host}.`, addresses }) });
      if (!res.ok) throw new Error(`challtestsrv add-a: ${res.status}`);
    },
    stopCa: () => stop(ca),
    async close() {
      await Promise.all([stop(ca), stop(dns)]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A platform's settings to get its certificates from this Pebble: apps under `apps.test`, whose
 * names Pebble's DNS resolves to loopback, with HTTP and HTTPS on the ports Pebble validates.
 */
export function acmePlatformEnv(pebble: Pebble, ports: { http: number; https: number }): Record<string, string> {
  return {
    CELLHOST_DOMAIN: 'apps.test',
    CELLHOST_HTTP_ADDR: `127.0.0.1:${ports.http}`,
    CELLHOST_HTTPS_ADDR: `127.0.0.1:${ports.https}`,
    CELLHOST_ACME_DIRECTORY: pebble.directory,
    CELLHOST_ACME_CA_FILE: pebble.caFile,
    CELLHOST_DNS_RESOLVER: pebble.dnsServer,
  };
}
