// Tenant isolation, tested from inside a deployed probe app: service A tries to get
// at service B's image, env, logs and /tmp, to signal B's processes, to reach B's instance and the
// admin API over the network, and to read the master key and the database. Every network target
// is an address of this test's own instances and namespaces, or loopback inside them.
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { FIXTURES, instancePids, startTestServer, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available;

describe('tenant isolation prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, iproute2 and a NAT backend are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
  });
});

interface ProbeInfo {
  service: string;
  boot: string;
  pid: number;
  uid: number[];
  processes: Array<{ pid: number; comm: string | null }>;
  addresses: Array<{ name: string; address: string }>;
  gateway: string;
}

/** B's host pids: bwrap's monitor (what the API reports) and everything under it */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const t of fs.readdirSync(`/proc/${out[i]}/task`)) {
        out.push(...fs.readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      }
    } catch {
      // the process or thread ended meanwhile
    }
  }
  return out;
}

describe.skipIf(!ready)('one service against another', () => {
  let server: TestServer;
  let dataDir: string;
  let imageB: string;
  let hostListener: net.Server;
  let hostPort = 0;
  const secret = `b-secret-${Math.random().toString(36).slice(2)}`;
  const deployments: Record<'a' | 'b', string> = { a: '', b: '' };
  let a: ProbeInfo;
  let b: ProbeInfo;

  const fromA = async (p: string) => {
    const r = await server.app('a', p);
    expect(r.status, `a ${p}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.json;
  };
  const readFromA = (p: string) => fromA(`/read?path=${encodeURIComponent(p)}`);
  const connectFromA = async (host: string, port: number) => (await fromA(`/connect?host=${host}&port=${port}&ms=400`)).result as string;

  beforeAll(async () => {
    // outside /tmp, so "absent" is the sandbox's doing and not the private /tmp hiding it
    dataDir = fs.mkdtempSync('/var/tmp/cellhost-tenants-');
    server = await startTestServer({ dataDir, ownsDataDir: true });
    hostListener = net.createServer((s) => s.end('host'));
    await new Promise<void>((r) => hostListener.listen(0, '0.0.0.0', r));
    hostPort = (hostListener.address() as AddressInfo).port;
    // B's image carries a file of its own, so "A cannot see B's image" means something
    imageB = fs.mkdtempSync('/var/tmp/cellhost-tenant-b-');
    fs.copyFileSync(path.join(FIXTURES, 'node-probe', 'app.js'), path.join(imageB, 'app.js'));
    fs.writeFileSync(path.join(imageB, 'b-only.txt'), secret);

    await server.api('POST', '/api/v1/services', { name: 'b', runtime: 'node', startCommand: 'node app.js', idleTimeoutS: 60 });
    expect((await server.api('PUT', '/api/v1/services/b/env/SECRET_B', { value: secret })).status).toBe(200);
    for (const [name, dir] of [
      ['a', path.join(FIXTURES, 'node-probe')],
      ['b', imageB],
    ] as const) {
      const dep = await server.deploy(name, dir, { startCommand: 'node app.js', idleTimeoutS: 60 });
      expect(dep.status, JSON.stringify(dep)).toBe('live');
      deployments[name] = dep.id;
    }
    [a, b] = await Promise.all([fromA('/'), server.app('b', '/').then((r) => r.json as ProbeInfo)]);
    // B has a secret in its env, a file in its /tmp and lines in its log
    expect((await server.app('b', '/env')).json.SECRET_B).toBe(secret);
    expect((await server.app('b', `/write?path=/tmp/b-secret&data=${secret}`)).json).toEqual({ ok: true });
  });

  afterAll(async () => {
    if (server) await server.close();
    else if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    hostListener?.close();
    if (imageB) fs.rmSync(imageB, { recursive: true, force: true });
  });

  it('each service has its own uid', async () => {
    const [svcA, svcB] = await Promise.all([server.api('GET', '/api/v1/services/a'), server.api('GET', '/api/v1/services/b')]);
    expect(a.uid[0]).toBe(svcA.body.uid);
    expect(b.uid[0]).toBe(svcB.body.uid);
    expect(a.uid[0]).not.toBe(b.uid[0]);
    expect(a.uid[0]).not.toBe(0);
  });

  it("cannot read B's image", async () => {
    const onHost = path.join(dataDir, 'images', deployments.b);
    expect(fs.readFileSync(path.join(onHost, 'b-only.txt'), 'utf8')).toBe(secret);
    expect(await readFromA(onHost)).toEqual({ ok: false, code: 'ENOENT' });
    expect(await readFromA(path.join(dataDir, 'images'))).toEqual({ ok: false, code: 'ENOENT' });
    expect((await readFromA('/app')).value).toEqual(['app.js']);
  });

  it("cannot read B's env, neither in its own env nor through /proc", async () => {
    const env = (await fromA('/env')) as Record<string, string>;
    expect(env.SECRET_B).toBeUndefined();
    expect(Object.values(env)).not.toContain(secret);
    // nothing of the platform's own environment either
    expect(Object.values(env)).not.toContain(TOKEN);
    // the platform's variables (the service's own cron secret among them) and a sane base; PWD, SHLVL
    // and _ are bash's, which runs the start command
    expect(Object.keys(env).sort()).toEqual(['CELLHOST_CRON_SECRET', 'CELLHOST_DEPLOYMENT', 'CELLHOST_MEMORY_MB', 'CELLHOST_SERVICE', 'HOME', 'LANG', 'PATH', 'PORT', 'PWD', 'SHLVL', 'TMPDIR', '_']);
    const search = await fromA(`/environ?needle=${secret}`);
    expect(search.found).toEqual([]);
    const bApp = processTree((await instancePids(server, 'b'))[0]!);
    for (const pid of bApp) expect(await readFromA(`/proc/${pid}/environ`), `B's host pid ${pid}`).toEqual({ ok: false, code: 'ENOENT' });
  });

  it("cannot read B's logs: the data dir is absent", async () => {
    await waitFor(async () => JSON.stringify((await server.api('GET', '/api/v1/services/b/logs')).body).includes(`probe b ${b.boot}`), { what: "B's start line in its logs" });
    expect(fs.existsSync(path.join(dataDir, 'logs')) || fs.existsSync(path.join(dataDir, 'cellhost.db'))).toBe(true);
    for (const p of [dataDir, path.join(dataDir, 'logs'), '/var/log', '/run']) expect(await readFromA(p), p).toEqual({ ok: false, code: 'ENOENT' });
  });

  it("cannot read B's /tmp", async () => {
    expect((await server.app('b', '/read?path=/tmp/b-secret')).json).toEqual({ ok: true, value: secret });
    expect(await readFromA('/tmp/b-secret')).toEqual({ ok: false, code: 'ENOENT' });
    expect((await readFromA('/tmp')).value).not.toContain('b-secret');
  });

  it("cannot see or signal B's processes", async () => {
    const comms = new Set(a.processes.map((p) => p.comm));
    expect([...comms].every((c) => c === 'bwrap' || c === 'node' || c === 'bash'), [...comms].join(',')).toBe(true);
    expect(a.processes.length).toBeLessThanOrEqual(4);
    const bHost = processTree((await instancePids(server, 'b'))[0]!);
    for (const pid of bHost) {
      const probe = await fromA(`/kill?pid=${pid}&signal=0`);
      expect(probe.ok, `kill(${pid}, 0)`).toBe(false);
      expect(['ESRCH', 'EPERM']).toContain(probe.code);
      const kill = await fromA(`/kill?pid=${pid}&signal=SIGKILL`);
      expect(kill.ok, `kill(${pid}, SIGKILL)`).toBe(false);
    }
    // B is the same instance as before, untouched
    expect((await server.app('b', '/')).json.boot).toBe(b.boot);
  });

  it("cannot reach B's instance or the admin API over the network", async () => {
    const bAddr = b.addresses.find((x) => x.name !== 'lo')!.address;
    const bPort = (await server.api('GET', '/api/v1/services/b')).body.port as number;
    const adminPort = Number(new URL(server.adminUrl).port);
    const results = await Promise.all([
      connectFromA(bAddr, bPort),
      connectFromA(b.gateway, bPort),
      connectFromA(a.gateway, adminPort),
      connectFromA(b.gateway, adminPort),
      connectFromA(a.gateway, hostPort),
    ]);
    expect(results).toEqual(['timeout', 'timeout', 'timeout', 'timeout', 'timeout']);
    // the host's loopback is not A's: the admin listener on 127.0.0.1 is out of reach
    expect(await connectFromA('127.0.0.1', adminPort)).toBe('error:ECONNREFUSED');
    // and B does answer on that address, from the host
    const direct = await new Promise<string>((resolve) => {
      const s = net.connect({ host: bAddr, port: bPort }, () => (s.destroy(), resolve('connected')));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
    });
    expect(direct).toBe('connected');
  });

  it('cannot read the master key or the database', async () => {
    for (const file of ['master.key', 'cellhost.db']) {
      const onHost = path.join(dataDir, file);
      expect(fs.existsSync(onHost), onHost).toBe(true);
      expect(await readFromA(onHost), onHost).toEqual({ ok: false, code: 'ENOENT' });
    }
  });
});
