// The platform under test as its own process: the executable users run (`dist/cellhost serve`,
// built by `npm run bench` first), so its event loop, RSS and CPU are its own and not shared
// with the load generators in this process.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { packDirectory } from '../../builder/sources/index.ts';
import { TOKEN } from '../helpers/server.ts';
import { benchServerNames } from '../helpers/server-names.ts';
import { freePortSync, fromSource, spawnServer, type ChildServer } from '../helpers/subprocess-server.ts';
import { stopChild } from './child.ts';
import { sleep } from './stats.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';
export const EXECUTABLE = path.resolve(import.meta.dirname, '../../dist/cellhost');
// BENCH_FROM_SOURCE=1: `node --import tsx runtime/main.ts` instead, e.g. to profile with NODE_OPTIONS;
// BENCH_NODE_ARGS then go on node's own command line (V8 flags NODE_OPTIONS refuses, which the
// executable cannot take at all)
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const COMMAND = process.env.BENCH_FROM_SOURCE === '1' ? fromSource(NODE_ARGS) : [EXECUTABLE];

export interface BenchPlatform {
  pid: number;
  routerPort: number;
  adminUrl: string;
  dataDir: string;
  cgroupPrefix: string;
  api<T = any>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
  /** create the service and deploy a directory (or a ready tar.gz); resolves with the deployment once it is live */
  deploy(service: string, source: string | Uint8Array, settings: Record<string, unknown>): Promise<any>;
  service(name: string): Promise<any>;
  /** stop the platform (SIGTERM, clean stop); returns what it left on the host */
  close(): Promise<{ leftovers: string[] }>;
}

let started = 0;

export async function startPlatform(env: Record<string, string> = {}): Promise<BenchPlatform> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-'));
  // unique per platform: a start reclaims leftovers under its own names (cgroups, namespaces,
  // veths, firewall table, run dir), never another platform's or test's
  const names = benchServerNames(process.pid, ++started);
  const cgroupPrefix = names.CELLHOST_CGROUP_PREFIX!;
  const netnsPrefix = names.CELLHOST_NETNS_PREFIX!;
  const hostRunDir = names.CELLHOST_HOST_RUN_DIR!;
  let child: ChildServer;
  try {
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    child = await spawnServer(dataDir, ports, {
      ...names,
      CELLHOST_NETNS_SUBNET: `10.223.${process.pid % 250}.0/24`,
      CELLHOST_LOG_LEVEL: 'warn',
      CELLHOST_SHUTDOWN_GRACE_MS: '2000',
      // e.g. --perf-basic-prof, so that perf names the executable's JavaScript
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      ...env,
    }, COMMAND);
  } catch (err) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const proc = child.proc;
  const routerPort = Number(new URL(child.routerUrl).port);

  const api: BenchPlatform['api'] = async (method, p, body, headers = {}) => {
    const isBytes = body instanceof Uint8Array;
    const res = await fetch(child.adminUrl + p, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && !isBytes ? { 'content-type': 'application/json' } : {}), ...headers },
      body: (body === undefined ? undefined : isBytes ? body : JSON.stringify(body)) as BodyInit | undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed as any };
  };

  async function deploy(service: string, source: string | Uint8Array, settings: Record<string, unknown>): Promise<any> {
    const created = await api('POST', '/api/v1/services', { name: service, ...settings });
    if (created.status !== 201) throw new Error(`creating ${service}: ${created.status} ${JSON.stringify(created.body)}`);
    const archive = typeof source === 'string' ? await packDirectory(source) : source;
    const res = await api('POST', `/api/v1/services/${service}/deployments`, new Uint8Array(archive), { 'content-type': 'application/gzip' });
    if (res.status !== 202) throw new Error(`deploying ${service}: ${res.status} ${JSON.stringify(res.body)}`);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { body } = await api('GET', `/api/v1/deployments/${res.body.id}`);
      if (body.status === 'live') return body;
      if (!['queued', 'building', 'ready'].includes(body.status)) {
        const log = await api('GET', `/api/v1/deployments/${res.body.id}/logs`);
        throw new Error(`deployment of ${service} ended ${body.status}: ${JSON.stringify(body.error)}\n${typeof log.body === 'string' ? log.body.slice(-2000) : ''}`);
      }
      if (Date.now() > deadline) throw new Error(`deployment of ${service} still ${body.status} after 120 s`);
      await sleep(50);
    }
  }

  async function close(): Promise<{ leftovers: string[] }> {
    await stopChild(proc, 15_000);
    fs.rmSync(dataDir, { recursive: true, force: true });
    return { leftovers: [...removeLeftoverCgroups(cgroupPrefix), ...findLeftoverNetwork(netnsPrefix), ...(fs.existsSync(hostRunDir) ? [hostRunDir] : [])] };
  }

  return {
    pid: proc.pid!,
    routerPort,
    adminUrl: child.adminUrl,
    dataDir,
    cgroupPrefix,
    api,
    deploy,
    service: async (name) => (await api('GET', `/api/v1/services/${name}`)).body,
    close,
  };
}

/** a clean stop removes its cgroups; whatever is still there is named and removed (empty ones only) */
function removeLeftoverCgroups(prefix: string): string[] {
  const left: string[] = [];
  let controllers: string[] = [];
  try {
    controllers = fs.readdirSync(CGROUP_ROOT);
  } catch {
    return left;
  }
  for (const c of controllers) {
    const dir = path.join(CGROUP_ROOT, c, prefix);
    if (!fs.existsSync(dir)) continue;
    left.push(dir);
    // cgroupfs directories go with rmdir (their files cannot be unlinked), and only when empty
    for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
      if (sub.isDirectory()) tryRmdir(path.join(dir, sub.name));
    }
    tryRmdir(dir);
  }
  return left;
}

/** namespaces and host-side veths named with the prefix (`<prefix>-ns<i>`, `<prefix>-v<i>`) */
function findLeftoverNetwork(prefix: string): string[] {
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir).filter((name) => name.startsWith(`${prefix}-`)).map((name) => path.join(dir, name));
    } catch {
      return [];
    }
  };
  return [...list('/run/netns'), ...list('/sys/class/net')];
}

function tryRmdir(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // a process is still in it: the caller reports the group
  }
}

/** one GET through the router with a Host header, on its own connection unless an agent is given */
export function getViaRouter(port: number, host: string, agent: http.Agent | false = false, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
