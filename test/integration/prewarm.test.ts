// Prewarmed instances: a service scaled to zero keeps one instance whose app already started,
// frozen by the cgroup freezer, within CELLHOST_PREWARM_MB; its next request is a thaw. Real
// apps, real cgroups: the freezer's own state, the processes, the service's log and usage.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { cgroupParentDirs, leftoverCgroups } from '../helpers/cgroups.ts';
import { adminApi, FIXTURES, isAlive, requestRouter, startTestServer, tempDir, waitFor, type TestServer } from '../helpers/server.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const ready = process.getuid?.() === 0 && fs.existsSync('/sys/fs/cgroup/freezer');
if (!ready && process.env.CI === 'true') throw new Error('prewarm tests need root and the cgroup freezer in CI');

const HELLO = path.join(FIXTURES, 'node-hello');
const settings = { startCommand: 'node app.js', buildCommand: 'true' };

type Api = TestServer['api'];

async function view(api: Api, service: string): Promise<any> {
  return (await api('GET', `/api/v1/services/${service}`)).body;
}

/** the service's instance kept frozen as its prewarmed instance, if any */
async function keptOf(api: Api, service: string): Promise<any> {
  return (await view(api, service)).instances.find((i: any) => i.prewarm?.kept);
}

async function entries(api: Api, service: string, query = ''): Promise<any[]> {
  return (await api('GET', `/api/v1/services/${service}/logs?limit=5000${query}`)).body.entries;
}

/** the freezer's word for the instance's group: FROZEN, THAWED, or null when the group is gone */
async function freezerState(prefix: string, instanceId: string): Promise<string | null> {
  for (const dir of await cgroupParentDirs(prefix)) {
    const v1 = path.join(dir, instanceId, 'freezer.state');
    if (fs.existsSync(v1)) return fs.readFileSync(v1, 'utf8').trim();
    const v2 = path.join(dir, instanceId, 'cgroup.events');
    if (fs.existsSync(v2)) return /^frozen 1$/m.test(fs.readFileSync(v2, 'utf8')) ? 'FROZEN' : 'THAWED';
  }
  return null;
}

/** pids in the instance's group (its app, the sandbox around it) */
async function groupPids(prefix: string, instanceId: string): Promise<number[]> {
  for (const dir of await cgroupParentDirs(prefix)) {
    const file = path.join(dir, instanceId, 'cgroup.procs');
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  }
  return [];
}

const cpuTicks = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b, 0);
const appPid = (pids: number[]) => pids.find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('node\0'));

describe.skipIf(!ready)('prewarmed instances', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_PREWARM_MB: '512' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a deploy starts the app once, before any request, and keeps it frozen until the request thaws it', async () => {
    const dep = await server.deploy('pw-a', HELLO, { ...settings, idleTimeoutS: 1 });
    expect(dep.status).toBe('live');
    const inst = await waitFor(() => keptOf(server.api, 'pw-a'), { what: 'a prewarmed instance' });
    expect(inst.prewarm).toMatchObject({ reason: 'deploy', kept: true, startedAhead: true });
    expect(inst.prewarm.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(await freezerState(server.cgroupPrefix, inst.id)).toBe('FROZEN');
    // frozen: no CPU at all while it waits
    const pid = appPid(await groupPids(server.cgroupPrefix, inst.id))!;
    const ticks = cpuTicks(pid);
    await new Promise((r) => setTimeout(r, 600));
    expect(cpuTicks(pid)).toBe(ticks);
    expect(await freezerState(server.cgroupPrefix, inst.id)).toBe('FROZEN');

    const before = Date.now();
    const res = await server.app('pw-a', '/');
    expect(res.status).toBe(200);
    const served = (await view(server.api, 'pw-a')).instances;
    expect(served.map((i: any) => i.id)).toEqual([inst.id]);
    expect(served[0].prewarm).toMatchObject({ reason: 'deploy', kept: false });
    expect(await freezerState(server.cgroupPrefix, inst.id)).toBe('THAWED');

    // its start ran once, before the request, and the log says when
    const started = await waitFor(async () => {
      const lines = (await entries(server.api, 'pw-a', '&stream=stdout')).filter((e) => e.instanceId === inst.id && e.message.startsWith('listening on'));
      return lines.length ? lines : null;
    });
    expect(started).toHaveLength(1);
    expect(Date.parse(started[0].time)).toBeLessThan(before);
    // one start, not a start check and then another start ahead: the app said it listened once in
    // the service's log (any instance), and once in the deployment's log (its start check)
    const allStarts = (await entries(server.api, 'pw-a', '&stream=stdout')).filter((e) => e.message.startsWith('listening on'));
    expect(allStarts.map((e) => e.instanceId)).toEqual([inst.id]);
    const buildLog = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(buildLog.match(/listening on \d/g)).toHaveLength(1);
    expect(buildLog).toContain('a prewarmed instance holding');
    const events = await waitFor(async () => {
      const all = await entries(server.api, 'pw-a', '&stream=event');
      return all.some((e) => e.event === 'thawed') ? all : null;
    });
    expect(events.filter((e) => e.event === 'cold_start')).toEqual([]);
    const prewarmed = events.find((e) => e.event === 'prewarmed');
    expect(prewarmed.instanceId).toBe(inst.id);
    expect(prewarmed.fields).toMatchObject({ reason: 'deploy' });
    expect(Date.parse(prewarmed.fields.startedAt)).toBeLessThan(before);
    const thawed = events.find((e) => e.event === 'thawed');
    expect(thawed.instanceId).toBe(inst.id);
    expect(thawed.fields).toMatchObject({ prewarmed: true, reason: 'deploy' });
    expect(thawed.message).toContain('before this request');
    // counted apart from cold starts, and its frozen wait billed nothing
    const usage = (await server.api('GET', '/api/v1/usage?from=1h&service=pw-a')).body.total;
    expect(usage).toMatchObject({ coldStarts: 0, prewarmedStarts: 1, requests: 1 });
    expect(usage.billedMs).toBeLessThan(1000);

    // at its idle timeout the same instance is frozen and kept again, not stopped
    const again = await waitFor(() => keptOf(server.api, 'pw-a'), { what: 'kept again at the idle timeout' });
    expect(again.id).toBe(inst.id);
    expect(again.prewarm.reason).toBe('idle');
    expect(await freezerState(server.cgroupPrefix, inst.id)).toBe('FROZEN');
    expect(isAlive(pid)).toBe(true);
  });

  it('an env change and a deploy each replace the prewarmed instance: its first request sees the new version', async () => {
    const old = await waitFor(() => keptOf(server.api, 'pw-a'));
    const oldPids = await groupPids(server.cgroupPrefix, old.id);
    expect((await server.api('PUT', '/api/v1/services/pw-a/env/GREETING', { value: 'changed' })).status).toBeLessThan(300);
    const changed = await waitFor(async () => {
      const k = await keptOf(server.api, 'pw-a');
      return k && k.id !== old.id ? k : null;
    }, { what: 'a prewarmed instance of the new environment' });
    expect(changed.prewarm.reason).toBe('change');
    await waitFor(() => oldPids.every((p) => !isAlive(p)), { what: 'the old prewarmed instance stopped' });
    const res = await server.app('pw-a', '/');
    expect(res.json.env).toBe('changed');
    expect((await view(server.api, 'pw-a')).instances.map((i: any) => i.id)).toEqual([changed.id]);

    const dep = await server.deploy('pw-a', HELLO);
    const redeployed = await waitFor(async () => {
      const k = await keptOf(server.api, 'pw-a');
      return k && k.deploymentId === dep.id ? k : null;
    }, { what: 'a prewarmed instance of the new deployment' });
    expect(redeployed.prewarm.reason).toBe('deploy');
    await waitFor(async () => (await view(server.api, 'pw-a')).instances.length === 1, { what: 'the old version gone' });
    const after = await server.app('pw-a', '/');
    expect(after.json.env).toBe('changed');
    expect((await view(server.api, 'pw-a')).instances.map((i: any) => i.id)).toEqual([redeployed.id]);
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toMatch(/Starting the app once before it goes live[\s\S]*a prewarmed instance holding \d+ MB[\s\S]*is live/);
  });

  it('prewarm=false: nothing is kept, and the setting stops the one there', async () => {
    await waitFor(() => keptOf(server.api, 'pw-a'), { what: 'kept again' });
    expect((await server.api('PATCH', '/api/v1/services/pw-a', { prewarm: false })).status).toBe(200);
    await waitFor(async () => (await view(server.api, 'pw-a')).instances.length === 0, { what: 'the prewarmed instance stopped' });
    const events = await entries(server.api, 'pw-a', '&stream=event');
    expect(events.some((e) => e.event === 'prewarm_evicted' && e.fields.why === 'off')).toBe(true);
    expect((await server.app('pw-a', '/')).status).toBe(200);
    expect((await entries(server.api, 'pw-a', '&stream=event')).at(-1)?.event).not.toBe('thawed');
  });

  it('an app killed while frozen: the request that thaws it goes to a fresh instance and is answered', async () => {
    await server.deploy('pw-killed', HELLO, settings);
    const inst = await waitFor(() => keptOf(server.api, 'pw-killed'), { what: 'a prewarmed instance' });
    const pid = appPid(await groupPids(server.cgroupPrefix, inst.id))!;
    // a frozen process keeps the signal pending: it dies the moment it is thawed
    process.kill(pid, 'SIGKILL');
    const res = await server.app('pw-killed', '/');
    expect(res.status).toBe(200);
    const now = (await view(server.api, 'pw-killed')).instances;
    expect(now.map((i: any) => i.id)).not.toContain(inst.id);
    const events = await waitFor(async () => {
      const all = await entries(server.api, 'pw-killed', '&stream=event');
      return all.some((e) => e.event === 'crash' && e.instanceId === inst.id) ? all : null;
    }, { what: 'the crash in the log' });
    expect(events.some((e) => e.event === 'cold_start')).toBe(true);
  });

  it('an app that exits as it is thawed: the request is answered by a fresh instance', async () => {
    await server.deploy('pw-fragile', path.join(FIXTURES, 'node-fragile'), settings);
    const inst = await waitFor(() => keptOf(server.api, 'pw-fragile'), { what: 'a prewarmed instance' });
    // frozen long enough for its watchdog to notice when it wakes
    await new Promise((r) => setTimeout(r, 1300));
    const res = await server.app('pw-fragile', '/');
    expect(res.status).toBe(200);
    expect((await view(server.api, 'pw-fragile')).instances.map((i: any) => i.id)).not.toContain(inst.id);
    await waitFor(async () => (await entries(server.api, 'pw-fragile', '&stream=event')).some((e) => e.event === 'crash' && e.instanceId === inst.id), { what: 'the crash in the log' });
  });
});

describe.skipIf(!ready)('a start check that does not fit the budget', () => {
  let server: TestServer;
  beforeAll(async () => {
    // 1 MB: no app fits
    server = await startTestServer({ env: { CELLHOST_PREWARM_MB: '1' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is stopped, and the version is not started a second time when it goes live', async () => {
    const dep = await server.deploy('pw-big', HELLO, settings);
    expect(dep.status).toBe('live');
    const log = (await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body as string;
    expect(log).toMatch(/Stopped, not kept as a prewarmed instance: it holds \d+ MB, more than the budget of 1 MB/);
    await waitFor(async () => (await view(server.api, 'pw-big')).instances.length === 0, { what: 'the checked app stopped' });
    const skipped = (await entries(server.api, 'pw-big', '&stream=event')).filter((e) => e.event === 'prewarm_skipped');
    expect(skipped).toHaveLength(1);
    // a while later still nothing runs, and the app started once (its check)
    await new Promise((r) => setTimeout(r, 1000));
    expect((await view(server.api, 'pw-big')).instances).toEqual([]);
    expect((await entries(server.api, 'pw-big', '&stream=stdout')).filter((e) => e.message.startsWith('listening on'))).toHaveLength(1);
    // its first request is a cold start (from its standby), as without prewarming
    expect((await server.app('pw-big', '/')).status).toBe(200);
    const starts = await waitFor(async () => {
      const all = (await entries(server.api, 'pw-big', '&stream=event')).filter((e) => e.event === 'cold_start');
      return all.length ? all : null;
    });
    expect(starts).toHaveLength(1);
  });
});

describe.skipIf(!ready)('with a system layer', () => {
  // a package of the build's own making (no network): a file in /etc that the app reads at start
  const LAYER_BUILD = [
    'mkdir -p /tmp/pkg/DEBIAN /tmp/pkg/etc',
    "printf 'Package: cellhost-prewarm-test\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: test <test@example.org>\\nDescription: a file for the prewarm test\\n' > /tmp/pkg/DEBIAN/control",
    'echo from-the-layer > /tmp/pkg/etc/cellhost-prewarm-test.conf',
    'dpkg-deb --build /tmp/pkg /tmp/test.deb',
    'dpkg -i /tmp/test.deb',
  ].join('\n');
  const CONF = '/etc/cellhost-prewarm-test.conf';
  const dirs = { node: tempDir('cellhost-prewarm-layer-node-'), edge: tempDir('cellhost-prewarm-layer-edge-') };
  fs.writeFileSync(
    path.join(dirs.node, 'app.js'),
    `const conf = require('fs').readFileSync('${CONF}', 'utf8').trim();\nrequire('http').createServer((q, r) => r.end(conf)).listen(Number(process.env.PORT), () => console.log('listening on ' + process.env.PORT));\n`,
  );
  fs.writeFileSync(path.join(dirs.edge, 'index.mjs'), `import fs from 'node:fs';\nconst conf = fs.readFileSync('${CONF}', 'utf8').trim();\nexport default { fetch: () => new Response(conf) };\n`);
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_PREWARM_MB: '256' } });
  });
  afterAll(async () => {
    await server?.close();
    for (const dir of Object.values(dirs)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the prewarmed instance (the checked app) runs with its deployment\'s layer', async () => {
    const dep = await server.deploy('pw-layer', dirs.node, { startCommand: 'node app.js', buildCommand: LAYER_BUILD });
    expect(dep.status).toBe('live');
    expect(dep.systemLayer).toBeTruthy();
    const inst = await waitFor(() => keptOf(server.api, 'pw-layer'), { what: 'a prewarmed instance' });
    expect(inst.prewarm.reason).toBe('deploy');
    const res = await server.app('pw-layer', '/');
    expect(res.text).toBe('from-the-layer');
    expect((await view(server.api, 'pw-layer')).instances.map((i: any) => i.id)).toEqual([inst.id]);
  });

  it("an edge service's standby (the edge host) and its prewarmed instance run with the layer", async () => {
    const dep = await server.deploy('edge-layer', dirs.edge, { runtime: 'edge', buildCommand: LAYER_BUILD });
    expect(dep.status).toBe('live');
    expect(dep.systemLayer).toBeTruthy();
    const inst = await waitFor(() => keptOf(server.api, 'edge-layer'), { what: 'a prewarmed instance' });
    expect((await server.app('edge-layer', '/')).text).toBe('from-the-layer');
    expect((await view(server.api, 'edge-layer')).instances.map((i: any) => i.id)).toEqual([inst.id]);
    // without prewarming, its next instance comes from its standby: the edge host, started ahead
    expect((await server.api('PATCH', '/api/v1/services/edge-layer', { prewarm: false, idleTimeoutS: 0.2 })).status).toBe(200);
    await waitFor(async () => (await view(server.api, 'edge-layer')).instances.length === 0, { what: 'scaled to zero' });
    await new Promise((r) => setTimeout(r, 500));
    expect((await server.app('edge-layer', '/')).text).toBe('from-the-layer');
    const start = await waitFor(async () => (await entries(server.api, 'edge-layer', '&stream=event')).filter((e) => e.event === 'cold_start').at(-1));
    expect(start.fields.standby).toBe(true);
  });
});

describe.skipIf(!ready)('the prewarm budget', () => {
  // node-hello holds ~8-10 MB in its cgroup: room for two or three
  const BUDGET_MB = 24;
  let server: TestServer;
  let stopSampling = () => {};
  let maxFrozenBytes = 0;

  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_PREWARM_MB: String(BUDGET_MB) } });
    // what the kernel says is frozen, every 20 ms for the whole test: never over the budget
    const timer = setInterval(() => void sampleFrozen(), 20);
    stopSampling = () => clearInterval(timer);
  });
  afterAll(async () => {
    stopSampling();
    await server?.close();
  });

  async function sampleFrozen(): Promise<void> {
    let total = 0;
    for (const dir of await cgroupParentDirs(server.cgroupPrefix)) {
      if (!dir.includes('/memory/')) continue;
      for (const id of fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith('i-')) : []) {
        try {
          if ((await freezerState(server.cgroupPrefix, id)) !== 'FROZEN') continue;
          total += Number(fs.readFileSync(path.join(dir, id, 'memory.usage_in_bytes'), 'utf8'));
        } catch {
          // the group went away meanwhile
        }
      }
    }
    maxFrozenBytes = Math.max(maxFrozenBytes, total);
  }

  const memoryOf = async (service: string): Promise<number> => {
    const e = (await entries(server.api, service, '&stream=event')).filter((x) => x.event === 'prewarmed').at(-1);
    return e.fields.memoryBytes as number;
  };

  it('keeps the most recently used within the budget, stops the least recently used, and an evicted service still cold-starts', async () => {
    const names = ['bud-1', 'bud-2', 'bud-3', 'bud-4'];
    for (const n of names) {
      await server.deploy(n, HELLO, { ...settings, idleTimeoutS: 3600 });
      await waitFor(async () => (await entries(server.api, n, '&stream=event')).some((e) => e.event === 'prewarmed' || e.event === 'prewarm_skipped'), { what: `${n} prewarmed` });
    }
    const kept: string[] = [];
    for (const n of names) if (await keptOf(server.api, n)) kept.push(n);
    // a suffix of the deploy order (most recent last), never more than the budget
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(names.length);
    expect(kept).toEqual(names.slice(names.length - kept.length));
    const bytes = await Promise.all(kept.map(memoryOf));
    expect(bytes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(BUDGET_MB * 1024 * 1024);
    // the next older one would not have fit, with the 1 MB of room a freeze is given
    const next = names[names.length - kept.length - 1]!;
    expect(bytes.reduce((a, b) => a + b, 0) + (await memoryOf(next)) + 1024 * 1024).toBeGreaterThan(BUDGET_MB * 1024 * 1024);
    const evicted = await entries(server.api, names[0]!, '&stream=event');
    expect(evicted.some((e) => e.event === 'prewarm_evicted' && e.fields.why === 'budget')).toBe(true);
    expect((await view(server.api, names[0]!)).instances).toEqual([]);

    // the evicted service starts cold, and answers
    const res = await server.app(names[0]!, '/');
    expect(res.status).toBe(200);
    await waitFor(async () => (await entries(server.api, names[0]!, '&stream=event')).some((e) => e.event === 'cold_start'), { what: 'a cold start' });
    await sampleFrozen();
    expect(maxFrozenBytes).toBeGreaterThan(0);
    expect(maxFrozenBytes).toBeLessThanOrEqual(BUDGET_MB * 1024 * 1024);
  });

  it('after a restart, the most recently used services get theirs back first, as far as the budget goes', async () => {
    // used in this order: bud-2 (thawed), bud-4 (thawed), then bud-3 (thawed or cold): bud-3 is the most recent
    for (const n of ['bud-2', 'bud-4', 'bud-3']) {
      expect((await server.app(n, '/')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 20));
    }
    // usage is written every second
    await new Promise((r) => setTimeout(r, 1300));
    server = await server.restart();
    const order = ['bud-3', 'bud-4', 'bud-2', 'bud-1'];
    await waitFor(async () => {
      for (const n of order) {
        const events = (await entries(server.api, n, '&stream=event')).filter((e) => Date.parse(e.time) > Date.now() - 60_000);
        if (events.some((e) => e.event === 'prewarm_skipped' && e.fields.reason === 'restart')) return true;
      }
      return false;
    }, { timeoutMs: 30_000, what: 'the restart prewarming to reach the end of the budget' });
    const kept: string[] = [];
    for (const n of order) {
      const k = await keptOf(server.api, n);
      if (k) {
        expect(k.prewarm.reason).toBe('restart');
        kept.push(n);
      }
    }
    expect(kept[0]).toBe('bud-3');
    expect(kept).toEqual(order.slice(0, kept.length));
    await sampleFrozen();
    expect(maxFrozenBytes).toBeLessThanOrEqual(BUDGET_MB * 1024 * 1024);
  });
});

describe.skipIf(!ready)('kill -9 of the platform', () => {
  const dataDir = tempDir('cellhost-prewarm-crash-');
  const prefix = `cellhost-child-${process.pid}`;
  let child: ChildServer | null = null;
  const api = adminApi(() => child!.adminUrl);

  afterAll(async () => {
    await stopServer(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('leaves frozen apps behind until the next start, which removes them', async () => {
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    const env = { CELLHOST_PREWARM_MB: '128' };
    child = await spawnServer(dataDir, ports, env);
    await api('POST', '/api/v1/services', { name: 'crashy', runtime: 'node', ...settings });
    const archive = new Uint8Array(await packDirectory(HELLO));
    const dep = await api('POST', '/api/v1/services/crashy/deployments', archive, { 'content-type': 'application/gzip' });
    await waitFor(async () => (await api('GET', `/api/v1/deployments/${dep.body.id}`)).body.status === 'live', { timeoutMs: 30_000 });
    const inst = await waitFor(() => keptOf(api, 'crashy'), { what: 'a prewarmed instance' });
    const pids = await groupPids(prefix, inst.id);
    expect(pids.length).toBeGreaterThan(0);
    expect(await freezerState(prefix, inst.id)).toBe('FROZEN');

    child.proc.kill('SIGKILL');
    await child.exited;
    // frozen, they cannot even see the death of their parent
    expect(pids.some(isAlive)).toBe(true);
    expect(await freezerState(prefix, inst.id)).toBe('FROZEN');

    child = await spawnServer(dataDir, ports, env);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await freezerState(prefix, inst.id)).toBeNull();
    // the service never served a request: nothing is started again for it
    expect(await leftoverCgroups(prefix)).toEqual([]);
    expect((await requestRouter(child.routerUrl, 'crashy.localhost', '/')).status).toBe(200);
  }, 120_000);
});
