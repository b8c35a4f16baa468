// Files that untrusted code wrote, as the platform touches them as root: images and build dirs
// (a build command or any dependency's install script controls every entry of them) and the
// per-service dependency caches. Everything in builder/ and control/ that looks into such a tree
// goes through here, and the rule is:
// - never on the main thread synchronously: a FIFO's open() blocks until a writer comes, and a
//   blocked main thread is a platform that answers nothing;
// - never through a symlink, in the last component or any directory above it: a link to a
//   root-only file would let the build read it (or learn whether it exists) through the platform;
// - never from a FIFO, socket or device: only regular files are read, and only so many bytes,
//   within a time limit;
// - copies and walks never follow links out of the tree and never copy special files.
// A path is checked component by component with lstat (each parent a real directory), the file
// is opened with O_NOFOLLOW | O_NONBLOCK, fstat must show the same regular file, and the kernel's
// own idea of the opened path (/proc/self/fd/N) must lie inside the tree, which also catches a
// parent swapped for a link between the check and the open.
import { constants, type Stats } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, readlink, realpath, rm, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from './run-command.ts';

export type EntryKind = 'file' | 'directory' | 'symlink' | 'FIFO' | 'socket' | 'character device' | 'block device';

export function entryKind(st: Stats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  return 'block device';
}

export interface ReadLimits {
  maxBytes: number;
  timeoutMs: number;
}

/** manifests (package.json, Cargo.toml, lockfiles) are small; a bigger one is not worth reading */
export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({ maxBytes: 4 * 1024 * 1024, timeoutMs: 5000 });

export type ReadResult = { ok: true; data: Buffer } | { ok: false; missing: boolean; reason: string };

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** "a/b/c" → ["a","b","c"]; refuses absolute paths and ".." (callers name files, never take paths from the tree) */
function components(rel: string): string[] {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (path.isAbsolute(rel) || parts.includes('..') || !parts.length) throw new Error(`"${rel}" is not a relative path inside the tree`);
  return parts;
}

type Located = { full: string; st: Stats } | { missing: true; reason: string } | { refused: string };

/** lstat of root/rel, each directory above it checked to be a real directory (not a link) */
async function locate(root: string, rel: string): Promise<Located> {
  const parts = components(rel);
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    cur = path.join(cur, parts[i]!);
    let st: Stats;
    try {
      st = await lstat(cur);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: true, reason: `${rel} does not exist` };
      throw err;
    }
    if (i === parts.length - 1) return { full: cur, st };
    if (!st.isDirectory()) {
      return { refused: `${parts.slice(0, i + 1).join('/')} is a ${entryKind(st)}, not a directory: ${rel} was not read through it` };
    }
  }
  throw new Error('unreachable');
}

/** what root/rel is, without following links; null when absent or behind a parent that is not a real directory */
export async function kindInside(root: string, rel: string): Promise<EntryKind | null> {
  const found = await locate(root, rel);
  return 'st' in found ? entryKind(found.st) : null;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** the real path of a tree's root, so the opened file's kernel path can be compared with it */
async function realRoot(root: string): Promise<string> {
  const real = await realpath(root);
  return real.endsWith('/') ? real : real + '/';
}

async function readChecked(root: string, rel: string, limits: ReadLimits): Promise<ReadResult> {
  const found = await locate(root, rel);
  if ('missing' in found) return { ok: false, missing: true, reason: found.reason };
  if ('refused' in found) return { ok: false, missing: false, reason: found.refused };
  const kind = entryKind(found.st);
  // refused before any open: opening a device or a FIFO can itself have effects
  if (kind !== 'file') return { ok: false, missing: false, reason: `${rel} is a ${kind}, not a regular file: not read` };
  if (found.st.size > limits.maxBytes) return { ok: false, missing: false, reason: `${rel} is larger than ${formatLimit(limits.maxBytes)}: not read` };
  const inside = await realRoot(root);
  let handle;
  try {
    handle = await open(found.full, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, missing: true, reason: `${rel} does not exist` };
    // ELOOP: it became a link after the lstat
    return { ok: false, missing: false, reason: `${rel} could not be opened safely (${code ?? 'error'}): not read` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== found.st.ino || st.dev !== found.st.dev) {
      return { ok: false, missing: false, reason: `${rel} changed while it was opened: not read` };
    }
    const opened = await readlink(`/proc/self/fd/${handle.fd}`);
    if (!opened.startsWith(inside)) return { ok: false, missing: false, reason: `${rel} resolves outside its tree: not read` };
    // at most one byte past the limit, to tell "exactly the limit" from "more" (it may have grown)
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(64 * 1024, limits.maxBytes + 1 - total);
      if (want <= 0) break;
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(chunk, 0, want, total);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total > limits.maxBytes) return { ok: false, missing: false, reason: `${rel} is larger than ${formatLimit(limits.maxBytes)}: not read` };
    return { ok: true, data: Buffer.concat(chunks, total) };
  } finally {
    await handle.close();
  }
}

/**
 * Reads root/rel when it is a regular file inside the tree, reached without any link, at most
 * `maxBytes` long, within `timeoutMs`; otherwise says why not (missing, a link, a FIFO, too big).
 */
export function readFileInside(root: string, rel: string, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<ReadResult> {
  return withTimeout(readChecked(root, rel, limits), limits.timeoutMs, () => ({ ok: false, missing: false, reason: `${rel} was not read within ${limits.timeoutMs} ms` }));
}

export interface WalkEntry {
  /** path relative to the root, "" for the root itself */
  rel: string;
  full: string;
  st: Stats;
}

/**
 * Visits every entry under root (root first, each directory before its entries) without
 * following links: a directory is listed only when lstat says it is one. `visit` returning false
 * skips a directory's contents. At most `concurrency` entries are in hand at once, however wide
 * or deep the tree.
 */
export async function walkInside(root: string, visit: (e: WalkEntry) => Promise<boolean | void>, concurrency = 32): Promise<void> {
  const pending: { rel: string; full: string }[] = [{ rel: '', full: root }];
  let active = 0;
  let failed: unknown = null;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      if (failed) return;
      if (!pending.length && !active) return resolve();
      while (active < concurrency && pending.length) {
        const item = pending.pop()!;
        active++;
        void step(item).then(
          () => {
            active--;
            pump();
          },
          (err) => {
            failed = err;
            reject(err);
          },
        );
      }
    };
    const step = async ({ rel, full }: { rel: string; full: string }) => {
      let st: Stats;
      try {
        st = await lstat(full);
      } catch (err) {
        // gone since its directory was listed
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && rel) return;
        throw err;
      }
      const descend = (await visit({ rel, full, st })) !== false;
      if (!descend || !st.isDirectory()) return;
      for (const n of await readdir(full)) pending.push({ rel: rel ? `${rel}/${n}` : n, full: path.join(full, n) });
    };
    pump();
  });
}

export interface RemovedEntry {
  rel: string;
  kind: EntryKind;
}

const isSpecial = (st: Stats) => !st.isFile() && !st.isDirectory() && !st.isSymbolicLink();

/** unlinks every FIFO, socket and device under root; returns what it removed */
export async function removeSpecialFiles(root: string): Promise<RemovedEntry[]> {
  const removed: RemovedEntry[] = [];
  await walkInside(root, async (e) => {
    if (!isSpecial(e.st)) return;
    await unlink(e.full);
    removed.push({ rel: e.rel, kind: entryKind(e.st) });
  });
  return removed;
}

/** "package.json (FIFO), run/sock (socket)", at most `max` named */
export function describeRemoved(removed: readonly RemovedEntry[], max = 10): string {
  const named = removed.slice(0, max).map((r) => `${r.rel} (${r.kind})`);
  return named.join(', ') + (removed.length > max ? ` and ${removed.length - max} more` : '');
}

export interface CopyReport {
  files: number;
  bytes: number;
  /** entries not copied: FIFOs, sockets, devices */
  skipped: RemovedEntry[];
}

/**
 * Copies srcRoot/rel to destRoot/rel (which must not exist yet): directories and regular files
 * are copied, links are recreated as they are (never followed), special files are left out.
 * Gives up (returns null, leaving nothing behind) past `maxBytes` of file content or when the
 * source is not a real directory inside srcRoot.
 */
export async function copyTreeInside(srcRoot: string, rel: string, destRoot: string, opts: { maxBytes: number }): Promise<CopyReport | null> {
  const found = await locate(srcRoot, rel);
  if (!('st' in found) || !found.st.isDirectory()) return null;
  const destTop = path.join(destRoot, ...components(rel));
  const inside = await realRoot(srcRoot);
  const report: CopyReport = { files: 0, bytes: 0, skipped: [] };
  let over = false;
  try {
    await mkdir(destTop, { mode: 0o755 });
    await walkInside(found.full, async (e) => {
      if (over) return false;
      const dest = e.rel ? path.join(destTop, e.rel) : destTop;
      if (e.st.isDirectory()) {
        if (e.rel) await mkdir(dest, { mode: 0o755 });
        return true;
      }
      if (e.st.isSymbolicLink()) {
        await symlink(await readlink(e.full), dest);
        return;
      }
      if (!e.st.isFile()) {
        report.skipped.push({ rel: path.join(rel, e.rel), kind: entryKind(e.st) });
        return;
      }
      report.bytes += e.st.size;
      if (report.bytes > opts.maxBytes) {
        over = true;
        return;
      }
      const handle = await open(e.full, OPEN_FLAGS);
      try {
        const st = await handle.stat();
        const opened = await readlink(`/proc/self/fd/${handle.fd}`);
        if (!st.isFile() || st.ino !== e.st.ino || !opened.startsWith(inside)) throw new Error(`${path.join(rel, e.rel)} changed during the copy`);
        // the kernel's link to the file already open: the copy reads exactly what was checked
        await copyFile(`/proc/self/fd/${handle.fd}`, dest, constants.COPYFILE_EXCL);
        await utimes(dest, st.atime, st.mtime);
      } finally {
        await handle.close();
      }
      report.files++;
    });
  } catch (err) {
    await rm(destTop, { recursive: true, force: true });
    throw err;
  }
  if (over) {
    await rm(destTop, { recursive: true, force: true });
    return null;
  }
  return report;
}

/**
 * Disk space a tree takes, in bytes, measured by `du` in a child process: it walks without
 * following links (and with openat, so a directory swapped for a link mid-walk is not followed),
 * counts hard links once, stays on one filesystem, and costs the platform's main thread nothing
 * but the spawn. A tree that does not exist takes 0.
 */
export async function diskUsage(dir: string, timeoutMs = 60_000): Promise<number> {
  const r = await runCommand('du', ['-s', '-x', '-B1', '--', dir], { timeoutMs });
  const bytes = Number(/^(\d+)\s/.exec(r.stdout)?.[1]);
  if (Number.isFinite(bytes)) return bytes;
  if (/No such file or directory/.test(r.stderr) && !r.stdout) return 0;
  // files vanishing mid-walk make du exit 1 but still print the total
  throw new Error(`du ${dir} failed: ${r.spawnError?.message ?? (r.stderr.trim() || `exit ${r.code}`)}`);
}

export function formatLimit(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${+(bytes / 1024 / 1024 / 1024).toFixed(1)} GB`;
  if (bytes >= 1024 * 1024) return `${+(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} B`;
}
