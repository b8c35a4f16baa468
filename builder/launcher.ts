// How a build command is run. The direct launcher runs bash as the platform user in the build
// dir; the sandboxed one (bubblewrap, service uid, plan cgroup) implements the same interface.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeName } from '../runtime/core/names.ts';
import { runtimePathEnv } from '../runtime/instances/launcher.ts';
import { sandboxEnv, toolchainMounts, type SandboxPaths } from '../runtime/instances/sandbox-launcher.ts';
import { buildSandboxCommand, type SandboxBind, type SandboxHardening } from '../runtime/sandbox/bwrap.ts';
import { sealSystemLayer, type BuildRoot, type IdBlock, type LayerSeal, type SystemLayers } from '../runtime/sandbox/system-layer.ts';
import type { NetnsPool } from '../runtime/sandbox/netns.ts';
import { normalizeImageAccess } from '../runtime/sandbox/uids.ts';
import { removeSpecialFiles, walkInside, type RemovedEntry } from '../runtime/sandbox/untrusted-files.ts';
import type { Cgroup, CgroupDriver } from '../runtime/sandbox/cgroups/types.ts';
import type { Plan } from '../runtime/store/services.ts';
import type { BuildCommand } from './runner.ts';
import { CellhostError } from '../runtime/core/errors.ts';

export interface BuildSpec {
  deploymentId: string;
  service: string;
  runtime: RuntimeName;
  plan: Plan;
  /** the source, writable; it becomes the image */
  dir: string;
  /** the whole script: runtime preparation, then the user's build command */
  script: string;
  env: Record<string, string>;
  /** per-service dependency cache dir (never part of the image) */
  cacheDir: string;
  /**
   * a build that installs system packages: it runs as root of a namespace mapping `block` over
   * the host's system, and its changes land in `dir` (which must not exist yet)
   */
  systemLayer?: { dir: string; block: IdBlock };
}

export interface BuildLauncher {
  prepare(spec: BuildSpec): Promise<BuildCommand>;
  /**
   * After a successful build, when nothing of it runs any more: makes the dir an image (FIFOs,
   * sockets and devices removed; with the sandbox, handed to root and read-only for the
   * service). Returns what it removed, for the build log. Throws when it cannot.
   */
  seal(dir: string): Promise<RemovedEntry[]>;
  /** null when builds here can have a system layer; else why not, in words a user can act on */
  systemLayerUnavailable(): string | null;
  /** after a successful build with a layer: makes it what instances may see (system-layer.ts) */
  sealLayer(dir: string, block: IdBlock): Promise<LayerSeal>;
}

export interface PlanLimits {
  cpus: number;
  memoryMb: number;
  timeoutMs: number;
  /** what a build may leave: its image, its service's dependency cache, its log */
  imageMb: number;
  cacheMb: number;
  logMb: number;
}

export const PLAN_LIMITS: Record<Plan, PlanLimits> = {
  hobby: { cpus: 2, memoryMb: 4096, timeoutMs: 10 * 60_000, imageMb: 2048, cacheMb: 2048, logMb: 10 },
  pro: { cpus: 4, memoryMb: 10240, timeoutMs: 30 * 60_000, imageMb: 10240, cacheMb: 10240, logMb: 50 },
};

/** the env every build gets: caches pointed into the service's cache dir */
export function buildEnv(spec: BuildSpec, home: string, appDir: string): Record<string, string> {
  return {
    ...runtimePathEnv(spec.runtime, appDir),
    HOME: home,
    TMPDIR: home,
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    FORCE_COLOR: '1',
    CI: 'true',
    ...spec.env,
    CELLHOST_SERVICE: spec.service,
    CELLHOST_DEPLOYMENT: spec.deploymentId,
    npm_config_cache: path.join(spec.cacheDir, 'npm'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    PIP_CACHE_DIR: path.join(spec.cacheDir, 'pip'),
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    GOCACHE: path.join(spec.cacheDir, 'go-build'),
    GOMODCACHE: path.join(spec.cacheDir, 'go-mod'),
    GOFLAGS: '-mod=mod',
    CARGO_HOME: path.join(spec.cacheDir, 'cargo'),
    CARGO_TARGET_DIR: path.join(appDir, 'target'),
  };
}

export function createDirectBuildLauncher(opts: { runDir: string; noLayerReason?: string }): BuildLauncher {
  return {
    systemLayerUnavailable: () => opts.noLayerReason ?? 'builds are not sandboxed here, and apt-get would change the host itself',
    sealLayer: () => Promise.reject(new Error('no system layers without the sandbox')),
    async prepare(spec) {
      const home = path.join(opts.runDir, `build-${spec.deploymentId}`);
      await fs.mkdir(home, { recursive: true, mode: 0o700 });
      await fs.mkdir(spec.cacheDir, { recursive: true });
      return {
        argv: ['bash', '-e', '-o', 'pipefail', '-c', spec.script],
        env: buildEnv(spec, home, spec.dir),
        cwd: spec.dir,
        release: () => fs.rm(home, { recursive: true, force: true }),
      };
    },
    seal: (dir) => removeSpecialFiles(dir),
  };
}

/** builds inside a cgroup sized by the service's plan (capped at what the host has) */
export function createIsolatedBuildLauncher(opts: { base: BuildLauncher; cgroups: CgroupDriver; hostCores: number; hostMemoryMb: number; memoryMb?: number }): BuildLauncher {
  return {
    async prepare(spec) {
      const inner = await opts.base.prepare(spec);
      const plan = PLAN_LIMITS[spec.plan];
      const cores = Math.min(plan.cpus, opts.hostCores);
      const memoryMb = Math.min(opts.memoryMb ?? plan.memoryMb, opts.hostMemoryMb);
      let group: Cgroup;
      try {
        group = await opts.cgroups.create(`b-${spec.deploymentId}`, {
          memoryBytes: memoryMb * 1024 * 1024,
          cpuQuota: cores,
          cpus: cores,
          pidsMax: 4096,
        });
      } catch (err) {
        await inner.release?.();
        throw err;
      }
      return {
        ...inner,
        argv: group.wrapArgv(inner.argv),
        async killAll() {
          await group.killAll();
          await inner.killAll?.();
        },
        async diagnose() {
          const stats = await group.stats().catch(() => null);
          if (stats && stats.oomKills > 0) return `the build ran out of memory (limit ${memoryMb} MB for the ${spec.plan} plan) and was stopped`;
          return (await inner.diagnose?.()) ?? null;
        },
        async release() {
          await group.destroy();
          await inner.release?.();
        },
      };
    },
    seal: (dir) => opts.base.seal(dir),
    systemLayerUnavailable: () => opts.base.systemLayerUnavailable(),
    sealLayer: (dir, block) => opts.base.sealLayer(dir, block),
  };
}

export interface SandboxBuildOptions {
  netns: NetnsPool;
  uidFor(service: string): number;
  paths: SandboxPaths;
  /** what the host's bubblewrap adds (probeSandbox) */
  hardening: SandboxHardening;
  /** a root-only dir (on a tmpfs) where a build's sandbox fds wait to be opened */
  fdDir: string;
  /** the service's block of subuids, if it has one (its cache may be owned by the block's root) */
  subuidBaseFor(service: string): number | null;
  /** system layers, when this host can build them; else why not */
  layers: SystemLayers | null;
  noLayerReason?: string;
}

/**
 * Builds run in a pty, and node-pty hands a child no fds beyond the terminal. So the sandbox's fds
 * (bwrap's options with the env, the seccomp program) go through files in a root-only dir: a shell
 * running as root opens them as fds 3, 4, …, removes them, then execs the rest of the chain, which
 * keeps those fds open up to bwrap.
 */
async function openFdsFromFiles(dir: string, id: string, fds: readonly Uint8Array[], argv: string[]): Promise<{ argv: string[]; files: string[] }> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const files = fds.map((_, i) => path.join(dir, `${id}.${3 + i}`));
  await Promise.all(files.map((f, i) => fs.writeFile(f, fds[i]!, { mode: 0o600, flag: 'wx' })));
  const args = files.map((_, i) => `"$${i + 1}"`);
  const script = `exec ${args.map((a, i) => `${3 + i}<${a}`).join(' ')} && rm -f -- ${args.join(' ')} && shift ${files.length} && exec "$@"`;
  return { argv: ['/bin/sh', '-c', script, 'cellhost-fds', ...files, ...argv], files };
}

/** gives the tree to `uid` (the build writes it), without following links out of it */
async function chownTree(dir: string, uid: number): Promise<void> {
  await walkInside(dir, async (e) => {
    await fs.lchown(e.full, uid, uid);
  });
}

/**
 * The service's cache dir, owned by the id its build runs as: its uid, or the root of its block
 * for a build with a system layer. One owned by the other of the two is the service's own and is
 * handed over; one owned by anyone else is a deleted service's (same name, other ids) or a crash's
 * leftover: it is emptied, never handed over.
 */
async function prepareCacheDir(dir: string, owner: number, serviceIds: readonly number[]): Promise<void> {
  const st = await fs.lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st?.isDirectory() && st.uid === owner) return;
  if (st?.isDirectory() && serviceIds.includes(st.uid)) {
    await chownTree(dir, owner);
    return;
  }
  if (st) await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chown(dir, owner, owner);
}

/** a dir of the build's cache (each level below `cacheDir` made for `owner`, whatever the umask) */
async function cacheSubdir(cacheDir: string, rel: string, owner: number): Promise<string> {
  let dir = cacheDir;
  for (const part of rel.split('/')) {
    dir = path.join(dir, part);
    const st = await fs.lstat(dir).catch(() => null);
    if (st && !st.isDirectory()) await fs.rm(dir, { force: true });
    if (!st?.isDirectory()) await fs.mkdir(dir, { mode: 0o755 });
    await fs.lchown(dir, owner, owner);
    await fs.chmod(dir, 0o755);
  }
  return dir;
}

/**
 * Builds in the same sandbox as instances, as the service's uid: the build dir writable at /app,
 * the dependency cache at /cache, the network open through a namespace of its own (NAT out, no
 * way to the admin API or other instances). Afterwards (seal) the image is handed back to root and
 * made read-only for everyone.
 */
export function createSandboxBuildLauncher(opts: SandboxBuildOptions): BuildLauncher {
  return {
    async prepare(spec) {
      const uid = opts.uidFor(spec.service);
      const layer = spec.systemLayer;
      if (layer && !opts.layers) throw new CellhostError('ERR_BUILD_SYSTEM_PACKAGES', `system packages cannot be installed on this host: ${opts.noLayerReason ?? 'system layers are unavailable'}`);
      // with a layer the whole build is its block's root (as `RUN` in a Dockerfile is root)
      const runAs = layer ? layer.block.first : uid;
      const base = opts.subuidBaseFor(spec.service);
      await Promise.all([chownTree(spec.dir, runAs), prepareCacheDir(spec.cacheDir, runAs, [uid, ...(base === null ? [] : [base])])]);
      const tools = await toolchainMounts(spec.runtime, opts.paths);
      const rwBinds: SandboxBind[] = [{ src: spec.cacheDir, dest: '/cache' }];
      let root: BuildRoot | null = null;
      if (layer) {
        // apt's downloads and package lists stay in the service's cache, out of the layer: a
        // rebuild with the same apt lines takes its .debs from there
        rwBinds.push(
          { src: await cacheSubdir(spec.cacheDir, 'apt/cache', runAs), dest: '/var/cache/apt' },
          { src: await cacheSubdir(spec.cacheDir, 'apt/lists', runAs), dest: '/var/lib/apt/lists' },
        );
        root = await opts.layers!.mountBuildRoot({ id: spec.deploymentId, layerDir: layer.dir, block: layer.block });
      }
      const env = sandboxEnv(spec.runtime, tools.pathDirs, buildEnv({ ...spec, cacheDir: '/cache' }, '/tmp', '/app'));
      const plan = PLAN_LIMITS[spec.plan];
      let lease: Awaited<ReturnType<NetnsPool['acquire']>> | null = null;
      let opened: { argv: string[]; files: string[] };
      try {
        lease = await opts.netns.acquire({ bandwidthMbit: 1000 });
        const sandbox = buildSandboxCommand({
          uid,
          gid: uid,
          imageDir: spec.dir,
          writableAppDir: true,
          tmpSizeBytes: plan.memoryMb * 1024 * 1024,
          roBinds: tools.binds,
          rwBinds,
          env: layer ? { DEBIAN_FRONTEND: 'noninteractive', ...env } : env,
          hostname: spec.service,
          // a layer keeps the modes the build gives its files, and apps read them as "others": the
          // build gets a system's usual umask, not the platform's 077
          argv: ['bash', '-e', '-o', 'pipefail', '-c', layer ? `umask 022\n${spec.script}` : spec.script],
          hardening: opts.hardening,
          ...(root && layer ? { rangeRoot: layer.block, systemDirs: { usr: root.usr, etc: root.etc, var: root.var, writable: true } } : {}),
        });
        opened = await openFdsFromFiles(opts.fdDir, `build-${spec.deploymentId}`, sandbox.fds, lease.enterArgv(sandbox.argv));
      } catch (err) {
        if (lease) await opts.netns.release(lease);
        await root?.release();
        throw err;
      }
      const leased = lease;
      let released = false;
      return {
        argv: opened.argv,
        // the chain up to bwrap runs as root with only what it needs to find its tools
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'xterm-256color' },
        cwd: '/',
        async release() {
          if (released) return;
          released = true;
          // the chain removes them as it starts; a build that never started leaves them
          await Promise.all(opened.files.map((f) => fs.rm(f, { force: true })));
          await opts.netns.release(leased);
          // after the build's processes are gone (the runner kills them first)
          await root?.release();
        },
      };
    },
    seal: (dir) => normalizeImageAccess(dir),
    systemLayerUnavailable: () => (opts.layers ? null : (opts.noLayerReason ?? 'system layers are unavailable')),
    sealLayer: (dir, block) => sealSystemLayer(dir, block),
  };
}
