// What another user of the host (here `nobody`, through setpriv) can learn about the services
// from outside: their secrets through /proc (every process's command line is world-readable; its
// environment only to its own uid and root) while an instance, its standby and a build run, and
// the platform's files in the data dir (database, WAL, build logs, master key).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { runCommand } from '../../runtime/sandbox/run-command.ts';
import { FIXTURES, startTestServer, waitFor, waitForBuildLine, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const isRoot = process.getuid?.() === 0;
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const sandboxed = sandboxProbe.available && netProbe.available;

describe('local users prerequisites', () => {
  it.runIf(isCI)('root, setpriv, bubblewrap and network namespaces are present in CI', () => {
    expect(isRoot).toBe(true);
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
  });
});

/** runs a shell line as `nobody`: no groups, no capabilities */
async function asNobody(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runCommand('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--', '/bin/sh', '-c', script], { timeoutMs: 20_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/**
 * /proc files (cmdline, environ) in which `nobody` finds `needle`. The needle is in a file, so
 * the scan's own command line and environment do not hold it.
 */
async function pidsShowingToNobody(needle: string): Promise<string[]> {
  const dir = fs.mkdtempSync('/var/tmp/cellhost-needle-');
  try {
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'needle'), needle + '\n', { mode: 0o644 });
    const r = await asNobody(`cd /proc && grep -l -a -F -f '${dir}/needle' [0-9]*/cmdline [0-9]*/environ 2>/dev/null; true`);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split('\n').filter(Boolean);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** the same as root sees it: proof that there is something to find */
async function pidsShowingToRoot(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    for (const f of ['cmdline', 'environ']) {
      try {
        if (fs.readFileSync(`/proc/${pid}/${f}`).includes(needle)) out.push(`${pid}/${f}`);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

function secretValue(tag: string): string {
  return `S3cr3t-${tag}-${Math.random().toString(36).slice(2)}`;
}

describe.skipIf(!isRoot)('another local user cannot read a service env from /proc', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it.skipIf(!sandboxed)('sandboxed: not from the instance, its standby or a build', async () => {
    const dataDir = fs.mkdtempSync('/var/tmp/cellhost-localusers-');
    const server = await startTestServer({ dataDir, ownsDataDir: true });
    servers.push(server);
    const secret = secretValue('sandboxed');
    await server.api('POST', '/api/v1/services', { name: 'victim', runtime: 'node', startCommand: 'node app.js', idleTimeoutS: 3 });
    expect((await server.api('PUT', '/api/v1/services/victim/env/SECRET_TOKEN', { value: secret })).status).toBe(200);
    const dep = await server.deploy('victim', path.join(FIXTURES, 'node-probe'), { startCommand: 'node app.js' });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    // the app has it, and root sees it: the secret is there to be found
    expect((await server.app('victim', '/env')).json.SECRET_TOKEN).toBe(secret);
    expect((await pidsShowingToRoot(secret)).length).toBeGreaterThan(0);
    expect(await pidsShowingToNobody(secret)).toEqual([]);

    // idle, scaled to zero: a standby, the next instance prepared, its shell waiting to exec the app
    await waitFor(async () => (await server.api('GET', '/api/v1/services/victim')).body.instances?.length === 0, { what: 'the instance to stop', timeoutMs: 20_000 });
    await waitFor(async () => (await pidsShowingToRoot(secret)).length > 0, { what: 'a standby holding the env', timeoutMs: 20_000 });
    expect(await pidsShowingToNobody(secret)).toEqual([]);

    // a build that waits (bounded) until the test has looked
    await server.api('PATCH', '/api/v1/services/victim', { buildCommand: 'echo build-waiting; for i in $(seq 600); do [ -e /app/.look-done ] && break; sleep 0.05; done' });
    const res = await server.api('POST', '/api/v1/services/victim/deployments', new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-probe'))), { 'content-type': 'application/gzip' });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await waitForBuildLine(server.api, id, 'build-waiting');
    expect((await pidsShowingToRoot(secret)).length).toBeGreaterThan(0);
    expect(await pidsShowingToNobody(secret)).toEqual([]);
    fs.writeFileSync(path.join(dataDir, 'images', id, '.look-done'), '');
    expect((await server.waitDeployment(id)).status).toBe('live');
  });

  it('unsandboxed (isolation off): not from the app', async () => {
    const server = await startTestServer({ env: { CELLHOST_ISOLATION: 'off' } });
    servers.push(server);
    const secret = secretValue('direct');
    await server.api('POST', '/api/v1/services', { name: 'plain', runtime: 'node', startCommand: 'node app.js', idleTimeoutS: 60 });
    expect((await server.api('PUT', '/api/v1/services/plain/env/SECRET_TOKEN', { value: secret })).status).toBe(200);
    const dep = await server.deploy('plain', path.join(FIXTURES, 'node-probe'), { startCommand: 'node app.js' });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    expect((await server.app('plain', '/env')).json.SECRET_TOKEN).toBe(secret);
    expect((await pidsShowingToRoot(secret)).length).toBeGreaterThan(0);
    expect(await pidsShowingToNobody(secret)).toEqual([]);
  });
});

/** what `nobody` gets trying to read each file or list each dir (ok, or the error's code) */
async function nobodyReads(paths: string[]): Promise<Record<string, string>> {
  const script = paths.map((p) => `if { [ -d '${p}' ] && ls '${p}'; } >/dev/null 2>&1 || { [ ! -d '${p}' ] && cat '${p}'; } >/dev/null 2>&1; then echo "ok ${p}"; else echo "denied ${p}"; fi`).join('\n');
  const r = await asNobody(script);
  return Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => [l.slice(l.indexOf(' ') + 1), l.slice(0, l.indexOf(' '))]));
}

describe.skipIf(!isRoot)("another local user cannot read the platform's files", () => {
  let server: TestServer;
  let dataDir: string;
  let depId = '';

  const privateFiles = () => {
    const logs = path.join(dataDir, 'logs', 'builds');
    return [
      path.join(dataDir, 'cellhost.db'),
      path.join(dataDir, 'cellhost.db-wal'),
      path.join(dataDir, 'cellhost.db-shm'),
      path.join(dataDir, 'master.key'),
      logs,
      ...fs.readdirSync(logs).map((f) => path.join(logs, f)),
      path.join(dataDir, 'builds'),
      path.join(dataDir, 'run'),
    ];
  };

  beforeAll(async () => {
    // a data dir others may enter, as `mkdir` makes one (0755) under a parent others may enter
    dataDir = fs.mkdtempSync('/var/tmp/cellhost-modes-');
    fs.chmodSync(dataDir, 0o755);
    server = await startTestServer({ dataDir, ownsDataDir: true });
    const dep = await server.deploy('modes', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    depId = dep.id;
  });

  afterAll(async () => {
    if (server) await server.close();
    else if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('not the database, its WAL, the build logs or the master key: created private', async () => {
    for (const f of privateFiles()) expect(fs.existsSync(f), f).toBe(true);
    const seen = await nobodyReads(privateFiles());
    expect(Object.entries(seen).filter(([, v]) => v !== 'denied')).toEqual([]);
    for (const f of privateFiles()) expect(fs.statSync(f).mode & 0o077, `${f} mode ${(fs.statSync(f).mode & 0o777).toString(8)}`).toBe(0);
  });

  it('an existing data dir with readable files is tightened at start, images still reach the app', async () => {
    await server.stop();
    // what an older version left: everything readable by others
    const loosen = (p: string): void => {
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) return;
      fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) loosen(path.join(p, n));
    };
    for (const n of fs.readdirSync(dataDir)) if (n !== 'images') loosen(path.join(dataDir, n));
    expect((await nobodyReads([path.join(dataDir, 'cellhost.db')]))[path.join(dataDir, 'cellhost.db')]).toBe('ok');
    server = await server.restart();
    const seen = await nobodyReads(privateFiles());
    expect(Object.entries(seen).filter(([, v]) => v !== 'denied')).toEqual([]);
    const r = await server.app('modes');
    expect(r.status, r.text).toBe(200);
    expect(fs.existsSync(path.join(dataDir, 'images', depId))).toBe(true);
  });
});
