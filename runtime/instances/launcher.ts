// A launcher turns "run this start command for this deployment" into a concrete process
// recipe. The direct launcher below runs it as a plain child on a private loopback port;
// the isolated launcher (cgroups, netns, bubblewrap) builds on the same interface.
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { CellhostError, type ErrorCode } from '../core/errors.ts';
import type { RuntimeName } from '../core/names.ts';
import { runtimePathEnv } from '../sandbox/runtime-env.ts';
import { EDGE_HOST_FILE, EDGE_HOST_NODE, edgeToolsDir } from '../sandbox/edge-tools.ts';

export interface InstanceSpec {
  instanceId: string;
  service: string;
  deploymentId: string;
  imageDir: string;
  runtime: RuntimeName;
  command: string;
  /** the serving port the app listens on when it has its own network namespace */
  port: number;
  memoryMb: number;
  /** the service's own variables (already decrypted) */
  env: Record<string, string>;
  /** a standby: everything is set up, and the app is exec'd when a line arrives on stdin */
  held?: boolean;
  /** the deployment's system layer (a dir beside the image), when its build installed packages */
  systemLayer?: string;
  /** a fetch-handler module (relative to the app's dir) served by cellhost's edge host instead
   *  of `command`: an edge service, or a node service whose entry exports a fetch handler */
  edge?: { entry: string } | null;
}

/** how the edge host is started: its file and the module as the launcher's sandbox sees them */
export interface EdgeLaunch {
  hostFile: string;
  entry: string;
  /** the fd it tells the platform about pending waitUntil() work on */
  controlFd: number;
}

/**
 * The app's command, as every launcher runs it. Held, a shell waits for a line on stdin first:
 * everything before the app (cgroup, namespaces, sandbox) is set up ahead of the request.
 */
export function appArgv(spec: Pick<InstanceSpec, 'command' | 'held'>, edge?: EdgeLaunch): string[] {
  // the edge host is the standby itself: node boots and compiles the module ahead, and evaluates
  // it when a line arrives on stdin
  if (edge) return [...EDGE_HOST_NODE, edge.hostFile, '--control-fd', String(edge.controlFd), ...(spec.held ? ['--held'] : []), edge.entry];
  const app = ['bash', '-c', spec.command];
  return spec.held ? ['/bin/sh', '-c', 'read -r _ || exit 0; exec "$@"', 'cellhost-standby', ...app] : app;
}

export interface Launch {
  argv: string[];
  /** the whole environment of the spawned process (for a sandbox: only what the chain before it needs) */
  env: Record<string, string>;
  /** data the process reads on fds 3, 4, … (a sandbox's options, its env among them, and seccomp program) */
  fds?: readonly Uint8Array[];
  /** the fd after those on which the app tells the platform things (the edge host: ready, busy, idle) */
  controlFd?: number;
  /** its port accepts from its boot on and holds requests until the app is ready (the edge
   *  host, which says when it is ready on its control fd) */
  acceptsBeforeReady?: boolean;
  cwd: string;
  upstream: { host: string; port: number };
  /** ask the app to stop (SIGTERM where it will see it); false when the launcher cannot, so the
   *  process group is signalled instead */
  terminate?(spawnedPid: number): Promise<boolean>;
  /** the start is over (the requests that waited for it answered, or a second after ready): drop any startup boost */
  onReady?(): Promise<void>;
  /** kill every process the instance made, not only its process group */
  killAll?(): Promise<void>;
  /** after an exit: a better reason than the exit status, if the launcher has one (OOM) */
  diagnose?(): Promise<{ code: ErrorCode; message: string } | null>;
  /** stop every process of the instance in place (memory kept) and resume it: the cgroup freezer */
  freeze?(): Promise<void>;
  thaw?(): Promise<void>;
  /** the memory every process of the instance holds now (its cgroup's usage), bytes */
  memoryBytes?(): Promise<number | null>;
  /** free what prepare() took (ports, dirs, cgroups, namespaces); idempotent */
  release(): Promise<void>;
}

export interface Launcher {
  prepare(spec: InstanceSpec): Promise<Launch>;
}

/**
 * Variables every instance gets, whatever launcher runs it: PATH, HOME, TMPDIR and LANG, which the
 * service's own variables may override, then PORT and CELLHOST_*, which they may not. appDir is
 * where the app sees its code.
 */
export function platformEnv(spec: InstanceSpec, port: number, home: string, appDir: string): Record<string, string> {
  return {
    ...runtimePathEnv(spec.runtime, appDir),
    HOME: home,
    TMPDIR: home,
    LANG: 'C.UTF-8',
    ...spec.env,
    PORT: String(port),
    CELLHOST_SERVICE: spec.service,
    CELLHOST_DEPLOYMENT: spec.deploymentId,
    CELLHOST_MEMORY_MB: String(spec.memoryMb),
    // the edge host hands these (and only these) to the fetch handler as `env`
    ...(spec.edge ? { CELLHOST_EDGE_VARS: Object.keys(spec.env).join(',') } : {}),
  };
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * No isolation: the app runs as the platform's user on a loopback port chosen for it, with
 * `$PORT` injected: the fallback where the host cannot isolate. Its HOME and TMPDIR are a private dir removed on release.
 */
export function createDirectLauncher(opts: { runDir: string }): Launcher {
  return {
    async prepare(spec) {
      if (spec.systemLayer) throw new CellhostError('ERR_SANDBOX_SETUP', `deployment ${spec.deploymentId} has a system layer, which only runs in the sandbox (isolation is off or unavailable here)`);
      const port = await freePort();
      const tmp = path.join(opts.runDir, spec.instanceId);
      await fs.mkdir(tmp, { recursive: true, mode: 0o700 });
      const env = platformEnv(spec, port, tmp, spec.imageDir);
      const edge = spec.edge ? { hostFile: path.join(edgeToolsDir(), EDGE_HOST_FILE), entry: path.join(spec.imageDir, spec.edge.entry), controlFd: 3 } : undefined;
      return {
        argv: appArgv(spec, edge),
        env,
        ...(edge ? { controlFd: edge.controlFd, acceptsBeforeReady: true } : {}),
        cwd: spec.imageDir,
        upstream: { host: '127.0.0.1', port },
        release: () => fs.rm(tmp, { recursive: true, force: true }),
      };
    },
  };
}
