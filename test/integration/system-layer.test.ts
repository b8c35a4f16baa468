// System packages in builds, through the whole platform: `apt-get install` in a build command
// makes a layer of the deployment's own (the host's system untouched), its instances see it
// read-only as the service's uid, and it is part of the image (rollback, limits, the cache).
// Real apt-get against the Debian mirror the host's sources name: needs root and the network.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { packDirectory } from '../../builder/sources/index.ts';
import { doctorCommand } from '../../runtime/cli/host/doctor.ts';
import { loadConfig, SUBUID_BLOCK } from '../../runtime/core/config.ts';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { parseMountsUnder, probeSystemLayers } from '../../runtime/sandbox/system-layer.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

const APP = path.join(FIXTURES, 'python-layer');
const SEED = 'apt-get update && apt-get install -y libsm6 libxext6 libxrender-dev';
// the seed's second line is `pip install tensorflow pillow`: no index this machine reaches has
// tensorflow, so pip installs a package that comes with the source, in the same build
const SEED_PIP = 'pip install --no-index --no-build-isolation ./vendor/greeting';
const BUILD_TIMEOUT_MS = 240_000;

/**
 * The host's system as a hash: every path under /usr and /etc with its size, mode, owner, mtime
 * and ctime (any write, chmod or chown changes one), and the content of /etc and dpkg's database.
 */
async function hostFingerprint(): Promise<Record<string, string>> {
  // in a child, never spawnSync: the platform under test shares this process's event loop
  const sh = (script: string) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      const hash = crypto.createHash('sha256');
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => hash.update(c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(hash.digest('hex')) : reject(new Error(`${script}: ${stderr}`))));
    });
  const [usr, etc, dpkg] = await Promise.all([
    sh("find /usr -xdev -printf '%p %s %m %U:%G %T@ %C@\\n' | sort"),
    sh("find /etc -xdev -printf '%p %s %m %U:%G %T@ %C@\\n' | sort && find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum"),
    sh('find /var/lib/dpkg -xdev -type f -print0 | sort -z | xargs -0 sha256sum'),
  ]);
  return { usr, etc, dpkg };
}

function hostHas(pkg: string): boolean {
  return spawnSync('dpkg', ['-s', pkg], { stdio: 'ignore' }).status === 0;
}

/** can this host build system layers at all (the platform says the same at start: see the CI check) */
async function probeLayers(): Promise<{ available: boolean; reason?: string }> {
  const sandbox = await probeSandbox();
  if (!sandbox.available) return { available: false, reason: sandbox.reasons.join('; ') };
  const dir = tempDir('cellhost-layer-probe-');
  try {
    return await probeSystemLayers({ dir, upperRoot: dir, block: { first: loadConfig({ env: {}, cwd: '/tmp' }).subuidRange.first, count: SUBUID_BLOCK }, seccomp: !!sandbox.hardening.seccomp });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const probe = await probeLayers();
const layersAvailable = probe.available;

let server: TestServer;

async function deploy(service: string, settings: Record<string, unknown>, dir = APP): Promise<any> {
  const existing = await server.api('GET', `/api/v1/services/${service}`);
  if (existing.status === 404) {
    const created = await server.api('POST', '/api/v1/services', { name: service, runtime: 'python', ...settings });
    expect(created.status).toBe(201);
  } else {
    await server.api('PATCH', `/api/v1/services/${service}`, settings);
  }
  const res = await server.api('POST', `/api/v1/services/${service}/deployments`, new Uint8Array(await packDirectory(dir)), { 'content-type': 'application/gzip' });
  expect(res.status).toBe(202);
  return waitFor(
    async () => {
      const { body } = await server.api('GET', `/api/v1/deployments/${res.body.id}`);
      return !['queued', 'building'].includes(body.status) && body;
    },
    { timeoutMs: BUILD_TIMEOUT_MS, intervalMs: 200, what: `deployment of ${service}` },
  );
}

const logOf = async (id: string): Promise<string> => (await server.api('GET', `/api/v1/deployments/${id}/logs`)).body as string;

function ownersUnder(dir: string): Set<number> {
  const ids = new Set<number>();
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, e.name);
      const st = fs.lstatSync(full);
      ids.add(st.uid);
      ids.add(st.gid);
      if (e.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return ids;
}

// as `cellhost serve` runs: nothing the sandbox uids must reach may depend on a loose umask
const umask = process.umask(0o077);
beforeAll(async () => {
  server = await startTestServer({ env: { CELLHOST_BUILD_TIMEOUT_S: String(BUILD_TIMEOUT_MS / 1000) } });
});
afterAll(async () => {
  process.umask(umask);
  const runDir = server?.isolation.CELLHOST_HOST_RUN_DIR;
  await server?.close();
  // nothing of the layers stays mounted once the platform has stopped
  if (runDir) expect(parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), runDir)).toEqual([]);
});

describe('system packages in builds', () => {
  it.runIf(process.env.CI === 'true')('this host can build system layers in CI, and the platform says so', async () => {
    expect(probe).toEqual({ available: true });
    expect((await server.api('GET', '/api/v1/health')).body.isolation.features.systemLayers).toBe(true);
  });

  it.runIf(layersAvailable)(
    "the seed's command: a layer of the deployment's own, the app loads libSM.so.6, the host's /usr and dpkg database unchanged",
    async () => {
      const before = await hostFingerprint();
      const dep = await deploy('seed', { buildCommand: `${SEED}\n${SEED_PIP}` });
      expect(dep.error).toBeUndefined();
      expect(dep.status).toBe('live');
      expect(await hostFingerprint()).toEqual(before);
      const log = await logOf(dep.id);
      expect(log).toContain('System layer: the build runs as root');
      expect(log).toMatch(/libsm6 is already the newest version|Setting up libsm6/);
      const r = await server.app('seed');
      expect(r.status).toBe(200);
      expect(r.json.libsm).toBe(true);
      expect(r.json.greeting).toBe('installed by pip in the same build');
      const svc = (await server.api('GET', '/api/v1/services/seed')).body;
      expect(r.json.uid).toBe(svc.uid);
      expect(svc.subuidBase).toBeGreaterThan(svc.uid);
    },
    BUILD_TIMEOUT_MS,
  );

  it.runIf(layersAvailable)(
    'a package the host does not have: installed in the build, used by the start command, the app its own uid and unable to write the layer; the apt cache reused, rollback drops it',
    async () => {
      expect(hostHas('hello')).toBe(false);
      // first a deployment without a layer, to roll back to
      const plain = await deploy('greeter', { buildCommand: 'true', startCommand: 'python app.py' });
      expect(plain.status).toBe('live');
      expect(plain.systemLayer).toBeUndefined();
      expect((await server.app('greeter')).json.helloBinary).toBe(false);
      const before = await hostFingerprint();
      const build = [
        'apt-get update && apt-get install -y hello',
        // root of its namespace, but a host id outside its block cannot be given
        'touch /tmp/probe && (chown 70000 /tmp/probe 2>&1 || echo chown-outside-refused)',
        // made by a maintainer script's way (mkdir, a redirect): readable by the app whatever the platform's umask
        'mkdir -p /usr/share/cellhost-probe && echo x > /usr/share/cellhost-probe/f',
      ].join('\n');
      // the start command is the service's, so it must also start the deployment without the layer
      const dep = await deploy('greeter', { buildCommand: build, startCommand: 'if command -v hello >/dev/null; then hello -g "hello from the layer" > /tmp/hello.txt; fi; exec python app.py' });
      expect(dep.error).toBeUndefined();
      expect(dep.status).toBe('live');
      expect(dep.systemLayer.packages.added).toEqual([expect.objectContaining({ name: 'hello' })]);
      expect(dep.systemLayer.builtOnCurrentBase).toBe(true);
      expect(await hostFingerprint()).toEqual(before);
      expect(hostHas('hello')).toBe(false);
      const log = await logOf(dep.id);
      expect(log).toContain('chown-outside-refused');
      expect(log).toMatch(/System layer: 1 package added \(hello /);

      const svc = (await server.api('GET', '/api/v1/services/greeter')).body;
      const r = await server.app('greeter');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ uid: svc.uid, helloBinary: true, hello: 'hello from the layer', writeUsr: 'Read-only file system', writeEtc: 'Read-only file system', writeVarLib: 'Read-only file system' });

      // the layer's files: owned by ids of the service's block, never by host root
      const layerDir = path.join(server.dataDir, 'images', `${dep.id}.layer`);
      expect(fs.existsSync(path.join(layerDir, 'usr/bin/hello'))).toBe(true);
      const owners = [...ownersUnder(layerDir)];
      expect(owners.every((id) => id >= svc.subuidBase && id < svc.subuidBase + 65536)).toBe(true);
      expect(owners).not.toContain(0);
      expect(fs.statSync(layerDir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(layerDir, 'usr/share/cellhost-probe')).mode & 0o777).toBe(0o755);
      expect(fs.statSync(path.join(layerDir, 'usr/share/cellhost-probe/f')).mode & 0o777).toBe(0o644);
      // the download stays in the service's cache, out of the layer
      const archives = path.join(server.dataDir, 'cache', 'greeter', 'apt', 'cache', 'archives');
      expect(fs.readdirSync(archives).some((f) => /^hello_.*\.deb$/.test(f))).toBe(true);

      // the same apt lines again: apt takes the package from the cache
      const again = await deploy('greeter', {});
      expect(again.status).toBe('live');
      expect(await logOf(again.id)).toMatch(/Need to get 0 B\/[\d.,]+ [kM]B of archives/);

      // another service does not see it
      const other = await deploy('other', { buildCommand: 'true' });
      expect(other.status).toBe('live');
      expect((await server.app('other')).json.helloBinary).toBe(false);

      // a rollback to the deployment without a layer no longer has it; forward again has it
      expect((await server.api('POST', `/api/v1/deployments/${plain.id}/promote`)).status).toBe(200);
      await waitFor(async () => (await server.app('greeter')).json?.helloBinary === false, { timeoutMs: 15_000, what: 'the rollback to serve' });
      expect((await server.api('POST', `/api/v1/deployments/${again.id}/promote`)).status).toBe(200);
      await waitFor(async () => (await server.app('greeter')).json?.helloBinary === true, { timeoutMs: 15_000, what: 'the layer to serve again' });
    },
    BUILD_TIMEOUT_MS * 2,
  );

  it.runIf(layersAvailable)(
    'after a host upgrade: the API, the console and doctor name the live layer built on an older base, and Rebuild builds it on the current one',
    async () => {
      const live = (await server.api('GET', '/api/v1/services/greeter')).body.liveDeploymentId as string;
      expect((await server.api('GET', `/api/v1/deployments/${live}`)).body.systemLayer.builtOnCurrentBase).toBe(true);
      // as if the host's packages had changed since the build: its recorded base is another one
      const db = new Database(path.join(server.dataDir, 'cellhost.db'));
      db.prepare("UPDATE deployments SET system_layer = json_set(system_layer, '$.hostBase', 'an-older-base') WHERE id = ?").run(live);
      db.close();
      expect((await server.api('GET', `/api/v1/deployments/${live}`)).body.systemLayer.builtOnCurrentBase).toBe(false);

      let doctorOut = '';
      await doctorCommand(['--data', server.dataDir], { env: { ...server.isolation }, cwd: '/tmp', out: (t) => void (doctorOut += t), err: () => {}, isTTY: false });
      expect(doctorOut).toContain(`OLD  greeter (${live}): 1 package added (hello `);
      expect(doctorOut).toContain(`POST /api/v1/deployments/${live}/rebuild`);
      expect(doctorOut).toMatch(/ok {3}sandbox/);

      const page = await fetch(`${server.adminUrl}/login`);
      const csrf0 = /name="_csrf" value="([^"]*)"/.exec(await page.text())![1]!;
      const pre = page.headers.getSetCookie()[0]!.split(';')[0]!;
      const login = await fetch(`${server.adminUrl}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: pre, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf0, token: TOKEN, next: '/services' }),
      });
      const cookie = login.headers.getSetCookie().find((c) => c.startsWith('cellhost_session='))!.split(';')[0]!;
      const servicePage = await (await fetch(`${server.adminUrl}/services/greeter`, { headers: { cookie } })).text();
      expect(servicePage).toContain('was built on an older base');
      expect(servicePage).toContain(`action="/deployments/${live}/rebuild"`);
      const depPage = await (await fetch(`${server.adminUrl}/deployments/${live}`, { headers: { cookie } })).text();
      expect(depPage).toContain('id="system-layer"');
      expect(depPage).toMatch(/hello 2\.10/);
      const csrf = /name="_csrf" value="([^"]*)"/.exec(servicePage)![1]!;
      const rebuilt = await fetch(`${server.adminUrl}/deployments/${live}/rebuild`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf }),
      });
      expect(rebuilt.status).toBe(303);
      const next = /\/deployments\/(d-[0-9a-f]+)/.exec(rebuilt.headers.get('location') ?? '')![1]!;
      expect(next).not.toBe(live);
      const dep = await waitFor(
        async () => {
          const { body } = await server.api('GET', `/api/v1/deployments/${next}`);
          return !['queued', 'building'].includes(body.status) && body;
        },
        { timeoutMs: BUILD_TIMEOUT_MS, intervalMs: 200, what: 'the rebuild' },
      );
      expect(dep.status).toBe('live');
      expect(dep.source).toBe('upload:tar.gz');
      expect(dep.systemLayer.builtOnCurrentBase).toBe(true);
      expect(dep.systemLayer.packages.added.map((p: any) => p.name)).toEqual(['hello']);
      expect((await server.app('greeter')).json.helloBinary).toBe(true);
      // once more through the API: images past the 3 kept for rollback go with their layers, their
      // views and their kept uploads (the first layered one of this service among them)
      const layered = (await server.api('GET', '/api/v1/services/greeter/deployments')).body.deployments.filter((d: any) => d.systemLayer).map((d: any) => d.id) as string[];
      const once = await server.api('POST', `/api/v1/deployments/${next}/rebuild`);
      expect(once.status).toBe(202);
      expect(
        (await waitFor(async () => {
          const { body } = await server.api('GET', `/api/v1/deployments/${once.body.id}`);
          return !['queued', 'building'].includes(body.status) && body;
        }, { timeoutMs: BUILD_TIMEOUT_MS, intervalMs: 200 })).status,
      ).toBe('live');
      // pruning follows the promotion
      const oldestLayered = layered[layered.length - 1]!;
      // its image goes first, its kept upload last: the prune of the oldest is over once both are gone
      const gone = (id: string) => !fs.existsSync(path.join(server.dataDir, 'images', id)) && !fs.existsSync(path.join(server.dataDir, 'builds', 'sources', `${id}.tar.gz`));
      await waitFor(() => gone(oldestLayered), { timeoutMs: 15_000, what: 'the oldest image and its upload to be pruned' });
      const history = (await server.api('GET', '/api/v1/services/greeter/deployments')).body.deployments as { id: string }[];
      const pruned = history.filter((d) => !fs.existsSync(path.join(server.dataDir, 'images', d.id)));
      expect(pruned.map((d) => d.id)).toEqual(expect.arrayContaining([oldestLayered]));
      expect(parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), server.isolation.CELLHOST_HOST_RUN_DIR!).filter((m) => pruned.some((d) => m.mountPoint.includes(`/layers/d-${d.id}/`)))).toEqual([]);
      for (const d of pruned) {
        expect(fs.existsSync(path.join(server.dataDir, 'images', `${d.id}.layer`))).toBe(false);
        expect(fs.existsSync(path.join(server.dataDir, 'builds', 'sources', `${d.id}.tar.gz`))).toBe(false);
      }
      // a deployment without a layer keeps no upload to rebuild from
      const other = (await server.api('GET', '/api/v1/services/other')).body.liveDeploymentId;
      const refused = await server.api('POST', `/api/v1/deployments/${other}/rebuild`);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('ERR_DEPLOYMENT_NO_SOURCE');
    },
    BUILD_TIMEOUT_MS,
  );

  it.runIf(layersAvailable)(
    'two builds of different services at once keep their layers apart',
    async () => {
      expect(hostHas('figlet')).toBe(false);
      const both = await Promise.all([
        deploy('apart-a', { buildCommand: 'apt-get update && apt-get install -y hello && sleep 2 && ! test -e /usr/bin/figlet && echo no-figlet-here' }),
        deploy('apart-b', { buildCommand: 'apt-get update && apt-get install -y figlet && sleep 2 && ! test -e /usr/bin/hello && echo no-hello-here' }),
      ]);
      for (const d of both) expect(d.status).toBe('live');
      expect(await logOf(both[0].id)).toContain('no-figlet-here');
      expect(await logOf(both[1].id)).toContain('no-hello-here');
      expect(both[0].systemLayer.packages.added.map((p: any) => p.name)).toEqual(['hello']);
      expect(both[1].systemLayer.packages.added.map((p: any) => p.name)).toEqual(['figlet']);
      expect(both[0].systemLayer.uidBase).not.toBe(both[1].systemLayer.uidBase);
      // deleting a service takes its layer and the views of it along
      expect((await server.app('apart-a')).status).toBe(200);
      const viewsOf = (id: string) => parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), server.isolation.CELLHOST_HOST_RUN_DIR!).filter((m) => m.mountPoint.includes(`/layers/d-${id}/`));
      expect(viewsOf(both[0].id).length).toBeGreaterThan(0);
      expect((await server.api('DELETE', '/api/v1/services/apart-a')).status).toBe(204);
      expect(fs.existsSync(path.join(server.dataDir, 'images', `${both[0].id}.layer`))).toBe(false);
      expect(viewsOf(both[0].id)).toEqual([]);
    },
    BUILD_TIMEOUT_MS,
  );

  it.runIf(layersAvailable)(
    "bad input: a package that does not exist fails with apt's own message",
    async () => {
      const dep = await deploy('nopkg', { buildCommand: 'apt-get update && apt-get install -y cellhost-no-such-package' });
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_BUILD_FAILED');
      expect(dep.error.message).toContain('E: Unable to locate package cellhost-no-such-package');
      const lines = (await logOf(dep.id)).trim().split('\n');
      expect(lines.pop()).toContain('E: Unable to locate package cellhost-no-such-package');
      expect(fs.existsSync(path.join(server.dataDir, 'images', `${dep.id}.layer`))).toBe(false);
    },
    BUILD_TIMEOUT_MS,
  );

  it.runIf(layersAvailable)(
    'bad input: apt with no network to the mirror says so',
    async () => {
      const before = await hostFingerprint();
      // the build's own copy of the sources (in its layer) names a mirror on a private address,
      // which the build's network drops
      const build = [
        "sed -i 's#http://deb.debian.org#http://10.255.0.1#g; s#https://deb.debian.org#http://10.255.0.1#g' /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null || true",
        'apt-get -o Acquire::http::Timeout=3 -o Acquire::Retries=0 update && apt-get -o Acquire::http::Timeout=3 install -y hello',
      ].join('\n');
      const dep = await deploy('nonet', { buildCommand: build });
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_BUILD_FAILED');
      expect(dep.error.message).toMatch(/apt could not reach the package mirror from the build's network \((Could not connect to 10\.255\.0\.1|Connection timed out)/);
      expect(await hostFingerprint()).toEqual(before);
    },
    BUILD_TIMEOUT_MS,
  );

  it.runIf(layersAvailable)(
    'a maintainer script that needs what a container root cannot do fails with its message, nothing of the host touched',
    async () => {
      const before = await hostFingerprint();
      const build = [
        'mkdir -p /tmp/pkg/DEBIAN',
        "printf 'Package: cellhost-probe\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: test <test@example.org>\\nDescription: probe\\n' > /tmp/pkg/DEBIAN/control",
        "printf '#!/bin/sh\\nset -e\\necho probe-postinst-running\\nmount -t tmpfs none /tmp\\n' > /tmp/pkg/DEBIAN/postinst",
        'chmod 755 /tmp/pkg/DEBIAN/postinst',
        'dpkg-deb --build /tmp/pkg /tmp/probe.deb',
        'dpkg -i /tmp/probe.deb',
      ].join('\n');
      const dep = await deploy('maint', { buildCommand: build });
      expect(dep.status).toBe('failed');
      expect(dep.error.message).toMatch(/dpkg: error processing (package cellhost-probe|archive \/tmp\/probe\.deb)/);
      const log = await logOf(dep.id);
      expect(log).toContain('probe-postinst-running');
      expect(log).toMatch(/mount: \/tmp: (permission denied|must be superuser)/);
      expect(hostHas('cellhost-probe')).toBe(false);
      expect(await hostFingerprint()).toEqual(before);
    },
    BUILD_TIMEOUT_MS,
  );
});

describe('a layer counts against the image size limit', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ env: { CELLHOST_BUILD_MAX_IMAGE_MB: '4', CELLHOST_BUILD_TIMEOUT_S: '120' } });
  });
  afterAll(async () => {
    const runDir = small?.isolation.CELLHOST_HOST_RUN_DIR;
    await small?.close();
    if (runDir) expect(parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), runDir)).toEqual([]);
  });

  it.runIf(layersAvailable)(
    'a layer over the limit fails the build with ERR_BUILD_TOO_LARGE naming it, and leaves nothing',
    async () => {
      await small.api('POST', '/api/v1/services', { name: 'big', runtime: 'python', buildCommand: 'dpkg --version >/dev/null\nhead -c 12M /dev/zero > /usr/lib/cellhost-big\nsync' });
      const res = await small.api('POST', '/api/v1/services/big/deployments', new Uint8Array(await packDirectory(APP)), { 'content-type': 'application/gzip' });
      const dep = await waitFor(
        async () => {
          const { body } = await small.api('GET', `/api/v1/deployments/${res.body.id}`);
          return !['queued', 'building'].includes(body.status) && body;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      expect(dep.status).toBe('failed');
      expect(dep.error.code).toBe('ERR_BUILD_TOO_LARGE');
      expect(dep.error.message).toContain('image (with its system layer)');
      expect(fs.existsSync(path.join(small.dataDir, 'images', `${dep.id}.layer`))).toBe(false);
      expect(fs.existsSync(path.join(small.dataDir, 'images', dep.id))).toBe(false);
    },
    150_000,
  );
});
