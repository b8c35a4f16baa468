// Real builds of each runtime, answered through the router: Express from the npm
// registry, Flask from requirements.txt, Rust with std only; a build that fails with the tool's
// own error; the build log followed live; rollback under continuous requests.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkToolchain, findMissingToolchain } from '../../builder/runtimes/index.ts';
import { packDirectory } from '../../builder/sources/index.ts';
import { runtimePathEnv } from '../../runtime/sandbox/runtime-env.ts';
import { findToolchain } from '../../runtime/sandbox/toolchains.ts';
import { FIXTURES, startTestServer, TOKEN, type TestServer } from '../helpers/server.ts';
import { readSse } from '../../runtime/cli/client/client.ts';

const isCI = process.env.CI === 'true';
/** a toolchain missing on a laptop skips its test; in CI the test runs and fails, naming it */
const lacks = (runtime: 'node' | 'python' | 'go' | 'rust') => !isCI && findMissingToolchain(runtime).length > 0;

let server: TestServer;
let sandboxed = false;
beforeAll(async () => {
  server = await startTestServer();
  const health = await server.api('GET', '/api/v1/health');
  sandboxed = health.body.isolation.features.sandbox === true;
  if (!sandboxed && isCI) throw new Error(`builds-runtimes needs the sandbox in CI: ${health.body.isolation.reasons.join('; ')}`);
});
afterAll(async () => {
  await server?.close();
});

/** the build log without its colours (tools colour their own words, e.g. cargo's "Finished") */
const logOf = async (id: string): Promise<string> => ((await server.api('GET', `/api/v1/deployments/${id}/logs`)).body as string).replace(/\x1b\[[0-9;]*m/g, '');

/** the deployment's log when it did not end as expected, so a failure says why */
async function expectStatus(dep: { id: string; status: string }, status: string): Promise<void> {
  if (dep.status !== status) expect(`${dep.status}\n${(await logOf(dep.id)).slice(-3000)}`).toBe(status);
}

describe('toolchain check', () => {
  it('finds rust (Debian\'s cargo under /usr, or rustup\'s default toolchain through ~/.cargo/bin), as the sandbox does', ({ skip }) => {
    const rust = findToolchain('rust');
    if (!rust.binary) {
      if (isCI) throw new Error(`rust is needed in CI: ${rust.missing}`);
      skip();
    }
    expect(() => checkToolchain('rust')).not.toThrow();
    // the direct launchers see the same dirs first on PATH
    expect(runtimePathEnv('rust', '/app').PATH!.split(':').slice(0, rust.pathDirs.length)).toEqual(rust.pathDirs);
  });

  it('names the Debian package when a toolchain is absent', () => {
    const nowhere = [path.join(FIXTURES, 'no-such-dir')];
    expect(() => checkToolchain('rust', nowhere)).toThrow(/needs "cargo" on the host: install it \(apt-get install cargo\)/);
    expect(() => checkToolchain('go', nowhere)).toThrow(/apt-get install golang-go/);
    expect(() => checkToolchain('node', nowhere)).toThrow(/"node" and "npm".*apt-get install nodejs npm/);
  });
});

describe('runtimes, built and served', () => {
  it.skipIf(lacks('node'))('node: Express with the default `npm install` from the registry', async () => {
    const dep = await server.deploy('express', path.join(FIXTURES, 'node-express'), { runtime: 'node' });
    await expectStatus(dep, 'live');
    const log = await logOf(dep.id);
    expect(log).toContain('npm install');
    expect(log).toMatch(/added \d+ packages/);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id, 'node_modules', 'express', 'package.json'))).toBe(true);
    const r = await server.app('express');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('express');
    expect(r.json.version).toMatch(/^4\./);
  });

  it.skipIf(lacks('python'))('python: Flask from requirements.txt (Debian python3-flask) under `gunicorn -w 1 -b :8080 app:app`', async ({ skip }) => {
    // a fixed port works only with a network namespace per instance
    if (!sandboxed) skip();
    const dep = await server.deploy('flaskreq', path.join(FIXTURES, 'python-flask-requirements'), { runtime: 'python', startCommand: 'gunicorn -w 1 -b :8080 app:app' });
    await expectStatus(dep, 'live');
    const log = await logOf(dep.id);
    expect(log).toContain('pip install -r requirements.txt');
    expect(log).toMatch(/Requirement already satisfied: flask/i);
    const r = await server.app('flaskreq');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ hello: 'flask', venv: '/app/.venv' });
  });

  it.skipIf(lacks('rust'))('rust: std-only HTTP server, `cargo build --release`, started as the built binary (no start command set)', async () => {
    const dep = await server.deploy('rusty', path.join(FIXTURES, 'rust-hello'), { runtime: 'rust' });
    await expectStatus(dep, 'live');
    const log = await logOf(dep.id);
    expect(log).toContain('cargo build --release');
    // cargo's own summary: "Finished release [optimized]" (Debian's 0.66), "Finished `release` profile [optimized]" (later)
    expect(log).toMatch(/Finished `?release`?( profile)? \[optimized\]/);
    expect(fs.existsSync(path.join(server.dataDir, 'images', dep.id, 'target', 'release', 'rust-hello'))).toBe(true);
    const r = await server.app('rusty');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('rust');
  });
});

describe('a failing build', () => {
  it.skipIf(lacks('go'))('ends failed with the compiler\'s own error in its log; the previous deployment keeps answering', async () => {
    const good = await server.deploy('gofail', path.join(FIXTURES, 'go-hello'), { runtime: 'go' });
    await expectStatus(good, 'live');
    expect((await server.app('gofail')).json.hello).toBe('go');

    const bad = await server.deploy('gofail', path.join(FIXTURES, 'go-broken'));
    expect(bad.status).toBe('failed');
    expect(bad.error.code).toBe('ERR_BUILD_FAILED');
    const log = await logOf(bad.id);
    expect(log).toMatch(/main\.go:5:2: undefined: foo/);
    expect(log.trim().split('\n').pop()).toContain('Build failed: the build command failed (exit code');
    expect(fs.existsSync(path.join(server.dataDir, 'images', bad.id))).toBe(false);

    const service = (await server.api('GET', '/api/v1/services/gofail')).body;
    expect(service.liveDeploymentId).toBe(good.id);
    const r = await server.app('gofail');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('go');
  });
});

describe('live build log', () => {
  it('a follower sees each line while the build runs, not all at the end', async () => {
    const ticks = 6;
    await server.api('POST', '/api/v1/services', {
      name: 'ticker',
      runtime: 'node',
      buildCommand: `for i in $(seq ${ticks}); do echo "tick $i"; sleep 0.3; done`,
    });
    const res = await server.api('POST', '/api/v1/services/ticker/deployments', new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-hello'))), {
      'content-type': 'application/gzip',
    });
    expect(res.status).toBe(202);
    const id = res.body.id;

    const follow = await fetch(`${server.adminUrl}/api/v1/deployments/${id}/logs?follow=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(30_000),
    });
    expect(follow.headers.get('content-type')).toContain('text/event-stream');
    const arrivals = new Map<number, number>();
    let endedAt = 0;
    let statusAtFirstTick: Promise<string> | null = null;
    // the CLI's own SSE reader, each event stamped with its arrival
    await readSse(follow, (event, data) => {
      const at = performance.now();
      if (event === 'end') {
        endedAt = at;
        return;
      }
      for (const m of (JSON.parse(data) as string).matchAll(/tick (\d+)/g)) {
        const n = Number(m[1]);
        if (!arrivals.has(n)) arrivals.set(n, at);
        statusAtFirstTick ??= server.api('GET', `/api/v1/deployments/${id}`).then((r) => r.body.status);
      }
    });

    expect([...arrivals.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: ticks }, (_, i) => i + 1));
    // the build printed a line every 300 ms: each arrived on its own, about that far apart
    const times = [...arrivals.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.min(...gaps)).toBeGreaterThan(150);
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(1200);
    expect(endedAt - times[0]!).toBeGreaterThan(1200);
    expect(await statusAtFirstTick).toBe('building');
    const dep = await server.waitDeployment(id);
    await expectStatus(dep, 'live');
  });
});

describe('rollback', () => {
  it('promoting the previous image under continuous requests: no failed request, then the old version answers', async () => {
    const dir = path.join(FIXTURES, 'node-version');
    const v1 = await server.deploy('versions', dir, { runtime: 'node', buildCommand: 'echo v1 > version.txt' });
    await expectStatus(v1, 'live');
    const v2 = await server.deploy('versions', dir, { buildCommand: 'echo v2 > version.txt' });
    await expectStatus(v2, 'live');
    expect((await server.app('versions')).json.version).toBe('v2');

    interface Sample {
      sentAt: number;
      doneAt: number;
      status: number;
      version: string | null;
      error?: string;
    }
    const samples: Sample[] = [];
    const deadline = performance.now() + 15_000;
    let stopAt = Infinity;
    const loop = async () => {
      // bounded in count and time: stops 1 s after the rollback, or at the deadline
      while (samples.length < 5000 && performance.now() < Math.min(deadline, stopAt)) {
        const sentAt = performance.now();
        try {
          const r = await server.app('versions');
          samples.push({ sentAt, doneAt: performance.now(), status: r.status, version: r.json?.version ?? null });
        } catch (err) {
          samples.push({ sentAt, doneAt: performance.now(), status: 0, version: null, error: (err as Error).message });
        }
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    await new Promise((r) => setTimeout(r, 300));
    const promoteSentAt = performance.now();
    const promoted = await server.api('POST', `/api/v1/deployments/${v1.id}/promote`);
    stopAt = performance.now() + 1000;
    await Promise.all(loops);

    expect(promoted.status).toBe(200);
    expect(promoted.body.status).toBe('live');
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    const before = samples.filter((s) => s.doneAt < promoteSentAt);
    expect(before.length).toBeGreaterThan(10);
    expect(new Set(before.map((s) => s.version))).toEqual(new Set(['v2']));
    // the old image's instance starts while the warm one keeps answering; once it has answered,
    // every request sent later gets it
    const old = samples.filter((s) => s.version === 'v1');
    expect(old.length).toBeGreaterThan(10);
    const firstOldAnswer = Math.min(...old.map((s) => s.doneAt));
    expect(samples.filter((s) => s.sentAt > firstOldAnswer && s.version !== 'v1')).toEqual([]);
    expect((await server.app('versions')).json.version).toBe('v1');
    expect((await server.api('GET', `/api/v1/deployments/${v2.id}`)).body.status).toBe('superseded');
  });
});

describe('without isolation (the direct launchers)', () => {
  let direct: TestServer | undefined;
  afterAll(async () => {
    await direct?.close();
  });

  it.skipIf(lacks('rust'))('the host\'s rust toolchain (under /usr or a rustup one outside it) is on PATH for the build and the binary runs', async () => {
    direct = await startTestServer({ env: { CELLHOST_ISOLATION: 'off' } });
    const dep = await direct.deploy('rusty', path.join(FIXTURES, 'rust-hello'), { runtime: 'rust' });
    if (dep.status !== 'live') expect(`${dep.status}\n${(await direct.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body}`).toBe('live');
    const r = await direct.app('rusty');
    expect(r.status).toBe(200);
    expect(r.json.hello).toBe('rust');
  });
});
