// Builds behind a mirror: Python apps whose requirements come from the package index the host's
// pip is configured for (a local index on disk here), installed through the real build sandbox,
// then served: FastAPI under uvicorn with a streaming response, Django under gunicorn. The same
// index reached the other ways: CELLHOST_BUILD_ENV and CELLHOST_BUILD_BINDS with the host's
// configuration switched off, and nothing at all without either.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBuildSetup, type PlatformBuildSetup } from '../../builder/build-setup.ts';
import { parseIni } from '../../builder/host-config.ts';
import { findMissingToolchain } from '../../builder/runtimes/index.ts';
import { loadConfig } from '../../runtime/core/config.ts';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';

/**
 * The host's package index, found as the product finds it: the pip configuration the platform
 * user has, and the local dirs it names. None: these tests cannot run (a failure in CI).
 */
async function findHostIndex(): Promise<{ setup: PlatformBuildSetup; reason?: string }> {
  const config = loadConfig({ env: process.env, cwd: '/tmp' });
  const setup = await resolveBuildSetup({ env: {}, binds: [], hostConfig: config.buildHostConfig, forbidden: [] });
  if (findMissingToolchain('python').length) return { setup, reason: 'python3 with python3-venv and python3-pip is not installed (.ci/install-deps.sh installs it)' };
  if (!setup.files.some((f) => f.tool === 'pip') || !setup.binds.length) {
    return { setup, reason: "the host's pip is not configured for a local package index (pip config list shows none with a file:// index or find-links dir): these tests install fastapi, uvicorn, django and gunicorn from it" };
  }
  return { setup };
}

/**
 * pip tries the public index too (it is the default index-url) and, where that is unreachable,
 * retries it five times per package with pauses: a FastAPI install took 112 s that way. A
 * platform setting passed to every build, as an operator would set it on such a host.
 */
const QUICK_PIP = { CELLHOST_BUILD_ENV: 'PIP_RETRIES=0' };
const BUILD_TIMEOUT_MS = 240_000;

let server: TestServer;
let setup: PlatformBuildSetup;
let skipReason: string | undefined;

beforeAll(async () => {
  const found = await findHostIndex();
  setup = found.setup;
  skipReason = found.reason;
  if (skipReason && isCI) throw new Error(`builds behind a mirror: ${skipReason}`);
  if (skipReason) return;
  server = await startTestServer({ env: { ...QUICK_PIP, CELLHOST_BUILD_TIMEOUT_S: '240', CELLHOST_START_TIMEOUT_MS: '20000' } });
  const health = await server.api('GET', '/api/v1/health');
  if (!health.body.isolation.features.sandbox && isCI) throw new Error(`builds behind a mirror need the sandbox in CI: ${health.body.isolation.reasons.join('; ')}`);
});
afterAll(async () => {
  await server?.close();
});

const logOf = async (s: TestServer, id: string): Promise<string> => ((await s.api('GET', `/api/v1/deployments/${id}/logs`)).body as string).replace(/\x1b\[[0-9;]*m/g, '');

async function expectLive(s: TestServer, dep: { id: string; status: string }): Promise<void> {
  if (dep.status !== 'live') expect(`${dep.status}\n${(await logOf(s, dep.id)).slice(-4000)}`).toBe('live');
}

/** a package installed into the image's venv (not the host's system packages) */
function installedInImage(s: TestServer, deploymentId: string, pkg: string): boolean {
  const lib = path.join(s.dataDir, 'images', deploymentId, '.venv', 'lib');
  return fs.readdirSync(lib).some((py) => fs.existsSync(path.join(lib, py, 'site-packages', pkg, '__init__.py')));
}

/** the body's chunks with their arrival times, as the client's socket delivers them */
function readChunks(s: TestServer, host: string, p: string): Promise<{ status: number; chunks: { at: number; text: string }[] }> {
  const url = new URL(s.routerUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: p, headers: { host }, agent: false }, (res) => {
      const chunks: { at: number; text: string }[] = [];
      res.on('data', (b: Buffer) => chunks.push({ at: performance.now(), text: b.toString() }));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, chunks }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('stream timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('Python apps from the host\'s package index, through the build sandbox', () => {
  it('FastAPI under uvicorn: installed from requirements.txt, its streaming response delivered chunk by chunk', async ({ skip }) => {
    if (skipReason) skip();
    const dep = await server.deploy('fastapi', path.join(FIXTURES, 'python-fastapi'), { runtime: 'python', startCommand: 'uvicorn main:app --host 0.0.0.0 --port $PORT' }, { timeoutMs: BUILD_TIMEOUT_MS });
    await expectLive(server, dep);
    const log = await logOf(server, dep.id);
    expect(log).toContain('pip install -r requirements.txt');
    expect(log).toMatch(/Package-manager configuration from the host \(read-only, readable by the build\): pip /);
    expect(log).toContain(`Host dirs bound read-only: ${setup.binds.join(', ')}`);
    expect(log).toMatch(/Successfully installed .*fastapi-/);
    expect(installedInImage(server, dep.id, 'fastapi')).toBe(true);
    expect(installedInImage(server, dep.id, 'uvicorn')).toBe(true);

    const r = await server.app('fastapi');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ hello: 'fastapi', venv: '/app/.venv' });

    const gap = 400;
    const { status, chunks } = await readChunks(server, 'fastapi.localhost', `/stream?n=4&gap_ms=${gap}`);
    expect(status).toBe(200);
    expect(chunks.map((c) => c.text).join('')).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\n');
    // each chunk on its own, about `gap` after the one before: nothing buffered on the way
    const arrivals = [0, 1, 2, 3].map((i) => chunks.find((c) => c.text.includes(`chunk ${i}`))!.at);
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < 4; i++) expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThan(gap / 2);
  }, BUILD_TIMEOUT_MS + 30_000);

  it('Django under gunicorn: installed from requirements.txt, settings, urls and wsgi only', async ({ skip }) => {
    if (skipReason) skip();
    // `python -m`: where Debian's gunicorn satisfies the requirement, its /usr/bin/gunicorn runs
    // the system python, which does not see the venv's Django
    const dep = await server.deploy('django', path.join(FIXTURES, 'python-django'), { runtime: 'python', startCommand: 'python -m gunicorn -w 1 -b 0.0.0.0:$PORT mysite.wsgi' }, { timeoutMs: BUILD_TIMEOUT_MS });
    await expectLive(server, dep);
    expect(installedInImage(server, dep.id, 'django')).toBe(true);
    const r = await server.app('django', '/some/page');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ hello: 'django', path: '/some/page', venv: '/app/.venv' });
    expect(r.json.django).toMatch(/^\d+\.\d+/);
  }, BUILD_TIMEOUT_MS + 30_000);
});

describe('the same index without the host\'s configuration', () => {
  let bare: TestServer | undefined;
  let passed: TestServer | undefined;
  afterAll(async () => {
    await bare?.close();
    await passed?.close();
  });

  it('CELLHOST_BUILD_HOST_CONFIG=0 and nothing else: pip finds nothing, the build fails with pip\'s own words', async ({ skip }) => {
    if (skipReason) skip();
    bare = await startTestServer({ env: { ...QUICK_PIP, CELLHOST_BUILD_HOST_CONFIG: '0', CELLHOST_BUILD_TIMEOUT_S: '240' } });
    const dep = await bare.deploy('fastapi', path.join(FIXTURES, 'python-fastapi'), { runtime: 'python', startCommand: 'uvicorn main:app --host 0.0.0.0 --port $PORT' }, { timeoutMs: BUILD_TIMEOUT_MS });
    expect(dep.status).toBe('failed');
    expect(dep.error.code).toBe('ERR_BUILD_FAILED');
    const log = await logOf(bare, dep.id);
    expect(log).not.toContain('Package-manager configuration from the host');
    expect(log).toMatch(/No matching distribution found for fastapi/);
  }, BUILD_TIMEOUT_MS + 30_000);

  it('CELLHOST_BUILD_ENV and CELLHOST_BUILD_BINDS reach the same index', async ({ skip }) => {
    if (skipReason) skip();
    // the index as the host's configuration names it, passed the other way
    const pipSettings = setup.files.filter((f) => f.tool === 'pip').flatMap((f) => parseIni(f.data.toString()));
    const links = pipSettings.filter((e) => e.key === 'find-links').map((e) => e.value);
    const indexes = pipSettings.filter((e) => e.key === 'index-url' || e.key === 'extra-index-url').map((e) => e.value);
    const env: Record<string, string> = { PIP_FIND_LINKS: links.join(' '), PIP_EXTRA_INDEX_URL: indexes.join(' ') };
    passed = await startTestServer({
      env: {
        CELLHOST_BUILD_HOST_CONFIG: '0',
        CELLHOST_BUILD_TIMEOUT_S: '240',
        CELLHOST_START_TIMEOUT_MS: '20000',
        // one by name from the platform's environment, one as a pair
        CELLHOST_BUILD_ENV: `PIP_EXTRA_INDEX_URL PIP_FIND_LINKS='${env.PIP_FIND_LINKS}' PIP_RETRIES=0`,
        PIP_EXTRA_INDEX_URL: env.PIP_EXTRA_INDEX_URL!,
        CELLHOST_BUILD_BINDS: setup.binds.join(','),
      },
    });
    const dep = await passed.deploy('fastapi', path.join(FIXTURES, 'python-fastapi'), { runtime: 'python', startCommand: 'uvicorn main:app --host 0.0.0.0 --port $PORT' }, { timeoutMs: BUILD_TIMEOUT_MS });
    await expectLive(passed, dep);
    const log = await logOf(passed, dep.id);
    expect(log).toContain('Build variables from the platform: PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_RETRIES');
    expect(log).toContain(`Host dirs bound read-only: ${setup.binds.join(', ')}`);
    expect((await passed.app('fastapi')).json.hello).toBe('fastapi');
  }, BUILD_TIMEOUT_MS + 30_000);
});
