// Real network namespaces from the pool, with sandboxed apps inside: two apps on 0.0.0.0:8080 at
// once, the walls between instances, the host and 169.254.169.254, NAT to an "outside" namespace
// the test builds, tc shaping in both directions, warm vs cold acquire, and nothing left after
// close(). Test-only prefixes and 198.18.0.0/15 (the benchmarking range) so a running cellhost
// (prefix "ch", 10.213.0.0/16) is never touched. No packet leaves the machine: the firewall drops
// 169.254.169.254 before routing, and every other address belongs to a namespace made here.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseSandboxEnv, buildSandboxCommand, probeSandbox } from '../../../runtime/sandbox/bwrap.ts';
import { createNetnsPool, probeNetns, type NetnsLease, type NetnsPool } from '../../../runtime/sandbox/netns.ts';
import { fdPipes, feedFds, runCommand } from '../../../runtime/sandbox/run-command.ts';
import { findToolchain } from '../../../runtime/sandbox/toolchains.ts';
import { networkLeftovers } from '../../helpers/host.ts';
import { setUpOutside, type Outside } from '../../helpers/outside.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available;
const SPAWN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const UID = 2_000_065_010;
const BIG = 4 * 1024 * 1024;
// the fake outside world: a namespace behind its own veth, like a host on the LAN
const OUTSIDE = { ns: 'chtx-out', ifName: 'chtx0', net24: '198.18.214' };

describe('network prerequisites', () => {
  it.runIf(isCI)('root, iproute2, tc, nsenter, a NAT backend and bubblewrap are present in CI', () => {
    expect([...netProbe.reasons, ...sandboxProbe.reasons]).toEqual([]);
  });
});

const children = new Set<ChildProcess>();

function startProcess(argv: string[], fds: Buffer[] = []): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', ...fdPipes(fds)], env: SPAWN_ENV });
  feedFds(child, fds);
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

async function killAll(): Promise<void> {
  const waits = [...children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(0) : c.once('close', r))));
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  await Promise.all(waits);
}

async function waitForPort(host: string, port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} did not listen within ${timeoutMs} ms`);
    await sleep(10);
  }
}

function request(method: string, url: string, body?: Buffer): Promise<{ status: number; body: Buffer; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

// An app: its name at /, 4 MiB at /big, counts a body at /sink, and /connect?host&port[&read]
// tries an outbound TCP connection from inside its namespace.
const SERVER_JS = `
const http = require('http'), net = require('net');
const big = Buffer.alloc(${BIG}, 97);
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/') return res.end(process.env.NAME);
  if (u.pathname === '/big') { res.setHeader('content-length', big.length); return res.end(big); }
  if (u.pathname === '/sink') { let n = 0; req.on('data', (c) => (n += c.length)); req.on('end', () => res.end(String(n))); return; }
  if (u.pathname === '/connect') {
    const s = net.connect({ host: u.searchParams.get('host'), port: Number(u.searchParams.get('port')) });
    let data = '';
    const done = (r) => { clearTimeout(t); s.destroy(); if (!res.writableEnded) res.end(r); };
    const t = setTimeout(() => done('timeout'), 400);
    s.on('connect', () => { if (!u.searchParams.has('read')) done('connected'); });
    s.on('data', (c) => (data += c));
    s.on('end', () => done('data:' + data));
    s.on('error', (e) => done('error:' + e.code));
    return;
  }
  res.statusCode = 404; res.end();
}).listen(8080, '0.0.0.0');
`;

async function runOnce(argv: string[]): Promise<string> {
  const r = await runCommand(argv[0]!, argv.slice(1), { timeoutMs: 10_000, env: SPAWN_ENV });
  return r.stdout.trim() || r.stderr.trim();
}

describe.skipIf(!ready)('namespace pool with nftables (prefix cht)', () => {
  let outside: Outside | undefined;
  let pool: NetnsPool;
  let imageDir: string;
  let hostListener: net.Server;
  let hostPort: number;
  const leases: Record<'a' | 'b' | 'fast', NetnsLease | undefined> = { a: undefined, b: undefined, fast: undefined };
  const timings = { warmMs: 0, coldMs: 0 };

  const startApp = async (lease: NetnsLease, name: string): Promise<void> => {
    const sandbox = buildSandboxCommand({
      uid: UID,
      gid: UID,
      imageDir,
      tmpSizeBytes: 1 << 20,
      roBinds: [],
      env: { ...baseSandboxEnv(findToolchain('node').pathDirs), PORT: '8080', NAME: name },
      argv: ['node', 'server.js'],
    });
    startProcess(lease.enterArgv(sandbox.argv), sandbox.fds);
    await waitForPort(lease.appAddr, 8080);
  };

  beforeAll(async () => {
    imageDir = await mkdtemp('/var/tmp/cellhost-netns-image-');
    await writeFile(path.join(imageDir, 'server.js'), SERVER_JS, { mode: 0o644 });
    await chmod(imageDir, 0o755);
    // stands in for the admin listener: bound on every host address
    hostListener = net.createServer((s) => s.end('host'));
    await new Promise<void>((r) => hostListener.listen(0, '0.0.0.0', r));
    hostPort = (hostListener.address() as AddressInfo).port;
    outside = await setUpOutside(OUTSIDE);
    pool = createNetnsPool({ prefix: 'cht', subnet: '198.18.213.0/24', warm: 1 });
    await pool.start();
  });

  afterAll(async () => {
    await killAll();
    await pool?.close();
    await outside?.close();
    hostListener?.close();
    if (imageDir) await rm(imageDir, { recursive: true, force: true });
  });

  it('hands out a warm namespace without running ip, a cold one in tens of ms', async () => {
    const deadline = Date.now() + 5000;
    while (pool.size() < 1 && Date.now() < deadline) await sleep(10);
    expect(pool.size()).toBe(1);
    let t0 = performance.now();
    leases.a = await pool.acquire({ bandwidthMbit: 64 });
    timings.warmMs = performance.now() - t0;
    // the refill has only just begun: this one is made on the spot
    expect(pool.size()).toBe(0);
    t0 = performance.now();
    leases.b = await pool.acquire({ bandwidthMbit: 64 });
    timings.coldMs = performance.now() - t0;
    console.log(`netns acquire: warm ${timings.warmMs.toFixed(2)} ms, cold ${timings.coldMs.toFixed(1)} ms`);
    expect(timings.warmMs).toBeLessThan(5);
    expect(timings.warmMs * 5).toBeLessThan(timings.coldMs);
    expect(leases.a.appAddr).not.toBe(leases.b.appAddr);
    expect(leases.a.hostIf.length).toBeLessThanOrEqual(15);
  });

  it('two sandboxed apps listen on 0.0.0.0:8080 at once, each at its own address', async () => {
    leases.fast = await pool.acquire({ bandwidthMbit: 1000 });
    await Promise.all([startApp(leases.a!, 'A'), startApp(leases.b!, 'B'), startApp(leases.fast, 'F')]);
    expect((await request('GET', `http://${leases.a!.appAddr}:8080/`)).body.toString()).toBe('A');
    expect((await request('GET', `http://${leases.b!.appAddr}:8080/`)).body.toString()).toBe('B');
    expect((await request('GET', `http://${leases.fast.appAddr}:8080/`)).body.toString()).toBe('F');
  });

  it('an instance reaches the outside through NAT, and nothing else', async () => {
    const a = leases.a!;
    const b = leases.b!;
    const from = async (lease: NetnsLease, host: string, port: number, read = false): Promise<string> =>
      (await request('GET', `http://${lease.appAddr}:8080/connect?host=${host}&port=${port}${read ? '&read' : ''}`)).body.toString();
    const t0 = performance.now();
    const results = await Promise.all([
      from(a, outside!.addr, outside!.port, true), // egress, masqueraded behind the host's address on that link
      from(a, b.appAddr, 8080), // another instance
      from(b, a.appAddr, 8080),
      from(a, a.hostAddr, hostPort), // the host, through its own veth address
      from(a, b.hostAddr, hostPort),
      from(a, outside!.hostAddr, hostPort), // the host, through another of its addresses
      from(a, '169.254.169.254', 80), // cloud metadata
    ]);
    expect(results).toEqual([`data:${outside!.hostAddr}`, 'timeout', 'timeout', 'timeout', 'timeout', 'timeout', 'timeout']);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('shapes both directions at the lease bandwidth', async () => {
    const a = leases.a!;
    const predictedMs = ((BIG * 8) / (64 * 1_000_000)) * 1000;
    const down = await request('GET', `http://${a.appAddr}:8080/big`);
    expect(down.body.length).toBe(BIG);
    const up = await request('POST', `http://${a.appAddr}:8080/sink`, Buffer.alloc(BIG, 98));
    expect(up.body.toString()).toBe(String(BIG));
    const fast = await request('GET', `http://${leases.fast!.appAddr}:8080/big`);
    console.log(
      `4 MiB at 64 Mbit (predicted ${predictedMs.toFixed(0)} ms): from app ${down.ms.toFixed(0)} ms, to app ${up.ms.toFixed(0)} ms; at 1000 Mbit ${fast.ms.toFixed(0)} ms`,
    );
    for (const ms of [down.ms, up.ms]) {
      expect(ms).toBeGreaterThanOrEqual(predictedMs * 0.7);
      expect(ms).toBeLessThan(predictedMs * 3);
    }
    expect(fast.ms).toBeLessThan(down.ms / 3);
  });

  it('release destroys the namespace, and close() leaves nothing behind', async () => {
    await killAll();
    const b = leases.b!;
    await pool.release(b);
    const listed = await runCommand('ip', ['netns', 'list']);
    expect(listed.stdout).not.toMatch(new RegExp(`^${b.name} `, 'm'));
    await pool.close();
    expect(await networkLeftovers('cht')).toEqual([]);
  });
});

async function nftTables(): Promise<string[]> {
  const r = await runCommand('nft', ['list', 'tables']);
  return r.stdout.split('\n').filter((l) => l.startsWith('table '));
}

describe.skipIf(!ready)('namespace pool with the iptables fallback (prefix chu)', () => {
  let outside: Outside | undefined;
  let pool: NetnsPool;
  let tablesBefore: string[] = [];

  beforeAll(async () => {
    // iptables-nft creates its tables (ip filter, ip nat, ip6 filter) on first use and keeps them,
    // empty, after our rules are gone: the test removes the ones it caused, if nothing else uses them
    tablesBefore = await nftTables();
    outside = await setUpOutside(OUTSIDE);
    pool = createNetnsPool({ prefix: 'chu', subnet: '198.18.215.0/24', warm: 0, nat: 'iptables' });
    await pool.start();
  });

  afterAll(async () => {
    await killAll();
    await pool?.close();
    await outside?.close();
    for (const t of await nftTables()) {
      if (tablesBefore.includes(t)) continue;
      const listed = await runCommand('nft', ['list', ...t.split(' ')]);
      const hasRules = listed.stdout.split('\n').some((l) => l.trim() && !/^(table|chain|type|\}|$)/.test(l.trim()));
      if (!hasRules) await runCommand('nft', ['delete', ...t.split(' ')]);
    }
  });

  it('keeps instances apart and NATs outbound traffic, then removes its chains', async () => {
    const [a, b] = await Promise.all([pool.acquire({ bandwidthMbit: 100 }), pool.acquire({ bandwidthMbit: 100 })]);
    startProcess(b.enterArgv([process.execPath, '-e', `require('net').createServer((s) => s.end('b')).listen(8080, '0.0.0.0')`]));
    await waitForPort(b.appAddr, 8080);
    const connect = (host: string, port: number): string[] =>
      a.enterArgv([
        process.execPath,
        '-e',
        `const s = require('net').connect(${port}, '${host}'); let d = '';
         const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 400);
         s.on('data', (c) => (d += c)); s.on('end', () => { clearTimeout(t); console.log('data:' + d); });
         s.on('error', (e) => { clearTimeout(t); console.log('error:' + e.code); });`,
      ]);
    const [toB, toOutside] = await Promise.all([runOnce(connect(b.appAddr, 8080)), runOnce(connect(outside!.addr, outside!.port))]);
    expect(toB).toBe('timeout');
    expect(toOutside).toBe(`data:${outside!.hostAddr}`);
    await killAll();
    await pool.close();
    expect(await networkLeftovers('chu')).toEqual([]);
  });
});

// DNS on a private address (this host's resolver is on 10.x; a homelab's is its router on
// 192.168.x): with both backends, a namespace reaches a test-made "nameserver" on port 53 and
// nothing else of its private range. Every address is a test-made namespace's.
describe.skipIf(!ready).each(['nftables', 'iptables'] as const)('private ranges dropped but DNS to the nameservers (%s)', (nat) => {
  const n = nat === 'nftables' ? 0 : 1;
  let pool: NetnsPool;
  let dns: Outside | undefined;
  let tablesBefore: string[] = [];

  beforeAll(async () => {
    tablesBefore = await nftTables();
    dns = await setUpOutside({ ns: `chdns${n}`, ifName: `chdns${n}`, net24: `192.168.${250 + n}`, port: 53 });
    pool = createNetnsPool({ prefix: `chd${n}`, subnet: `198.18.${217 + n}.0/24`, warm: 0, nat, nameservers: [dns.addr] });
    await pool.start();
  });

  afterAll(async () => {
    await killAll();
    await pool?.close();
    await dns?.close();
    // as above: the empty tables iptables-nft made on first use go too
    for (const t of await nftTables()) {
      if (tablesBefore.includes(t)) continue;
      const listed = await runCommand('nft', ['list', ...t.split(' ')]);
      const hasRules = listed.stdout.split('\n').some((l) => l.trim() && !/^(table|chain|type|\}|$)/.test(l.trim()));
      if (!hasRules) await runCommand('nft', ['delete', ...t.split(' ')]);
    }
  });

  it('port 53 of a nameserver answers; another port of it and of its range is dropped', async () => {
    const lease = await pool.acquire({ bandwidthMbit: 100 });
    const connect = (host: string, port: number): string[] =>
      lease.enterArgv([
        process.execPath,
        '-e',
        `const s = require('net').connect(${port}, '${host}'); let d = '';
         const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 400);
         s.on('data', (c) => (d += c)); s.on('end', () => { clearTimeout(t); console.log('data:' + d); });
         s.on('error', (e) => { clearTimeout(t); console.log('error:' + e.code); });`,
      ]);
    // nothing listens on 9000: reachable would be ECONNREFUSED, dropped is a timeout
    const [toDns, toOtherPort] = await Promise.all([runOnce(connect(dns!.addr, 53)), runOnce(connect(dns!.addr, 9000))]);
    expect(toDns).toBe(`data:${dns!.hostAddr}`);
    expect(toOtherPort).toBe('timeout');
    await pool.release(lease);
  });
});
