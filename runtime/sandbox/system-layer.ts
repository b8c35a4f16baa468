// System layers: what `apt-get install` in a build changes, kept as a layer of the deployment's
// own over the host's system, never written into the host's.
//
// A build with a layer gets /usr, /etc and /var as overlays mounted by the platform (as root, in
// the host's mount namespace, under <host run dir>/layers/b-<deployment>):
//   upper:  <image>.layer/{usr,etc,var}, empty at the start: every change the build makes lands here;
//   lowers: a mask (below), then an idmapped read-only view of the host's tree (id-mapping.ts) in
//           which host id N shows as the service's subuid first + N.
// The build runs as uid 0 of a user namespace that maps ids 0..65535 onto the same block, so the
// host's root-owned files are its root's files: dpkg can replace, chown and remove them, and every
// change is copied up into the upper layer owned by ids of the service's block (root's copy-up
// keeps the owner it saw, first + N). Nothing can be owned by a host id outside the block: ids the
// namespace does not map cannot be set (chown fails with EINVAL).
//
// Being the owner of the host's files in that view also means being able to read the host's
// root-only files (/etc/shadow, private keys). The mask hides them: a layer of whiteouts for every
// entry of /usr, /etc, /var/lib and /var/cache that other users cannot read (files without o+r,
// directories without o+rx), worked out when the build starts, and for the data dir and the host
// run dir wherever they are. So the build's root reads of the host exactly what any local user
// can; a root-only file created on the host under a new name while a build runs is the exception
// (documented in docs/security.md). The rest of /var (logs, mail, spool, tmp) is not shown at all:
// log/ and tmp/ start empty.
//
// Instances of a deployment with a layer see it read-only: /usr, /etc and /var/lib are overlays
// of the layer over the host's trees (no upper: read-only by construction, also mounted ro,
// nosuid, nodev), mounted once per deployment under layers/d-<deployment> and bound into each
// sandbox in place of the host's /usr and /etc. The app still runs as the service's uid.
//
// Every mount lives under the layers dir: close() and reclaimLeftovers() unmount them all
// (overlays before the idmapped views under them) and only then remove the dir.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir, open, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { isReachableByOthers } from './bind-stage.ts';
import { enterMappedArgv, idMappingSupported, mountIdmapped, type IdBlock } from './id-mapping.ts';
import { runChecked, runCommand } from './run-command.ts';
import { entryKind, walkInside, type RemovedEntry } from './untrusted-files.ts';

export { enterMappedArgv, type IdBlock };

/** where a deployment's layer lives: beside its image, never inside it (the image is /app) */
export function layerDirOf(imageDir: string): string {
  return imageDir + '.layer';
}

/** the host trees a build's root may change, each an overlay at its own path */
export const BUILD_TREES = ['usr', 'etc', 'var'] as const;
/** what instances see of a layer, and the host tree under it */
const INSTANCE_VIEWS = [
  { key: 'usr', layer: 'usr', host: '/usr' },
  { key: 'etc', layer: 'etc', host: '/etc' },
  { key: 'varLib', layer: 'var/lib', host: '/var/lib' },
] as const;
/** entries of /var a build sees from the host; the others are hidden, and these start empty */
const VAR_FROM_HOST = new Set(['lib', 'cache', 'run', 'lock']);
const VAR_EMPTY_DIRS: ReadonlyArray<{ rel: string; mode: number }> = [
  { rel: 'log', mode: 0o755 },
  { rel: 'log/apt', mode: 0o755 },
  { rel: 'tmp', mode: 0o1777 },
];

/** overlay options that keep an upper layer self-contained, so it can later be a lower layer of its own */
const BUILD_OVERLAY_OPTS = 'redirect_dir=off,metacopy=off,index=off,nosuid,nodev';
const VIEW_OVERLAY_OPTS = 'ro,nosuid,nodev,redirect_dir=nofollow,metacopy=off';

export interface BuildRoot {
  /** writable overlays the build binds at /usr, /etc and /var */
  usr: string;
  etc: string;
  var: string;
  /** unmounts everything mounted for the build; idempotent */
  release(): Promise<void>;
}

export interface InstanceView {
  /** read-only trees to bind at /usr, /etc and /var/lib (the host's own where the layer changed nothing) */
  usr: string;
  etc: string;
  varLib: string;
}

export interface SystemLayers {
  /** the overlays of a build with a layer (its upper dirs created in `layerDir`, which must not exist yet) */
  mountBuildRoot(req: { id: string; layerDir: string; block: IdBlock }): Promise<BuildRoot>;
  /** read-only views of a sealed layer for a deployment's instances: mounted once, kept until forget() */
  viewForInstances(deploymentId: string, layerDir: string): Promise<InstanceView>;
  /** unmounts a deployment's instance views (its image is being removed) */
  forget(deploymentId: string): Promise<void>;
  /** unmounts everything and removes the layers dir */
  close(): Promise<void>;
  /** the same for what a previous run left */
  reclaimLeftovers(): Promise<void>;
}

export interface SystemLayersOptions {
  /** the platform's dir for layer mounts (<host run dir>/layers); its parents must be searchable by others */
  dir: string;
  /** host paths no layer may show (the data dir, the host run dir), symlinks resolved */
  hidden: readonly string[];
  log?: Logger;
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** mounts listed in a mountinfo text strictly under `dir`, overlays first, deepest first */
export function parseMountsUnder(mountinfo: string, dir: string): MountEntry[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const mp = fields[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const dash = fields.indexOf('-');
    if (!mp || dash < 0 || !mp.startsWith(prefix)) continue;
    out.push({ mountPoint: mp, fsType: fields[dash + 1] ?? '' });
  }
  // an overlay holds the idmapped view under it busy: overlays come off first
  return out.sort((a, b) => Number(b.fsType === 'overlay') - Number(a.fsType === 'overlay') || b.mountPoint.length - a.mountPoint.length);
}

/** paths an overlay's options can carry as they are */
function assertOverlayPath(p: string): void {
  if (!p.startsWith('/') || /[,:\\\s]/.test(p)) {
    throw new CellhostError('ERR_SANDBOX_SETUP', `system layers need paths without commas, colons, backslashes or spaces (the data dir and CELLHOST_HOST_RUN_DIR): ${p}`);
  }
}

/** host id → its id under `block` (ids the block does not hold show as its nobody) */
function shiftId(id: number, block: IdBlock | null): number {
  if (!block) return id;
  return block.first + (id < block.count ? id : 65_534);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Entries under `roots` other users cannot read: files without o+r, directories without o+rx
 * (not descended). Found by `find` in a child process (a walk of /usr is ~150k entries). A name
 * that is not UTF-8 cannot be passed on safely: its directory is hidden instead.
 */
export async function findUnreadableByOthers(roots: readonly string[]): Promise<string[]> {
  const present: string[] = [];
  for (const r of roots) if (await lstat(r).then((st) => st.isDirectory(), () => false)) present.push(r);
  if (!present.length) return [];
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn(
      'find',
      [...present, '-xdev', '(', '-type', 'd', '!', '-perm', '-o=rx', '-prune', '-print0', ')', '-o', '(', '!', '-type', 'd', '!', '-type', 'l', '!', '-perm', '-o=r', '-print0', ')'],
      { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } },
    );
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000).unref();
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // find exits 1 when a directory vanished mid-walk: what it printed still stands
      if (signal) reject(new CellhostError('ERR_SANDBOX_SETUP', `looking for the host's root-only files took too long (${signal})`));
      else if (code !== 0 && code !== 1) reject(new CellhostError('ERR_SANDBOX_SETUP', `find exited ${code} looking for the host's root-only files`));
      else resolve(Buffer.concat(chunks));
    });
  });
  const out = new Set<string>();
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0) continue;
    let bytes = raw.subarray(start, i);
    start = i + 1;
    for (;;) {
      try {
        out.add(utf8.decode(bytes));
        break;
      } catch {
        const slash = bytes.lastIndexOf(0x2f);
        if (slash <= 0) break;
        bytes = bytes.subarray(0, slash);
      }
    }
  }
  return [...out];
}

/**
 * A lower layer that hides `whiteouts` (paths relative to `hostTree`): the directories above each
 * made with the host's mode and owner (shifted into `block` for a build, whose lowers are
 * idmapped), each whiteout a 0/0 character device, as overlayfs reads one.
 */
async function makeMask(maskDir: string, hostTree: string, whiteouts: readonly string[], block: IdBlock | null): Promise<boolean> {
  if (!whiteouts.length) return false;
  await mkdir(maskDir, { mode: 0o755 });
  const rootSt = await lstat(hostTree);
  await chown(maskDir, shiftId(rootSt.uid, block), shiftId(rootSt.gid, block));
  await chmod(maskDir, rootSt.mode & 0o7777);
  const made = new Set<string>();
  const nodes: string[] = [];
  for (const rel of whiteouts) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (made.has(sub)) continue;
      const st = await lstat(path.join(hostTree, sub));
      const dir = path.join(maskDir, sub);
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, shiftId(st.uid, block), shiftId(st.gid, block));
      await chmod(dir, st.mode & 0o7777);
      made.add(sub);
    }
    nodes.push(path.join(maskDir, rel));
  }
  // whiteouts: Node cannot mknod; one shell per batch
  for (let i = 0; i < nodes.length; i += 500) {
    await runChecked('ERR_SANDBOX_SETUP', 'sh', ['-c', 'for p do mknod -- "$p" c 0 0 || exit 1; done', 'cellhost-mask', ...nodes.slice(i, i + 500)], { timeoutMs: 30_000 });
  }
  return true;
}

/** the paths in `hidden` that lie under `tree`, relative to it */
function hiddenUnder(tree: string, hidden: readonly string[]): string[] {
  const out: string[] = [];
  for (const h of hidden) {
    const rel = path.relative(tree, h);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) out.push(rel);
  }
  return out;
}

/** `paths` minus any that lie inside another of them (a hidden directory hides its entries) */
function outermost(paths: Iterable<string>): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) if (!out.some((o) => p.startsWith(o + '/'))) out.push(p);
  return out;
}

async function mountOverlay(target: string, lowers: readonly string[], extra: string): Promise<void> {
  for (const l of lowers) assertOverlayPath(l);
  await runChecked('ERR_SANDBOX_SETUP', 'mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')},${extra}`, target], { timeoutMs: 15_000 });
}

export function createSystemLayers(opts: SystemLayersOptions): SystemLayers {
  const dir = path.resolve(opts.dir);
  const log = opts.log ?? silentLogger;
  const views = new Map<string, Promise<InstanceView>>();

  const unmountUnder = async (root: string): Promise<string[]> => {
    const failed: string[] = [];
    for (const m of parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), root)) {
      let r = await runCommand('umount', [m.mountPoint], { timeoutMs: 15_000 });
      // a process that escaped the build's kill still inside: detach it now, it goes when they do
      if (r.code !== 0) r = await runCommand('umount', ['-l', m.mountPoint], { timeoutMs: 15_000 });
      if (r.code !== 0) {
        failed.push(m.mountPoint);
        log.warn('system_layer.umount_failed', { path: m.mountPoint, stderr: r.stderr.trim() });
      }
    }
    return failed;
  };

  /** unmounts everything under `root`, then removes it, never through a mount still there */
  const clear = async (root: string): Promise<void> => {
    const failed = await unmountUnder(root);
    const left = parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), root);
    if (failed.length || left.length) {
      throw new CellhostError('ERR_SANDBOX_SETUP', `mounts under ${root} could not be removed: ${[...failed, ...left.map((m) => m.mountPoint)].join(', ')}`);
    }
    await rm(root, { recursive: true, force: true });
  };

  const ensureDir = async () => {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // explicit: the platform runs with umask 077, and the sandbox uids must walk to the views
    await chmod(dir, 0o755);
    if (!(await isReachableByOthers(path.join(dir, 'x')))) {
      throw new CellhostError('ERR_SANDBOX_SETUP', `${dir} is not searchable by others: sandboxes could not bind the layers in it`);
    }
  };

  async function mountBuildRoot(req: { id: string; layerDir: string; block: IdBlock }): Promise<BuildRoot> {
    const { block } = req;
    if (!idMappingSupported()) throw new CellhostError('ERR_SANDBOX_SETUP', `system layers are not supported on the ${process.arch} architecture`);
    assertOverlayPath(dir);
    assertOverlayPath(req.layerDir);
    await ensureDir();
    const root = path.join(dir, `b-${req.id}`);
    // the build's root (host id block.first) binds the overlays from here; no one else gets in
    await mkdir(root, { mode: 0o700 });
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await clear(root);
    };
    try {
      await chown(root, block.first, block.first);
      await mkdir(req.layerDir, { mode: 0o700 });
      for (const tree of BUILD_TREES) {
        const st = await lstat(`/${tree}`);
        const upper = path.join(req.layerDir, tree);
        await mkdir(upper, { mode: 0o755 });
        await chown(upper, shiftId(st.uid, block), shiftId(st.gid, block));
        await chmod(upper, st.mode & 0o7777);
        await mkdir(path.join(req.layerDir, '.work', tree), { recursive: true, mode: 0o700 });
      }

      // what the build must not see of the host
      const unreadable = await findUnreadableByOthers(['/usr', '/etc', '/var/lib', '/var/cache']);
      const varEntries = await readdir('/var').catch(() => [] as string[]);
      const hide: Record<(typeof BUILD_TREES)[number], string[]> = { usr: [], etc: [], var: [] };
      for (const tree of BUILD_TREES) {
        const base = `/${tree}`;
        const rels = unreadable.filter((p) => p.startsWith(base + '/')).map((p) => p.slice(base.length + 1));
        hide[tree] = outermost([...rels, ...hiddenUnder(base, opts.hidden)]);
      }
      hide.var = outermost([...hide.var, ...varEntries.filter((e) => !VAR_FROM_HOST.has(e))]);

      const mountPoints = BUILD_TREES.flatMap((t) => [path.join(root, `lower-${t}`), path.join(root, t)]);
      for (const mp of mountPoints) await mkdir(mp, { mode: 0o755 });
      await mountIdmapped(block, BUILD_TREES.map((t) => ({ src: `/${t}`, dest: path.join(root, `lower-${t}`) })));

      for (const tree of BUILD_TREES) {
        const lowers: string[] = [];
        if (tree === 'var') {
          // empty dirs above the whiteouts of what /var does not show: log/ and tmp/ start empty
          const dirs = path.join(root, 'dirs-var');
          await mkdir(dirs, { mode: 0o755 });
          for (const d of VAR_EMPTY_DIRS) {
            const host = await lstat(path.join('/var', d.rel)).catch(() => null);
            const full = path.join(dirs, d.rel);
            await mkdir(full, { mode: 0o700 });
            await chown(full, shiftId(host?.isDirectory() ? host.uid : 0, block), shiftId(host?.isDirectory() ? host.gid : 0, block));
            await chmod(full, host?.isDirectory() ? host.mode & 0o7777 : d.mode);
          }
          const varSt = await lstat('/var');
          await chown(dirs, shiftId(varSt.uid, block), shiftId(varSt.gid, block));
          await chmod(dirs, varSt.mode & 0o7777);
          lowers.push(dirs);
        }
        const mask = path.join(root, `mask-${tree}`);
        if (await makeMask(mask, `/${tree}`, hide[tree], block)) lowers.push(mask);
        lowers.push(path.join(root, `lower-${tree}`));
        assertOverlayPath(path.join(req.layerDir, tree));
        await mountOverlay(path.join(root, tree), lowers, `upperdir=${path.join(req.layerDir, tree)},workdir=${path.join(req.layerDir, '.work', tree)},${BUILD_OVERLAY_OPTS}`);
      }
      log.info('system_layer.build_mounted', { id: req.id, hidden: Object.values(hide).reduce((n, h) => n + h.length, 0) });
      return { usr: path.join(root, 'usr'), etc: path.join(root, 'etc'), var: path.join(root, 'var'), release };
    } catch (err) {
      await release().catch((e) => log.error('system_layer.release_failed', { id: req.id, error: describeError(e) }));
      throw err;
    }
  }

  async function mountView(deploymentId: string, layerDir: string): Promise<InstanceView> {
    // a deployment on record with a layer runs only with it, never silently on the host's trees
    // (a data dir restored from a backup, which does not carry layers, has none)
    if (!(await lstat(layerDir).then((st) => st.isDirectory(), () => false))) {
      throw new CellhostError('ERR_SANDBOX_SETUP', `the system layer of deployment ${deploymentId} is missing (${layerDir}): its app needs it; build the source again (POST /api/v1/deployments/${deploymentId}/rebuild, or deploy it)`);
    }
    await ensureDir();
    assertOverlayPath(layerDir);
    const root = path.join(dir, `d-${deploymentId}`);
    // a leftover from an earlier attempt (or run) is cleared first
    await clear(root);
    await mkdir(root, { mode: 0o755 });
    // explicit: the platform runs with umask 077, and the service's uid binds the views from here
    await chmod(root, 0o755);
    try {
      const out: Record<string, string> = {};
      for (const v of INSTANCE_VIEWS) {
        const upper = path.join(layerDir, v.layer);
        const st = await lstat(upper).catch(() => null);
        const hidden = hiddenUnder(v.host, opts.hidden);
        if (!st?.isDirectory() && !hidden.length) {
          out[v.key] = v.host;
          continue;
        }
        const lowers = st?.isDirectory() ? [upper] : [];
        const mask = path.join(root, `mask-${v.key}`);
        if (await makeMask(mask, v.host, hidden, null)) lowers.push(mask);
        lowers.push(v.host);
        const target = path.join(root, v.key);
        await mkdir(target, { mode: 0o755 });
        await mountOverlay(target, lowers, VIEW_OVERLAY_OPTS);
        out[v.key] = target;
      }
      return out as unknown as InstanceView;
    } catch (err) {
      await clear(root).catch((e) => log.error('system_layer.release_failed', { id: deploymentId, error: describeError(e) }));
      throw err;
    }
  }

  return {
    mountBuildRoot,
    viewForInstances(deploymentId, layerDir) {
      let p = views.get(deploymentId);
      if (!p) {
        p = mountView(deploymentId, layerDir);
        views.set(deploymentId, p);
        // a failed mount is tried again by the next instance
        p.catch(() => views.delete(deploymentId));
      }
      return p;
    },
    async forget(deploymentId) {
      const p = views.get(deploymentId);
      views.delete(deploymentId);
      await p?.catch(() => undefined);
      await clear(path.join(dir, `d-${deploymentId}`));
    },
    async close() {
      const pending = [...views.values()];
      views.clear();
      await Promise.allSettled(pending);
      await clear(dir);
    },
    async reclaimLeftovers() {
      const left = parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), dir);
      if (left.length) log.warn('system_layer.reclaimed', { mounts: left.length });
      await clear(dir);
    },
  };
}

export interface LayerSeal {
  /** nothing but directories left: no layer is kept */
  empty: boolean;
  /** FIFOs, sockets and devices the build left (whiteouts stay: they are how a layer removes a host file) */
  removed: RemovedEntry[];
  /** files whose setuid/setgid bits were cleared (they cannot take effect in a sandbox) */
  setuidCleared: string[];
}

/**
 * After the build (its overlays unmounted): the layer becomes what instances may see. Overlay's
 * work dirs go, /var keeps only lib/ (logs, caches and tmp of the build are not part of it), special
 * files but whiteouts are removed, setuid/setgid bits are cleared, and every entry must be owned
 * by ids of the service's block (whiteouts, which overlayfs creates as root, are handed to it).
 * Never follows a link. The layer dir itself stays root's, 0700.
 */
export async function sealSystemLayer(layerDir: string, block: IdBlock): Promise<LayerSeal> {
  await rm(path.join(layerDir, '.work'), { recursive: true, force: true });
  for (const entry of await readdir(path.join(layerDir, 'var')).catch(() => [] as string[])) {
    if (entry !== 'lib') await rm(path.join(layerDir, 'var', entry), { recursive: true, force: true });
  }
  const inBlock = (id: number) => id >= block.first && id < block.first + block.count;
  const seal: LayerSeal = { empty: true, removed: [], setuidCleared: [] };
  await walkInside(layerDir, async (e) => {
    if (!e.rel) return;
    const whiteout = e.st.isCharacterDevice() && e.st.rdev === 0;
    if (!whiteout && !e.st.isFile() && !e.st.isDirectory() && !e.st.isSymbolicLink()) {
      await unlink(e.full);
      seal.removed.push({ rel: e.rel, kind: entryKind(e.st) });
      return;
    }
    if (!e.st.isDirectory()) seal.empty = false;
    if (!inBlock(e.st.uid) || !inBlock(e.st.gid)) {
      if (!whiteout) {
        throw new CellhostError('ERR_SANDBOX_SETUP', `system layer entry ${e.rel} is owned by host ids ${e.st.uid}:${e.st.gid}, outside the service's block ${block.first}-${block.first + block.count - 1}`);
      }
      await lchown(e.full, block.first, block.first);
    }
    if (e.st.isFile() && e.st.mode & 0o6000) {
      const handle = await open(e.full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
      try {
        const st = await handle.stat();
        if (st.ino !== e.st.ino || st.dev !== e.st.dev) throw new CellhostError('ERR_SANDBOX_SETUP', `system layer entry ${e.rel} changed while it was sealed`);
        await handle.chmod(st.mode & 0o1777);
      } finally {
        await handle.close();
      }
      seal.setuidCleared.push(e.rel);
    }
  });
  await chown(layerDir, 0, 0);
  await chmod(layerDir, 0o700);
  return seal;
}

export interface SystemLayerProbe {
  available: boolean;
  /** why not, in words a user can act on */
  reason?: string;
}

/**
 * Can this host build system layers? perl, idmapped mounts and overlayfs over them, tried for real
 * on an empty dir (mapped by `block`, the upper under `upperRoot`, on the data disk like a layer's).
 */
export async function probeSystemLayers(opts: { dir: string; upperRoot: string; block: IdBlock; seccomp: boolean }): Promise<SystemLayerProbe> {
  if (!idMappingSupported()) return { available: false, reason: `system layers are not supported on the ${process.arch} architecture` };
  if (!opts.seccomp) return { available: false, reason: 'system layers need the seccomp filter (root in a build is kept from new namespaces and mounts by it)' };
  const perl = await runCommand('perl', ['-e', '1'], { timeoutMs: 5000 });
  if (perl.spawnError || perl.code !== 0) return { available: false, reason: 'perl is not installed: system layers map ids with it (apt-get install perl-base)' };
  const probe = path.join(opts.dir, `probe-${process.pid}`);
  const work = path.join(opts.upperRoot, `layer-probe-${process.pid}`);
  const undo = async () => {
    for (const m of parseMountsUnder(await readFile('/proc/self/mountinfo', 'utf8'), probe)) await runCommand('umount', ['-l', m.mountPoint], { timeoutMs: 10_000 });
    await rm(probe, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  };
  try {
    assertOverlayPath(probe);
    assertOverlayPath(work);
    await mkdir(opts.dir, { recursive: true, mode: 0o755 });
    for (const d of ['src', 'lower', 'merged']) await mkdir(path.join(probe, d), { recursive: true, mode: 0o755 });
    for (const d of ['upper', 'work']) await mkdir(path.join(work, d), { recursive: true, mode: 0o700 });
    await writeFile(path.join(probe, 'src', 'f'), '');
    await mountIdmapped(opts.block, [{ src: path.join(probe, 'src'), dest: path.join(probe, 'lower') }]);
    await mountOverlay(path.join(probe, 'merged'), [path.join(probe, 'lower')], `upperdir=${path.join(work, 'upper')},workdir=${path.join(work, 'work')},${BUILD_OVERLAY_OPTS}`);
    // the host's root-owned file, as the build's root will see it
    const st = await lstat(path.join(probe, 'merged', 'f'));
    if (st.uid !== opts.block.first) return { available: false, reason: `an idmapped overlay showed owner ${st.uid}, not ${opts.block.first}` };
    return { available: true };
  } catch (err) {
    return { available: false, reason: `idmapped overlays do not work here (Linux 5.19 or later is needed): ${describeError(err)}` };
  } finally {
    await undo().catch(() => undefined);
  }
}
