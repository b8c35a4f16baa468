// How a build command is run. The direct launcher runs bash as the platform user in the build
// dir; the sandboxed one (bubblewrap, service uid, plan cgroup) implements the same interface.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeName } from '../runtime/core/names.ts';
import { CellhostError } from '../runtime/core/errors.ts';
import { buildSandboxCommand, SANDBOX_PATH, type SandboxBind, type SandboxHardening } from '../runtime/sandbox/bwrap.ts';
import { EDGE_TOOLS_MOUNT, edgeToolsDir } from '../runtime/sandbox/edge-tools.ts';
import type { NetnsPool } from '../runtime/sandbox/netns.ts';
import { sealSystemLayer, type BuildRoot, type IdBlock, type LayerSeal, type SystemLayers } from '../runtime/sandbox/system-layer.ts';
import { runtimePathEnv, sandboxEnv, toolchainMounts, type SandboxPaths } from '../runtime/sandbox/runtime-env.ts';
import { normalizeImageAccess } from '../runtime/sandbox/uids.ts';
import { removeSpecialFiles, walkInside, type RemovedEntry } from '../runtime/sandbox/untrusted-files.ts';
import type { Cgroup, CgroupDriver } from '../runtime/sandbox/cgroups/types.ts';
import type { Plan } from '../runtime/store/services.ts';
import type { PlatformBuildSetup } from './build-setup.ts';
import type { BuildCommand } from './runner.ts';

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
  /** what the platform adds to every build: variables, host dirs, the host's package-manager configuration */
  setup?: PlatformBuildSetup;
  /**
   * a build that installs system packages: it runs as root of a namespace mapping `block` over
   * the host's system, and its changes land in `dir` (which must not exist yet)
   */
  systemLayer?: { dir: string; block: IdBlock };
}

/** fetching a build's source (a git clone) before the build, confined as the build is */
export interface FetchSpec {
  deploymentId: string;
  service: string;
  plan: Plan;
  /** the deployment's dir, empty but for where the source goes; it becomes the image */
  dir: string;
  /** host paths the fetch reads (a local repository, where those are allowed), at the same path */
  roBinds?: readonly string[];
}

/** a process to spawn: `fds` become its fds 3, 4, … (the sandbox reads its options there) */
export interface FetchCommand {
  argv: string[];
  env: Record<string, string>;
  fds?: Uint8Array[];
}

export interface FetchSandbox {
  /** where a host path under the spec's dir appears inside */
  inside(hostPath: string): string;
  /** the command that runs `argv` inside, with `env` as its whole environment */
  command(argv: string[], env: Record<string, string>): FetchCommand;
  /** kill every process the fetch made */
  killAll?(): Promise<void>;
  /** frees what was set up and gives what was fetched back to root; idempotent */
  release(): Promise<void>;
}

export interface BuildLauncher {
  prepare(spec: BuildSpec): Promise<BuildCommand>;
  /**
   * After a successful build, when nothing of it runs any more: makes the dir an image (FIFOs,
   * sockets and devices removed; with the sandbox, handed to root and read-only for the
   * service). Returns what it removed, for the build log. Throws when it cannot.
   */
  seal(dir: string): Promise<RemovedEntry[]>;
  /** absent: this launcher has no sandbox, and a source is fetched on the host */
  prepareFetch?(spec: FetchSpec): Promise<FetchSandbox>;
  /** builds with a system layer (system-layer.ts); absent: this launcher cannot give one */
  systemLayer?: SystemLayerBuilds;
}

/** what a launcher that can give builds a system layer offers besides the build itself */
export interface SystemLayerBuilds {
  /** null when a build here can have a system layer now; else why not, in words a user can act on */
  unavailable(): string | null;
  /** after a successful build with a layer: makes it what instances may see (sealSystemLayer) */
  seal(dir: string, block: IdBlock): Promise<LayerSeal>;
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

/** a node or edge build may bundle a fetch-handler module with cellhost's esbuild */
const usesEdgeTools = (runtime: RuntimeName) => runtime === 'node' || runtime === 'edge';

/** the env every build gets: the platform's build variables under the service's own, caches
 *  pointed into the service's cache dir; `tools`: where cellhost's own build tools (esbuild) are,
 *  as the build sees them */
export function buildEnv(spec: BuildSpec, home: string, appDir: string, tools?: string): Record<string, string> {
  return {
    ...runtimePathEnv(spec.runtime, appDir),
    HOME: home,
    TMPDIR: home,
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    FORCE_COLOR: '1',
    CI: 'true',
    ...spec.setup?.env,
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
    ...(tools ? { CELLHOST_TOOLS: tools } : {}),
  };
}

/**
 * The host's configuration files, written where the build's tools look: under its HOME, and
 * cargo's (which the sandbox puts at /.cargo/config.toml, above the build dir) in its CARGO_HOME.
 */
async function writeConfigFiles(spec: BuildSpec, home: string): Promise<void> {
  for (const f of spec.setup?.files ?? []) {
    const file = 'home' in f.target ? path.join(home, f.target.home) : path.join(spec.cacheDir, 'cargo', path.basename(f.target.root));
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await fs.writeFile(file, f.data, { mode: 0o600 });
  }
}

export function createDirectBuildLauncher(opts: { runDir: string }): BuildLauncher {
  return {
    async prepare(spec) {
      const home = path.join(opts.runDir, `build-${spec.deploymentId}`);
      await fs.mkdir(home, { recursive: true, mode: 0o700 });
      await fs.mkdir(spec.cacheDir, { recursive: true });
      // without a sandbox the build sees the host's dirs as they are: only the files need a place
      await writeConfigFiles(spec, home);
      return {
        argv: ['bash', '-e', '-o', 'pipefail', '-c', spec.script],
        env: buildEnv(spec, home, spec.dir, usesEdgeTools(spec.runtime) ? edgeToolsDir() : undefined),
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
    ...(opts.base.prepareFetch && {
      async prepareFetch(spec: FetchSpec): Promise<FetchSandbox> {
        const inner = await opts.base.prepareFetch!(spec);
        const cores = Math.min(PLAN_LIMITS[spec.plan].cpus, opts.hostCores);
        let group: Cgroup;
        try {
          group = await opts.cgroups.create(`g-${spec.deploymentId}`, {
            memoryBytes: Math.min(opts.memoryMb ?? PLAN_LIMITS[spec.plan].memoryMb, opts.hostMemoryMb) * 1024 * 1024,
            cpuQuota: cores,
            cpus: cores,
            pidsMax: 256,
          });
        } catch (err) {
          await inner.release();
          throw err;
        }
        return {
          inside: (p) => inner.inside(p),
          command(argv, env) {
            const cmd = inner.command(argv, env);
            return { ...cmd, argv: group.wrapArgv(cmd.argv) };
          },
          async killAll() {
            await group.killAll();
            await inner.killAll?.();
          },
          async release() {
            try {
              await group.destroy();
            } finally {
              await inner.release();
            }
          },
        };
      },
    }),
    ...(opts.base.systemLayer && { systemLayer: opts.base.systemLayer }),
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
  /**
   * a dir others may traverse where each service uid gets a passwd and group naming it: ssh (a
   * clone over ssh://) refuses to run as a uid the account database does not know
   */
  accountsDir?: string;
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
      const [tools, hostBinds, edgeTools] = await Promise.all([
        toolchainMounts(spec.runtime, opts.paths),
        // the host dirs a mirror lives in, reachable for the sandbox's uid (through the bind stage)
        Promise.all((spec.setup?.binds ?? []).map(async (dest) => ({ src: await opts.paths.reachable(dest), dest }))),
        // cellhost's esbuild, read-only, for a fetch-handler module's bundle
        usesEdgeTools(spec.runtime) ? opts.paths.reachable(edgeToolsDir()).then((src) => ({ src, dest: EDGE_TOOLS_MOUNT })) : null,
      ]);
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
      const env = sandboxEnv(spec.runtime, tools.pathDirs, buildEnv({ ...spec, cacheDir: '/cache' }, '/tmp', '/app', edgeTools ? EDGE_TOOLS_MOUNT : undefined));
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
          roBinds: [...tools.binds, ...hostBinds, ...(edgeTools ? [edgeTools] : [])],
          rwBinds,
          // copies, by content: the build never sees where on the host they came from
          files: (spec.setup?.files ?? []).map((f) => ({ dest: 'home' in f.target ? path.posix.join('/tmp', f.target.home) : f.target.root, data: f.data })),
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
        env: { PATH: SANDBOX_PATH, TERM: 'xterm-256color' },
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
    systemLayer: {
      unavailable: () => (opts.layers ? null : (opts.noLayerReason ?? 'system layers are unavailable')),
      seal: (dir, block) => sealSystemLayer(dir, block),
    },

    /**
     * A git clone runs like a build: as the service's uid, in a namespace of its own (no host
     * loopback, no admin API), seeing only /usr, /etc, the deployment's dir at /app and what
     * roBinds names, never the data dir or root's files.
     */
    async prepareFetch(spec) {
      const uid = opts.uidFor(spec.service);
      // the clone writes under the deployment's dir (nothing else is there yet): the build will too
      await chownTree(spec.dir, uid);
      const accounts = opts.accountsDir ? await writeAccounts(opts.accountsDir, uid) : [];
      const lease = await opts.netns.acquire({ bandwidthMbit: 1000 });
      let released = false;
      return {
        inside: (p) => path.posix.join('/app', path.relative(spec.dir, p)),
        command(argv, env) {
          const sandbox = buildSandboxCommand({
            uid,
            gid: uid,
            imageDir: spec.dir,
            writableAppDir: true,
            tmpSizeBytes: FETCH_TMP_BYTES,
            roBinds: [...(spec.roBinds ?? []), ...accounts],
            env,
            hostname: spec.service,
            argv,
            hardening: opts.hardening,
          });
          // the options (and git's env) go on fds, as for instances: nothing of them on a command line
          return { argv: lease.enterArgv(sandbox.argv), env: { PATH: SANDBOX_PATH }, fds: sandbox.fds };
        },
        async release() {
          if (released) return;
          released = true;
          try {
            await opts.netns.release(lease);
          } finally {
            // the checkout is the platform's again until the build hands it over
            await normalizeImageAccess(spec.dir);
          }
        },
      };
    },
  };
}

// the clone's /tmp holds git's and ssh's scraps, never the repository
const FETCH_TMP_BYTES = 64 * 1024 * 1024;

/**
 * The host's passwd and group with one more entry, the service's uid, for the fetch sandbox's
 * /etc (the rest of /etc is the host's): ssh looks its user up and stops when there is none.
 * Written by root into a dir the uid can read (bubblewrap resolves binds as that uid); the
 * contents are what /etc already shows, plus the uid's own line.
 */
async function writeAccounts(dir: string, uid: number): Promise<{ src: string; dest: string }[]> {
  const own = path.join(dir, String(uid));
  await fs.mkdir(own, { recursive: true, mode: 0o755 });
  await fs.chmod(dir, 0o755);
  await fs.chmod(own, 0o755);
  const read = (f: string) => fs.readFile(f, 'utf8').catch(() => '');
  const lines = (text: string) => text.split('\n').filter((l) => l && !l.split(':')[2]?.match(new RegExp(`^${uid}$`)));
  const files = {
    passwd: [...lines(await read('/etc/passwd')), `cellhost-service:x:${uid}:${uid}:cellhost service:/tmp:/usr/sbin/nologin`],
    group: [...lines(await read('/etc/group')), `cellhost-service:x:${uid}:`],
  };
  const binds: { src: string; dest: string }[] = [];
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(own, name);
    await fs.writeFile(`${file}.tmp`, content.join('\n') + '\n', { mode: 0o644 });
    await fs.rename(`${file}.tmp`, file);
    binds.push({ src: file, dest: `/etc/${name}` });
  }
  return binds;
}
