// The launcher with the full sandbox: the app runs as its service's uid inside
// bubblewrap (everything read-only but a private /tmp sized by the memory), in a prepared
// network namespace where it listens on its own serving port at its own address, with a clean
// environment. Composes with the cgroup launcher, which wraps this argv from the outside.
// The environment and bwrap's options travel on fds 3 and 4 (Launch.fds), never on a command line.
import { buildSandboxCommand, findSandboxAppPid, SANDBOX_PATH, type SandboxHardening } from '../sandbox/bwrap.ts';
import { bandwidthForMemory, type NetnsPool } from '../sandbox/netns.ts';
import { CellhostError } from '../core/errors.ts';
import type { SystemLayers } from '../sandbox/system-layer.ts';
import { sandboxEnv, toolchainMounts, type SandboxPaths } from '../sandbox/runtime-env.ts';
import { EDGE_HOST_FILE, EDGE_TOOLS_MOUNT, edgeToolsDir } from '../sandbox/edge-tools.ts';
import { appArgv, platformEnv, type InstanceSpec, type Launch, type Launcher } from './launcher.ts';

export interface SandboxLauncherOptions {
  netns: NetnsPool;
  uidFor(service: string): number;
  paths: SandboxPaths;
  /** what the host's bubblewrap adds (probeSandbox) */
  hardening: SandboxHardening;
  /** system layers' read-only views, when this host can mount them; else why not */
  layers?: SystemLayers | null;
  noLayerReason?: string;
}

export function createSandboxLauncher(opts: SandboxLauncherOptions): Launcher {
  return {
    async prepare(spec: InstanceSpec): Promise<Launch> {
      const uid = opts.uidFor(spec.service);
      if (spec.systemLayer && !opts.layers) {
        throw new CellhostError('ERR_SANDBOX_SETUP', `deployment ${spec.deploymentId} has a system layer, which this host cannot mount now: ${opts.noLayerReason ?? 'system layers are unavailable'}`);
      }
      // a deployment with a layer: its read-only views, mounted once for all its instances (an
      // edge service's standby and a prewarmed instance too: they are instances like any other)
      const [imageDir, tools, systemDirs, edgeTools] = await Promise.all([
        opts.paths.reachable(spec.imageDir),
        toolchainMounts(spec.runtime, opts.paths),
        spec.systemLayer ? opts.layers!.viewForInstances(spec.deploymentId, spec.systemLayer) : undefined,
        spec.edge ? opts.paths.reachable(edgeToolsDir()) : null,
      ]);
      // the fd after bwrap's options (3) and its seccomp program (4, when there is one)
      const edge = spec.edge ? { hostFile: `${EDGE_TOOLS_MOUNT}/${EDGE_HOST_FILE}`, entry: `/app/${spec.edge.entry}`, controlFd: 3 + (opts.hardening.seccomp ? 2 : 1) } : undefined;
      const lease = await opts.netns.acquire({ bandwidthMbit: bandwidthForMemory(spec.memoryMb) });
      const env = sandboxEnv(spec.runtime, tools.pathDirs, platformEnv(spec, spec.port, '/tmp', '/app'));
      const sandbox = buildSandboxCommand({
        uid,
        gid: uid,
        imageDir,
        tmpSizeBytes: spec.memoryMb * 1024 * 1024,
        roBinds: edgeTools ? [...tools.binds, { src: edgeTools, dest: EDGE_TOOLS_MOUNT }] : tools.binds,
        env,
        hostname: spec.service,
        argv: appArgv(spec, edge),
        hardening: opts.hardening,
        systemDirs,
      });
      if (edge && 3 + sandbox.fds.length !== edge.controlFd) throw new Error(`the sandbox reads ${sandbox.fds.length} fds: the edge host's control fd would be taken`);
      let released = false;
      return {
        argv: lease.enterArgv(sandbox.argv),
        fds: sandbox.fds,
        ...(edge ? { controlFd: edge.controlFd, acceptsBeforeReady: true } : {}),
        // the chain up to bwrap runs as root with only what it needs to find its tools
        env: { PATH: SANDBOX_PATH },
        cwd: '/',
        upstream: { host: lease.appAddr, port: spec.port },
        async terminate(spawnedPid: number) {
          // bwrap's monitor would take the whole sandbox down at once: signal the app itself
          const app = await findSandboxAppPid(spawnedPid);
          if (app) process.kill(app, 'SIGTERM');
          return app !== undefined;
        },
        async release() {
          if (released) return;
          released = true;
          await opts.netns.release(lease);
        },
      };
    },
  };
}
