// Cold start, spawn (or request) → first 200: each app through cellhost (the service scaled to
// zero, then one request through the router) against a bare spawn of the same app with a clean
// environment, interleaved so both see the same machine. Median of BENCH_RUNS rounds (default 10).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../runtime/instances/launcher.ts';
import { findToolchain } from '../../runtime/sandbox/toolchains.ts';
import { probePort } from '../../runtime/instances/readiness.ts';
import { FIXTURES } from '../helpers/server.ts';
import { getViaRouter, type BenchPlatform } from './platform.ts';
import { readCpuNs, readInstanceCpuMs } from './proc-stats.ts';
import { CLEAN_PATH, goBuild } from './go-build.ts';
import { median, paired, sleep, summarize, type Summary } from './stats.ts';

export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 10));
export const STANDBY_SETTLE_MS = 500;

export interface ColdApp {
  name: 'node' | 'python' | 'go';
  /** the directory deployed, and where the bare spawn runs */
  dir: string;
  bare: string[];
  settings: Record<string, unknown>;
  cleanup?: () => void;
}

export interface ColdStartResult {
  app: ColdApp['name'];
  runs: number;
  bare: Summary;
  cellhost: Summary;
  /** per round: the cellhost start − the bare spawn beside it */
  overhead: Summary;
  /** the platform's own figure: its cold_start event (instance start → port accepting), median */
  instanceStartMs: number;
  /** CPU the platform process spent per cold start (request in → response out) */
  platformCpuMs: Summary;
  /** CPU the instance spent from its start to its first answer (its cgroup) */
  appCpuMs: Summary;
}

/** durations of the service's cold_start events, oldest first */
export async function readColdStartEvents(platform: BenchPlatform, service: string): Promise<number[]> {
  const res = await platform.api('GET', `/api/v1/services/${service}/logs?stream=event&q=cold_start&limit=1000`);
  const entries = (res.body?.entries ?? []) as { event: string | null; fields: { durationMs?: number } | null }[];
  return entries.filter((e) => e.event === 'cold_start' && typeof e.fields?.durationMs === 'number').map((e) => e.fields!.durationMs!);
}

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
  });
}

/**
 * The baseline: what a bare spawn of the app costs, clean environment, port polled every 1 ms,
 * to its first 200; or, with `whenListening`, to the end of what that does with the port.
 */
export async function spawnBare(app: ColdApp, whenListening?: (port: number) => Promise<void>): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(app.bare[0]!, app.bare.slice(1), { cwd: app.dir, env: { PATH: CLEAN_PATH, PORT: String(port) }, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const deadline = t0 + 10_000;
    while (!(await probePort('127.0.0.1', port))) {
      if (child.exitCode !== null || performance.now() > deadline) throw new Error(`bare ${app.name} did not listen`);
      await sleep(1);
    }
    if (whenListening) {
      await whenListening(port);
      return performance.now() - t0;
    }
    const status = await get(port);
    const ms = performance.now() - t0;
    if (status !== 200) throw new Error(`bare ${app.name} answered ${status}`);
    return ms;
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function waitScaledToZero(platform: BenchPlatform, service: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await platform.service(service)).instances.length > 0) {
    if (Date.now() > deadline) throw new Error(`${service} did not scale to zero`);
    await sleep(10);
  }
}

/** the Go app, built once with `go build` (its cache in a temp dir, removed after) */
export async function prepareGoApp(): Promise<ColdApp | string> {
  const built = await goBuild(path.join(FIXTURES, 'go-hello'), ['main.go', 'go.mod'], 'app');
  if (typeof built === 'string') return built;
  // the prebuilt binary is deployed as is: the build step only checks it is there
  return { name: 'go', dir: built.dir, bare: ['./app'], settings: { runtime: 'go', buildCommand: 'test -x app', startCommand: './app' }, cleanup: built.cleanup };
}

export function nodeApp(): ColdApp {
  return { name: 'node', dir: path.join(FIXTURES, 'node-hello'), bare: ['node', 'app.js'], settings: { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js' } };
}

/**
 * The python runtime's defaults: a venv (system site packages) made by the build, `python app.py`.
 * The bare spawn runs the same: a venv made the same way from the same interpreter (a venv's
 * python starts ~5 ms slower than the system one, which is not the platform's doing).
 */
export async function preparePythonApp(): Promise<ColdApp | string> {
  const python = findToolchain('python');
  if (!python.binary) return python.missing ?? 'python3 not found';
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-py-'));
  const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(python.binary!, ['-m', 'venv', '--system-site-packages', '--without-pip', path.join(root, '.venv')], { timeout: 60_000 }, (err, _out, stderr) =>
        err ? reject(new Error(`python3 -m venv failed: ${stderr || err.message}`)) : resolve(),
      ),
    );
  } catch (err) {
    cleanup();
    return (err as Error).message;
  }
  return { name: 'python', dir: path.join(FIXTURES, 'python-hello'), bare: [path.join(root, '.venv/bin/python'), 'app.py'], settings: { runtime: 'python' }, cleanup };
}

/** an app deployed for the cold-start rounds */
interface ColdService {
  app: ColdApp;
  service: string;
  host: string;
  cellhost: number[];
  bare: number[];
  platformCpuMs: number[];
  appCpuMs: number[];
}

/**
 * Every app's cold start, the apps taking turns within each round (node, python, go, then the
 * next round in another order), and each cellhost start right beside the same app's bare spawn:
 * a figure is the median of its rounds, and the overhead is taken per round, start against the
 * spawn next to it. Per start, the CPU the platform process spent (request in → response out,
 * from /proc) and the CPU the new instance spent up to its first answer (its cgroup).
 */
export async function benchColdStarts(platform: BenchPlatform, apps: ColdApp[], log: (line: string) => void = () => {}): Promise<Map<ColdApp['name'], ColdStartResult>> {
  const services: ColdService[] = [];
  for (const app of apps) {
    const service = `cold-${app.name}`;
    await platform.deploy(service, app.dir, { ...app.settings, idleTimeoutS: 0.1 });
    services.push({ app, service, host: `${service}.localhost`, cellhost: [], bare: [], platformCpuMs: [], appCpuMs: [] });
  }
  // round 0 warms both paths (page cache, the platform's JIT) and is not counted
  for (let i = 0; i <= RUNS; i++) {
    for (let k = 0; k < services.length; k++) {
      const c = services[(i + k) % services.length]!;
      await waitScaledToZero(platform, c.service);
      // a request does not arrive the instant a service scaled to zero: give the platform the
      // moment it takes to prepare the service's standby (the next instance, short of the app)
      await sleep(STANDBY_SETTLE_MS);
      const cpu0 = readCpuNs(platform.pid);
      const t0 = performance.now();
      const status = await getViaRouter(platform.routerPort, c.host, false, 20_000);
      const ms = performance.now() - t0;
      const platformCpuMs = (readCpuNs(platform.pid) - cpu0) / 1e6;
      if (status !== 200) throw new Error(`cellhost answered ${status} for ${c.service}`);
      const inst = (await platform.service(c.service)).instances?.[0];
      const appCpuMs = inst ? readInstanceCpuMs(platform.cgroupPrefix, inst.id) : null;
      const b = await spawnBare(c.app);
      if (i > 0) {
        c.cellhost.push(ms);
        c.bare.push(b);
        c.platformCpuMs.push(platformCpuMs);
        if (appCpuMs !== null) c.appCpuMs.push(appCpuMs);
      }
    }
    log(`cold start: round ${i} of ${RUNS}${i === 0 ? ' (warm-up)' : ''}: ${services.map((c) => `${c.app.name} ${c.cellhost.at(-1)?.toFixed(1) ?? '-'} ms`).join(', ')}`);
  }
  const out = new Map<ColdApp['name'], ColdStartResult>();
  for (const c of services) {
    // the last RUNS starts are the measured ones (the first was the warm-up)
    const starts = (await readColdStartEvents(platform, c.service)).slice(-RUNS);
    out.set(c.app.name, {
      app: c.app.name,
      runs: RUNS,
      bare: summarize(c.bare),
      cellhost: summarize(c.cellhost),
      overhead: summarize(paired(c.cellhost, c.bare, (a, b) => a - b)),
      instanceStartMs: median(starts),
      platformCpuMs: summarize(c.platformCpuMs),
      appCpuMs: summarize(c.appCpuMs),
    });
  }
  return out;
}
