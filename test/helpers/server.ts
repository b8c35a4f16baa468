// Starts the real platform in-process on free ports with a temp data dir, and talks to it.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../../builder/sources/index.ts';
import { loadConfig } from '../../runtime/core/config.ts';
import { silentLogger } from '../../runtime/core/log.ts';
import { startServer, type RunningServer } from '../../runtime/server.ts';
import { responseCheckerFor } from './openapi-check.ts';
import { testServerNames } from './server-names.ts';
import { claimTestSubnet } from './subnets.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/apps', import.meta.url));
export const TOKEN = 'test-admin-token-0123456789';

export interface TestServer extends RunningServer {
  dataDir: string;
  cgroupPrefix: string;
  /** the CELLHOST_* names this server's isolation uses (cgroup and netns prefixes, subnet, host run dir) */
  isolation: Readonly<Record<string, string>>;
  /** close, keeping the data dir (close() removes a data dir it made) */
  stop(): Promise<void>;
  api<T = any>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
  /** request through the router with a Host header */
  app(service: string, p?: string, init?: { headers?: Record<string, string>; method?: string }): Promise<{ status: number; text: string; json: any; headers: Headers }>;
  /** create (if needed) and deploy a fixture dir, wait until the deployment ends (60 s unless told); returns it */
  deploy(service: string, dir: string, settings?: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<any>;
  waitDeployment(id: string, timeoutMs?: number): Promise<any>;
  /**
   * a live service whose app fails to start (exits, never listens): a deploy would not go live
   * (its start check fails), so the fixture is deployed with a stand-in start command that
   * serves, then switched to `settings.startCommand`, which a settings change does not check.
   * Returns the deployment, live. Node runtime: the stand-in is a node one-liner.
   */
  deployFailing(service: string, dir: string, settings: { startCommand: string } & Record<string, unknown>): Promise<any>;
  restart(): Promise<TestServer>;
}

export function tempDir(prefix = 'cellhost-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export type AdminApi = <T = any>(method: string, p: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: T; headers: Headers }>;

/**
 * the management API with the admin token: JSON in (or raw bytes), JSON or text out. Every
 * response is checked against the OpenAPI document the platform serves: a route, status, media
 * type or body the document does not describe fails the test.
 */
export function adminApi(baseUrl: () => string): AdminApi {
  return async (method, p, body, headers = {}) => {
    const isBuffer = body instanceof Uint8Array;
    const url = baseUrl() + p;
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && !isBuffer ? { 'content-type': 'application/json' } : {}), ...headers },
      body: (body === undefined ? undefined : isBuffer ? body : typeof body === 'string' ? body : JSON.stringify(body)) as BodyInit | undefined,
    });
    const text = await res.text();
    const check = await responseCheckerFor(baseUrl());
    check({ method, path: new URL(url).pathname, status: res.status, contentType: res.headers.get('content-type'), text });
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // a text body
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
}

let serverCount = 0;

/**
 * Names no real platform on this host uses, and no other test server alive at the same time:
 * each server's start reclaims whatever is left under its own cgroup and netns names.
 */
function isolationEnv(): Record<string, string> {
  return { ...testServerNames(process.pid, serverCount++ % 8), CELLHOST_NETNS_SUBNET: claimTestSubnet() };
}

interface StartOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** set on restart: the same names as before, so leftovers are found */
  isolation?: Record<string, string>;
  ownsDataDir?: boolean;
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const ownsDataDir = opts.ownsDataDir ?? !opts.dataDir;
  const isolation = opts.isolation ?? isolationEnv();
  const config = loadConfig({
    env: {
      CELLHOST_DATA: dataDir,
      CELLHOST_HTTP_ADDR: '127.0.0.1:0',
      CELLHOST_ADMIN_ADDR: '127.0.0.1:0',
      CELLHOST_ADMIN_TOKEN: TOKEN,
      CELLHOST_START_TIMEOUT_MS: '5000',
      CELLHOST_QUEUE_TIMEOUT_MS: '3000',
      CELLHOST_SHUTDOWN_GRACE_MS: '2000',
      // prewarmed instances (on in the product) leave a frozen app behind every scale to zero and
      // start apps ahead of requests; the tests that count processes and cold starts predate them,
      // and the prewarm tests turn them on with a budget of their own
      CELLHOST_PREWARM_MB: '0',
      ...isolation,
      ...opts.env,
    },
  });
  let server: RunningServer;
  try {
    server = await startServer(config, { log: silentLogger, announce: () => {} });
  } catch (err) {
    // a platform that did not start (a port taken, say) leaves no close() to the test: the data
    // dir made here goes now, or every such failure left one in /tmp (one the test passed in
    // stays: it may start a platform on it again)
    if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const api = adminApi(() => server.adminUrl);
  // in CI every protection is there to be had: a server that came up without one says why, so a
  // test that fails for want of it shows the cause (the platform's own log is silent here)
  if (process.env.CI === 'true' && !opts.env?.CELLHOST_ISOLATION) {
    const { body } = await api('GET', '/api/v1/health');
    const off = Object.entries(body.isolation.features as Record<string, boolean>).filter(([, on]) => !on);
    if (off.length) console.warn(`test server (${dataDir}) without ${off.map(([f]) => f).join(', ')}: ${(body.isolation.reasons as string[]).join('; ')}`);
  }
  const waitDeployment = async (id: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await api('GET', `/api/v1/deployments/${id}`);
      if (!['queued', 'building'].includes(body.status)) return body;
      if (Date.now() > deadline) throw new Error(`deployment ${id} still ${body.status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const t: TestServer = {
    ...server,
    dataDir,
    api,
    app: (service, p = '/', init = {}) => requestRouter(server.routerUrl, `${service}.localhost`, p, init),
    async deploy(service, dir, settings = {}, opts = {}) {
      const existing = await api('GET', `/api/v1/services/${service}`);
      if (existing.status === 404) {
        const created = await api('POST', '/api/v1/services', { name: service, runtime: 'node', ...settings });
        if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
      } else if (Object.keys(settings).length) {
        await api('PATCH', `/api/v1/services/${service}`, settings);
      }
      const archive = await packDirectory(dir);
      const res = await api('POST', `/api/v1/services/${service}/deployments`, new Uint8Array(archive), { 'content-type': 'application/gzip' });
      if (res.status !== 202) throw new Error(`deploy failed: ${JSON.stringify(res.body)}`);
      return waitDeployment(res.body.id, opts.timeoutMs);
    },
    waitDeployment,
    async deployFailing(service, dir, settings) {
      const serves = `node -e 'require("http").createServer((q, s) => s.end()).listen(Number(process.env.PORT))'`;
      const dep = await t.deploy(service, dir, { ...settings, startCommand: serves });
      if (dep.status !== 'live') throw new Error(`deploy of ${service} with a stand-in start command: ${dep.status} ${JSON.stringify(dep.error)}`);
      const patched = await api('PATCH', `/api/v1/services/${service}`, { startCommand: settings.startCommand });
      if (patched.status !== 200) throw new Error(`switching ${service}'s start command: ${JSON.stringify(patched.body)}`);
      return dep;
    },
    async restart() {
      await server.close();
      return startTestServer({ ...opts, dataDir, isolation, ownsDataDir });
    },
    async close() {
      await server.close();
      if (ownsDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
    stop: () => server.close(),
    cgroupPrefix: config.cgroupPrefix,
    isolation: Object.freeze({ ...isolation }),
  };
  return t;
}

/** fetch() cannot set Host, so requests to the router go through node:http */
export function requestRouter(
  routerUrl: string,
  host: string,
  p: string,
  init: { headers?: Record<string, string>; method?: string; body?: string | Buffer } = {},
): Promise<{ status: number; text: string; json: any; headers: Headers }> {
  const url = new URL(routerUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: p, method: init.method ?? 'GET', headers: { host, ...init.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON
          }
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve({ status: res.statusCode ?? 0, text, json, headers });
        });
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** host pids of a service's instances (the sandbox's outermost process: when it is gone, so is the app) */
export async function instancePids(server: TestServer, service: string): Promise<number[]> {
  const { body } = await server.api('GET', `/api/v1/services/${service}`);
  return (body.instances ?? []).map((i: { pid: number }) => i.pid).filter((p: number) => p > 0);
}

/** running, not a zombie: orphans reparented to a PID 1 that does not reap stay as zombies */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<Exclude<T, null | undefined | false | 0 | ''>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, null | undefined | false | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}

/**
 * Waits until a build has printed `line` as a whole line of its log. The log repeats the build
 * command in its header before the build runs, so a substring of the command (`echo building`)
 * is in it early: matching a substring raced the build's own start.
 */
export async function waitForBuildLine(api: AdminApi, deploymentId: string, line: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => String((await api('GET', `/api/v1/deployments/${deploymentId}/logs`)).body).split(/\r?\n/).some((l) => l.trim() === line),
    { timeoutMs, what: `the build to print "${line}"` },
  );
}
