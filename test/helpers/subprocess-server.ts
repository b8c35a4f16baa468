// The platform as a real child process (`cellhost serve` from source), for tests that kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOKEN } from './server.ts';
import { childServerNames } from './server-names.ts';
import { claimTestSubnet } from './subnets.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** the first port the kernel hands out for outgoing connections (and for a listen on port 0) */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => {
      const { port: got } = s.address() as net.AddressInfo;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A loopback port free now, for a server started next. Chosen below the ephemeral range: a port
 * the kernel picked (listen on 0) can be taken as the local port of an outgoing connection before
 * the server binds it, and a bench's wrk makes thousands (a platform failed to start with
 * EADDRINUSE so). The port is still only free when looked at: callers bind it at once; it is
 * never handed out twice by one process.
 */
export async function freePortSync(): Promise<number> {
  const low = ephemeralLow();
  const from = Math.max(1024, low - 20_000);
  for (let i = 0; i < 40; i++) {
    const pick = from + Math.floor(Math.random() * (low - from));
    if (handedOut.has(pick)) continue;
    const port = await tryListen(pick);
    if (port !== null) return handOut(port);
  }
  const any = await tryListen(0);
  if (any === null) throw new Error('no free loopback port');
  return handOut(any);
}

// Ports this process has handed out: a test takes several before it binds any (the platform's
// two listeners, then Pebble's four), and a random pick that met one of them still unbound
// gave two servers the same port (the platform then failed with EADDRINUSE).
const handedOut = new Set<number>();

function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

export interface ChildServer {
  proc: ChildProcess;
  adminUrl: string;
  routerUrl: string;
  output(): string;
  exited: Promise<number | null>;
}

/** how the platform is started: from source by default; the benchmarks run the built executable */
export const fromSource = (nodeArgs: readonly string[] = []) => [process.execPath, ...nodeArgs, '--import', 'tsx', path.join(ROOT, 'runtime/main.ts')];
const FROM_SOURCE = fromSource();

/**
 * The platform gets SIGTERM when the process that started it dies, however it dies (a vitest
 * worker killed at a timeout, a bench killed with kill -9): it then stops as on any SIGTERM,
 * removing its instances and cgroups, instead of running on as an orphan that no later run
 * reclaims (leftovers.ts leaves a live platform alone). setpriv (util-linux) sets the signal and
 * execs the platform, so the child's pid is the platform's.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f));
const WITH_PARENT = SETPRIV ? [SETPRIV, '--pdeathsig', 'TERM'] : [];

let processSubnet: string | null = null;

export async function spawnServer(dataDir: string, ports: { http: number; admin: number }, env: Record<string, string> = {}, command: string[] = FROM_SOURCE): Promise<ChildServer> {
  let out = '';
  // one per process, as the other names are: a restart finds what the last run left
  const subnet = env.CELLHOST_NETNS_SUBNET ?? (processSubnet ??= claimTestSubnet());
  const argv = [...WITH_PARENT, ...command, 'serve'];
  const proc = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CELLHOST_DATA: dataDir,
      CELLHOST_HTTP_ADDR: `127.0.0.1:${ports.http}`,
      CELLHOST_ADMIN_ADDR: `127.0.0.1:${ports.admin}`,
      CELLHOST_ADMIN_TOKEN: TOKEN,
      ...childServerNames(process.pid),
      CELLHOST_NETNS_SUBNET: subnet,
      CELLHOST_LOG_FORMAT: 'json',
      // as in server.ts: prewarmed instances only where a test (or bench row) asks for them
      CELLHOST_PREWARM_MB: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const adminUrl = `http://127.0.0.1:${ports.admin}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited: ${out}`);
    const ok = await fetch(adminUrl + '/api/v1/health').then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, adminUrl, routerUrl: `http://127.0.0.1:${ports.http}`, output: () => out, exited };
}

/** stops a child platform the way a user does (SIGTERM) and waits for it, if it still runs */
export async function stopServer(server: ChildServer | null | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!server || server.proc.exitCode !== null) return;
  server.proc.kill(signal);
  await server.exited;
}
