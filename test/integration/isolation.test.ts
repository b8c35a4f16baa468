// The sandbox end to end, through the real platform: probe apps deployed as services
// report what they see from inside (uid, writable paths, /proc, network) and the test checks the
// host's view of the same instances. Network targets are the instances' own addresses, the host's
// veth ends, loopback inside the namespace, and an "outside" namespace + veth this file builds
// (198.18.222.0/30, the benchmarking range), so no packet leaves the machine.
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { existingCgroupParents } from '../helpers/cgroups.ts';
import { networkLeftovers, processTree } from '../helpers/host.ts';
import { setUpOutside, type Outside } from '../helpers/outside.ts';
import { FIXTURES, instancePids, isAlive, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available;
const PROBE = path.join(FIXTURES, 'node-probe');
// the fake internet: a namespace behind its own veth
const OUTSIDE = { ns: 'chio-out', ifName: 'chio0', net24: '198.18.222' };
const BIG = 4 * 1024 * 1024;

describe('isolation prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, iproute2 and a NAT backend are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
  });
});

function statusOf(pid: number): { uid: number[]; nspid: number[]; name: string } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => new RegExp(`^${k}:\\s+(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { uid: field('Uid').split(/\s+/).map(Number), nspid: field('NSpid').split(/\s+/).map(Number), name: field('Name') };
}

/** the platform's host-side leftovers with these names: the same checks a crash restart relies on */
async function leftovers(iso: Readonly<Record<string, string>>, uids: number[]): Promise<string[]> {
  const found: string[] = [];
  const ns = iso.CELLHOST_NETNS_PREFIX!;
  const cg = iso.CELLHOST_CGROUP_PREFIX!;
  const runDir = iso.CELLHOST_HOST_RUN_DIR!;
  found.push(...(await networkLeftovers(ns)));
  for (const dir of await existingCgroupParents(cg)) found.push(`cgroup ${dir}`);
  if (fs.existsSync(runDir)) found.push(`host run dir ${runDir}`);
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp?.startsWith(runDir + '/') || mp === runDir) found.push(`mount ${mp}`);
  }
  // zombies are not counted: sandbox inits orphaned to this machine's PID 1 wait there to be reaped
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const { uid } = statusOf(Number(name));
      if (uids.includes(uid[0]!) && isAlive(Number(name))) found.push(`process ${name} (${statusOf(Number(name)).name}) of uid ${uid[0]}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe.skipIf(!ready)('the sandbox through the platform', () => {
  let server: TestServer;
  let dataDir: string;
  let stopped = false;
  let outside: Outside | undefined;
  let hostListener: net.Server;
  let hostPort = 0;
  const deployments: Record<string, string> = {};
  const uids: number[] = [];

  const probe = async (service: string, p = '/') => {
    const r = await server.app(service, p);
    expect(r.status, `${service} ${p}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.json;
  };
  const connectFrom = async (service: string, host: string, port: number, read = false): Promise<string> =>
    (await probe(service, `/connect?host=${host}&port=${port}&ms=400${read ? '&read' : ''}`)).result;

  beforeAll(async () => {
    // outside /tmp, so "the data dir is absent" is not just the private /tmp hiding it
    dataDir = fs.mkdtempSync('/var/tmp/cellhost-isolation-');
    // uids no other test server uses at the same time: the leftover check looks for processes by uid
    const firstUid = 2_010_000_000 + (process.pid % 1_000_000) * 16;
    server = await startTestServer({ dataDir, ownsDataDir: true, env: { CELLHOST_UID_RANGE: `${firstUid}-${firstUid + 15}` } });
    // stands in for any service on the host (the admin listener may be configured on 0.0.0.0)
    hostListener = net.createServer((s) => s.end('host'));
    await new Promise<void>((r) => hostListener.listen(0, '0.0.0.0', r));
    hostPort = (hostListener.address() as AddressInfo).port;
    outside = await setUpOutside(OUTSIDE);
    for (const [name, settings] of [
      ['a', { startCommand: 'node app.js 8080', idleTimeoutS: 30 }],
      ['b', { startCommand: 'node app.js 8080', idleTimeoutS: 30 }],
      ['bw128', { startCommand: 'node app.js', memoryMb: 128, idleTimeoutS: 30 }],
      ['bw1769', { startCommand: 'node app.js', memoryMb: 1769, idleTimeoutS: 30 }],
    ] as const) {
      const dep = await server.deploy(name, PROBE, settings);
      expect(dep.status, JSON.stringify(dep)).toBe('live');
      deployments[name] = dep.id;
      uids.push((await server.api('GET', `/api/v1/services/${name}`)).body.uid);
    }
  });

  afterAll(async () => {
    if (server && !stopped) await server.close();
    else if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    await outside?.close();
    hostListener?.close();
  });

  it('the app runs as its service uid, inside and on the host', async () => {
    const svc = (await server.api('GET', '/api/v1/services/a')).body;
    expect(svc.uid).toBeGreaterThan(0);
    const inside = await probe('a');
    expect(inside.uid).toEqual([svc.uid, svc.uid, svc.uid, svc.uid]);
    expect(inside.gid).toEqual([svc.uid, svc.uid, svc.uid, svc.uid]);
    const [outer] = await instancePids(server, 'a');
    expect(statusOf(outer!).name).toBe('bwrap');
    const tree = processTree(outer!);
    // bwrap's monitor, bwrap's init (pid 1 inside), the app (bash execs node)
    expect(tree.length).toBeGreaterThanOrEqual(3);
    for (const pid of tree) expect(statusOf(pid).uid, `host pid ${pid}`).toEqual([svc.uid, svc.uid, svc.uid, svc.uid]);
    const app = tree.map((pid) => ({ pid, ...statusOf(pid) })).find((s) => s.nspid.length === 2 && s.nspid[1] === inside.pid);
    expect(app?.name).toBe('node');
    expect(uids[0]).not.toBe(uids[1]);
  });

  it('everything is read-only but /tmp', async () => {
    for (const p of ['/app/x', '/usr/x', '/etc/x', '/x', '/dev/x']) {
      const r = await probe('a', `/write?path=${encodeURIComponent(p)}`);
      expect(r.ok, p).toBe(false);
      expect(['EROFS', 'EACCES'], `${p}: ${r.code}`).toContain(r.code);
    }
    expect(await probe('a', '/write?path=/tmp/x&data=kept')).toEqual({ ok: true });
    expect(await probe('a', '/read?path=/tmp/x')).toEqual({ ok: true, value: 'kept' });
  });

  it('the platform, other images and /root are absent; /proc shows only the sandbox', async () => {
    const onHost = [dataDir, path.join(dataDir, 'images', deployments.b!), path.join(dataDir, 'images', deployments.a!), '/root'];
    for (const p of onHost) expect(fs.existsSync(p), `${p} exists on the host`).toBe(true);
    for (const p of [...onHost, '/home', '/var', '/run', '/sys']) {
      expect(await probe('a', `/read?path=${encodeURIComponent(p)}`), p).toEqual({ ok: false, code: 'ENOENT' });
    }
    const { processes, pid } = await probe('a');
    // bwrap's init, the app (and a bash that did not exec): a handful, never the host's
    expect(processes.length).toBeLessThanOrEqual(4);
    expect(processes.map((p: { pid: number }) => p.pid)).toContain(pid);
    expect(processes.map((p: { comm: string }) => p.comm)).not.toContain('vitest');
    expect(Math.max(...processes.map((p: { pid: number }) => p.pid))).toBeLessThan(100);
  });

  it('/tmp is gone after the instance restarts', async () => {
    const before = await probe('a', '/read?path=/tmp/x');
    expect(before.ok).toBe(true);
    const boot = (await probe('a')).boot;
    const [pid] = await instancePids(server, 'a');
    await server.api('PATCH', '/api/v1/services/a', { idleTimeoutS: 0.3 });
    await waitFor(() => !isAlive(pid!), { timeoutMs: 5000, what: 'a to scale to zero' });
    await waitFor(async () => (await server.api('GET', '/api/v1/services/a')).body.instances.length === 0, { what: 'no instance of a' });
    await server.api('PATCH', '/api/v1/services/a', { idleTimeoutS: 30 });
    const again = await probe('a');
    expect(again.boot).not.toBe(boot);
    expect(await probe('a', '/read?path=/tmp/x')).toEqual({ ok: false, code: 'ENOENT' });
  });

  it('two services listening on 0.0.0.0:8080 serve at the same time', async () => {
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => server.app(i % 2 ? 'b' : 'a')));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(replies.map((r) => r.json.service)).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    const [a, b] = await Promise.all([probe('a'), probe('b')]);
    const [pa, pb] = [(await instancePids(server, 'a'))[0]!, (await instancePids(server, 'b'))[0]!];
    expect(isAlive(pa) && isAlive(pb)).toBe(true);
    const eth = (r: any) => r.addresses.find((x: { name: string }) => x.name !== 'lo')?.address;
    expect(eth(a)).toBeTruthy();
    expect(eth(a)).not.toBe(eth(b));
  });

  it('Flask under gunicorn with the seed start command serves through the router', async () => {
    const dep = await server.deploy('flask', path.join(FIXTURES, 'python-gunicorn'), { runtime: 'python', startCommand: 'gunicorn -w 1 -b :8080 app:app', idleTimeoutS: 30 });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    uids.push((await server.api('GET', '/api/v1/services/flask')).body.uid);
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toContain('pip install -r requirements.txt');
    expect(log).toMatch(/Requirement already satisfied: flask/i);
    const r = await server.app('flask');
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(r.json).toMatchObject({ hello: 'gunicorn', service: 'flask', uid: uids[uids.length - 1] });
    expect(r.json.venv).toBe('/app/.venv');
  });

  it('egress is NATed out; other instances, the host and the admin listener are not reachable', async () => {
    const [a, b] = await Promise.all([probe('a'), probe('b')]);
    const bAddr = b.addresses.find((x: { name: string }) => x.name !== 'lo').address;
    const adminPort = Number(new URL(server.adminUrl).port);
    const routerPort = Number(new URL(server.routerUrl).port);
    const t0 = performance.now();
    const results = await Promise.all([
      connectFrom('a', outside!.addr, outside!.port, true), // the outside, masqueraded behind the host's address on that link
      connectFrom('a', bAddr, 8080), // another instance
      connectFrom('b', a.addresses.find((x: { name: string }) => x.name !== 'lo').address, 8080),
      connectFrom('a', a.gateway, adminPort), // the admin listener through the instance's own gateway
      connectFrom('a', b.gateway, adminPort),
      connectFrom('a', a.gateway, hostPort), // any host service, through each host address in reach
      connectFrom('a', b.gateway, hostPort),
      connectFrom('a', outside!.hostAddr, hostPort),
      connectFrom('a', a.gateway, routerPort),
      connectFrom('a', '169.254.169.254', 80), // cloud metadata
    ]);
    expect(results[0]).toBe(`data:${outside!.hostAddr}`);
    for (const r of results.slice(1)) expect(r).toBe('timeout');
    // loopback inside is the namespace's own: nothing of the host listens there
    expect(await connectFrom('a', '127.0.0.1', adminPort)).toBe('error:ECONNREFUSED');
    expect(await connectFrom('a', '127.0.0.1', hostPort)).toBe('error:ECONNREFUSED');
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('bandwidth follows memory: 64 Mbit/s at 128 MB, 1000 Mbit/s at 1769 MB', async () => {
    const timed = async (service: string) => {
      const t0 = performance.now();
      const r = await server.app(service, '/big');
      expect(r.status).toBe(200);
      expect(Buffer.byteLength(r.text)).toBe(BIG);
      return performance.now() - t0;
    };
    // warm both first: the timed requests measure the transfer, not a cold start
    await Promise.all([probe('bw128'), probe('bw1769')]);
    const predictedMs = ((BIG * 8) / 64e6) * 1000;
    const slow = await timed('bw128');
    // best of five: at 1000 Mbit/s the transfer (~34 ms) is within the noise of a busy 2-core host
    let fast = Infinity;
    for (let i = 0; i < 5; i++) fast = Math.min(fast, await timed('bw1769'));
    console.log(`4 MiB through the router: 128 MB service ${slow.toFixed(0)} ms (rule: ${predictedMs.toFixed(0)} ms), 1769 MB service ${fast.toFixed(0)} ms`);
    expect(slow).toBeGreaterThanOrEqual(predictedMs * 0.7);
    expect(slow).toBeLessThan(predictedMs * 4);
    expect(fast).toBeLessThan(slow / 2.5);
  });

  it('nothing remains on the host after the server stops', async () => {
    const pids = (await Promise.all(['a', 'b', 'bw128', 'bw1769', 'flask'].map((s) => instancePids(server, s)))).flat();
    expect(pids.length).toBeGreaterThan(0);
    const iso = server.isolation;
    // the names the check looks for are really in use while it runs
    expect(await leftovers(iso, uids)).not.toEqual([]);
    await server.stop();
    stopped = true;
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(await leftovers(iso, uids)).toEqual([]);
  });
});
