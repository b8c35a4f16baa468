// The fixed-rate load generator of the added-p99 rows (the Go one, test/bench/loadgen -fixed):
// a real server counts what it received, when, and on how many connections.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareFixedRate, type FixedRateGenerator } from '../../bench/fixed-rate.ts';

let generator: FixedRateGenerator;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-fixed-rate-'));
const servers: net.Server[] = [];

beforeAll(async () => {
  generator = await prepareFixedRate();
}, 120_000);

afterAll(async () => {
  await generator?.close();
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Seen {
  port: number;
  hosts: Set<string>;
  /** when each request arrived, ms */
  at: number[];
  connections: number;
}

async function serve(make: (handler: http.RequestListener) => net.Server, delayMs = 0): Promise<Seen> {
  const seen: Seen = { port: 0, hosts: new Set(), at: [], connections: 0 };
  const server = make((req, res) => {
    seen.hosts.add(req.headers.host ?? '');
    seen.at.push(performance.now());
    setTimeout(() => res.end('ok'), delayMs);
  });
  server.on(server instanceof https.Server ? 'secureConnection' : 'connection', () => seen.connections++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  seen.port = (server.address() as net.AddressInfo).port;
  return seen;
}

function certificate(name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:svc.localhost'], { stdio: 'ignore' });
  return { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8') };
}

describe('the fixed-rate load generator', () => {
  it('is the Go one where go is installed (CI installs it)', () => {
    if (process.env.CI === 'true') expect(generator.name).toMatch(/^go /);
  });

  it('holds the rate over the round, with the Host header, and keeps its connections from round to round', async () => {
    const seen = await serve((h) => http.createServer(h));
    const target = { name: 'plain', port: seen.port, host: '127.0.0.1', hostHeader: 'svc.localhost' };
    const first = await generator.run(target, 500, 400);
    const second = await generator.run(target, 500, 400);
    for (const r of [first, second]) {
      expect(r).toMatchObject({ sent: 200, ok: 200, errors: 0, skipped: 0 });
      expect(r.latencies).toHaveLength(200);
      expect(r.p99Ms).toBeGreaterThan(0);
    }
    expect(seen.hosts).toEqual(new Set(['svc.localhost']));
    // spread over the round, not sent at once: the last of the first round came ~398 ms after its first
    const span = seen.at[199]! - seen.at[0]!;
    expect(span).toBeGreaterThan(350);
    expect(span).toBeLessThan(1000);
    // one request every 2 ms, each answered at once: a few connections (more where the host stalls)
    expect(seen.connections).toBeLessThanOrEqual(40);
    // a slow round after those opens none: the round before left its connections open
    const opened = seen.connections;
    expect(await generator.run(target, 50, 200)).toMatchObject({ sent: 10, ok: 10 });
    expect(seen.connections).toBe(opened);
  });

  it('over HTTPS, trusts the CA it is given and no other', async () => {
    const good = certificate('good');
    const other = certificate('other');
    const seen = await serve((h) => https.createServer({ cert: good.cert, key: good.key }, h));
    const ok = await generator.run({ name: 'tls-good', port: seen.port, host: '127.0.0.1', hostHeader: 'svc.localhost', tls: { ca: good.cert, servername: 'svc.localhost' } }, 200, 250);
    expect(ok).toMatchObject({ sent: 50, ok: 50, errors: 0 });
    const refused = await generator.run({ name: 'tls-other', port: seen.port, host: '127.0.0.1', hostHeader: 'svc.localhost', tls: { ca: other.cert, servername: 'svc.localhost' } }, 200, 250);
    expect(refused).toMatchObject({ sent: 50, ok: 0, errors: 50 });
    expect(seen.at).toHaveLength(50);
  });

  it('does not pile requests up behind a slow server: past 64 open, scheduled ones are skipped', async () => {
    const seen = await serve((h) => http.createServer(h), 400);
    const r = await generator.run({ name: 'slow', port: seen.port, host: '127.0.0.1' }, 400, 500);
    expect(r.sent + r.skipped).toBe(200);
    expect(r.sent).toBeGreaterThanOrEqual(64);
    expect(r.skipped).toBeGreaterThan(0);
    expect(r.ok).toBe(r.sent);
    // each waited for the server (its timer may fire a fraction of a millisecond early)
    expect(Math.min(...r.latencies)).toBeGreaterThan(390);
  });
});
