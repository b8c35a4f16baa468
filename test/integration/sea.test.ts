// The built single executable: copied alone into an empty directory, it serves the platform,
// deploys an app with its own CLI and routes to it; its native addons come out of the binary.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const builtExe = path.join(root, 'dist', 'cellhost');
const buildInfoFile = path.join(root, 'dist', 'build-info.json');
const isCI = process.env.CI === 'true';
const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
const adminToken = `sea-test-${'x'.repeat(24)}`;
// Part of the app's start command, so its processes can be found in /proc whatever spawned them.
const appMarker = `sea-marker-${process.pid}-${Date.now()}`;

let tmp: string;
let exe: string;
let cacheDir: string;
let server: ChildProcess | undefined;
let serverLog = '';
let buildSeconds: number | undefined;

function newestMtime(entries: string[]): number {
  let newest = 0;
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return; // a dir that does not exist yet (ui/ may be empty) holds nothing newer
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const e of entries) visit(path.join(root, e));
  return newest;
}

// Rebuilding costs most of this file's time; locally a binary newer than every input, built
// from the real entry by this node, is reused. CI always builds.
function isBuildCurrent(): boolean {
  if (isCI || !fs.existsSync(builtExe) || !fs.existsSync(buildInfoFile)) return false;
  const info = JSON.parse(fs.readFileSync(buildInfoFile, 'utf8')) as { entry?: string; node?: string };
  if (info.entry !== path.join('runtime', 'main.ts') || info.node !== process.version) return false;
  const inputs = ['runtime', 'builder', 'ui', 'package-lock.json', 'build.mjs'];
  return newestMtime(inputs) < fs.statSync(builtExe).mtimeMs;
}

function runBuild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['build.mjs'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build failed (${code}):\n${out}`))));
  });
}

/** A clean env: no NODE_PATH or NODE_OPTIONS from the test runner, the native cache in our temp dir. */
function exeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? os.homedir(),
    LANG: 'C.UTF-8',
    XDG_CACHE_HOME: cacheDir,
    ...extra,
  };
}

function runExe(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { cwd: path.dirname(exe), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, urlPath: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, headers: host ? { host } : {}, timeout: 30_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

async function waitForHealth(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`cellhost serve exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${serverLog}`);
    }
    try {
      const res = await httpGet(port, '/api/v1/health');
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cellhost serve was not healthy within ${timeoutMs} ms:\n${serverLog}`);
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} still running after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Live pids whose command line carries the marker (zombies count as gone). */
function findMarkedPids(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmdline.includes(appMarker) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

function listExtractedAddons(): string[] {
  const nativeDir = path.join(cacheDir, 'cellhost', 'native');
  if (!fs.existsSync(nativeDir)) return [];
  return fs.readdirSync(nativeDir).flatMap((hash) => fs.readdirSync(path.join(nativeDir, hash))).sort();
}

beforeAll(async () => {
  if (!isBuildCurrent()) {
    const started = performance.now();
    await runBuild();
    buildSeconds = (performance.now() - started) / 1000;
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-sea-'));
  cacheDir = path.join(tmp, 'cache');
  fs.mkdirSync(path.join(tmp, 'bin'));
  exe = path.join(tmp, 'bin', 'cellhost');
  fs.copyFileSync(builtExe, exe);
  fs.chmodSync(exe, 0o755);
}, 240_000);

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL');
    await waitForExit(server, 10_000).catch(() => undefined);
  }
  // Whatever the platform left of the app is ours to end: it carries this run's marker.
  for (const pid of findMarkedPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('dist/cellhost, the single executable', () => {
  it('is one file that runs from an empty directory', async () => {
    if (buildSeconds !== undefined) {
      const mib = fs.statSync(builtExe).size / 1024 / 1024;
      console.info(`sea: built dist/cellhost (${mib.toFixed(1)} MiB) in ${buildSeconds.toFixed(1)} s`);
    }
    expect(fs.readdirSync(path.dirname(exe))).toEqual(['cellhost']);
    const res = await runExe(['version'], exeEnv(), 30_000);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(version);
  });

  it('serves, deploys a Node app with its own CLI, routes to it, and stops cleanly', async () => {
    const httpPort = await getFreePort();
    const adminPort = await getFreePort();
    const dataDir = path.join(tmp, 'data');
    const appDir = path.join(tmp, 'app');
    fs.mkdirSync(appDir);
    fs.writeFileSync(
      path.join(appDir, 'app.js'),
      "require('http').createServer((q, s) => s.end('hello from sea')).listen(process.env.PORT);\n",
    );

    server = spawn(
      exe,
      ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--admin', `127.0.0.1:${adminPort}`],
      { cwd: path.dirname(exe), env: exeEnv({ CELLHOST_ADMIN_TOKEN: adminToken }), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    server.stderr!.on('data', (d: Buffer) => (serverLog = (serverLog + d).slice(-20_000)));
    await waitForHealth(adminPort, server, 30_000);
    // The store opened its database, so better-sqlite3 came out of the binary.
    expect(listExtractedAddons()).toContain('better_sqlite3.node');

    const deploy = await runExe(
      ['deploy', appDir, '--name', 'hello', '--runtime', 'node', '--start', `node app.js ${appMarker}`],
      exeEnv({ CELLHOST_URL: `http://127.0.0.1:${adminPort}`, CELLHOST_TOKEN: adminToken }),
      120_000,
    );
    expect(deploy.code, `deploy failed:\n${deploy.stdout}\n${deploy.stderr}\n--- server log ---\n${serverLog}`).toBe(0);
    expect(deploy.stdout).toContain('hello.localhost');

    const res = await httpGet(httpPort, '/', 'hello.localhost');
    expect(res, serverLog).toEqual({ status: 200, body: 'hello from sea' });
    const appPids = findMarkedPids();
    expect(appPids.length).toBeGreaterThan(0);
    // Builds run in a pty, so node-pty came out of the binary too.
    expect(listExtractedAddons()).toEqual(['better_sqlite3.node', 'pty.node']);

    server.kill('SIGTERM');
    const exit = await waitForExit(server, 30_000);
    expect(exit, serverLog).toEqual({ code: 0, signal: null });
    const deadline = Date.now() + 5_000;
    while (findMarkedPids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(findMarkedPids()).toEqual([]);
  });
});
