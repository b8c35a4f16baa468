// The one place source files reach the disk. Archives are written into a staging directory inside
// destDir; symlinks are only recorded while entries arrive and made at the end, so no write ever
// goes through a link. The end step picks the root (single top-level directory, "Root Directory"),
// checks every link against that root and moves the result up into destDir.
import { constants as fsConstants } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, readdir, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import {
  ancestorsOf,
  checkLinkStaysInside,
  isWithin,
  normalizeEntryPath,
  normalizeRootDir,
  refuseEntry,
  showEntryName,
  type TreeNode,
} from './entry-path.ts';

export interface SourceLimits {
  /** Unpacked bytes, counted as written, never taken from headers. */
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_SOURCE_LIMITS: Readonly<SourceLimits> = Object.freeze({
  maxBytes: 200 * 1024 * 1024,
  maxEntries: 100_000,
});

export interface SourceTree {
  readonly stagingDir: string;
  addDirectory(name: string): Promise<void>;
  addFile(name: string, mode: number, body: AsyncIterable<Buffer>, declaredSize?: number): Promise<void>;
  addSymlink(name: string, target: string): Promise<void>;
  /** A tar hard link: `targetName` is another entry's name, relative to the archive root. */
  addHardlink(name: string, targetName: string): Promise<void>;
  /** Takes whatever is already in stagingDir (a git checkout) as the tree, checking it like an archive. */
  adoptStagingContents(): Promise<void>;
  finish(opts: { rootDir?: string; stripSingleTopDir: boolean }): Promise<{ files: number; bytes: number }>;
  discard(): Promise<void>;
}

const STAGING_PREFIX = '.cellhost-unpack-';
// Far above any real project path, far below PATH_MAX; bounds the memory the entry map can take.
const MAX_PATH_BYTES = 1024;
const DIR_MODE = 0o755;
const WRITE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/** Keeps only the executable bit from the archive; setuid, setgid, sticky and odd permissions go. */
export function fileModeFor(archiveMode: number | undefined): number {
  return (archiveMode ?? 0) & 0o111 ? 0o755 : 0o644;
}

function describeKind(node: TreeNode): string {
  return node.kind === 'dir' ? 'directory' : node.kind === 'symlink' ? 'symlink' : 'file';
}

/** Runs a file-system call for an entry, turning name problems into a refusal that names it. */
async function onFs<T>(raw: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENAMETOOLONG') throw refuseEntry(raw, 'has a name too long for the file system');
    if (code === 'EILSEQ' || code === 'EINVAL') throw refuseEntry(raw, 'has a name the file system refuses');
    throw err;
  }
}

// mkdir's mode passes through the umask; the build user must be able to read whatever it is.
async function makeDir(raw: string, path: string): Promise<void> {
  await onFs(raw, () => mkdir(path));
  await chmod(path, DIR_MODE);
}

export function tooLarge(message: string, details?: Record<string, unknown>): CellhostError {
  return new CellhostError('ERR_SOURCE_TOO_LARGE', message, { details });
}

export async function createSourceTree(
  destDir: string,
  opts: { limits: SourceLimits; signal?: AbortSignal },
): Promise<SourceTree> {
  const { limits, signal } = opts;
  const dest = await realpath(destDir);
  const existing = await readdir(dest);
  if (existing.length > 0) {
    throw new CellhostError('ERR_INTERNAL', `unpack destination is not empty: ${dest}`);
  }
  const staging = await mkdtemp(join(dest, STAGING_PREFIX));
  const nodes = new Map<string, TreeNode>();
  const pendingLinks = new Set<string>();
  let entries = 0;
  let bytes = 0;

  const onDisk = (key: string) => (key === '' ? staging : join(staging, key));

  const countEntry = () => {
    signal?.throwIfAborted();
    if (++entries > limits.maxEntries) {
      throw tooLarge(`the source has more than ${limits.maxEntries} entries`, { maxEntries: limits.maxEntries });
    }
  };

  const checkedKey = (raw: string): string => {
    const key = normalizeEntryPath(raw);
    if (Buffer.byteLength(key) > MAX_PATH_BYTES) throw refuseEntry(raw, `has a path longer than ${MAX_PATH_BYTES} bytes`);
    return key;
  };

  const countBytes = (n: number, name: string) => {
    bytes += n;
    if (bytes > limits.maxBytes) {
      throw tooLarge(`the source unpacks to more than ${limits.maxBytes} bytes (stopped at '${showEntryName(name)}')`, {
        maxBytes: limits.maxBytes,
        entry: showEntryName(name),
      });
    }
  };

  // Creates missing parent directories; refuses a path that runs through a link or a file.
  // Directories an entry implies count as entries: otherwise one deep path per entry could make
  // millions of them.
  const ensureParents = async (raw: string, key: string) => {
    for (const dir of ancestorsOf(key)) {
      const node = nodes.get(dir);
      if (node === undefined) {
        countEntry();
        await makeDir(raw, onDisk(dir));
        nodes.set(dir, { kind: 'dir' });
      } else if (node.kind === 'symlink') {
        throw refuseEntry(raw, `goes through the symlink '${showEntryName(dir)}'`);
      } else if (node.kind === 'file') {
        throw refuseEntry(raw, `is inside '${showEntryName(dir)}', which is a file`);
      }
    }
  };

  // Clears the way for a non-directory entry; a later entry replaces an earlier one, as tar does.
  const replaceable = async (raw: string, key: string, kind: string) => {
    const node = nodes.get(key);
    if (node === undefined) return;
    if (node.kind === 'dir') throw refuseEntry(raw, `is both a directory and a ${kind}`);
    if (node.kind === 'symlink' && pendingLinks.has(key)) {
      pendingLinks.delete(key);
    } else {
      await unlink(onDisk(key));
    }
    nodes.delete(key);
  };

  const tree: SourceTree = {
    stagingDir: staging,

    async addDirectory(raw) {
      countEntry();
      const key = checkedKey(raw);
      if (key === '') return;
      await ensureParents(raw, key);
      const node = nodes.get(key);
      if (node?.kind === 'dir') return;
      if (node) throw refuseEntry(raw, `is both a ${describeKind(node)} and a directory`);
      await makeDir(raw, onDisk(key));
      nodes.set(key, { kind: 'dir' });
    },

    async addFile(raw, mode, body, declaredSize) {
      countEntry();
      const key = checkedKey(raw);
      if (key === '') throw refuseEntry(raw, 'is a file at the archive root itself');
      // Headers are only used to refuse early, never to allow: the bytes below are what count.
      if (declaredSize !== undefined && bytes + declaredSize > limits.maxBytes) countBytes(declaredSize, raw);
      await ensureParents(raw, key);
      await replaceable(raw, key, 'file');
      const finalMode = fileModeFor(mode);
      const fh = await onFs(raw, () => open(onDisk(key), WRITE_FLAGS, finalMode));
      let size = 0;
      try {
        for await (const chunk of body) {
          signal?.throwIfAborted();
          countBytes(chunk.length, raw);
          size += chunk.length;
          await fh.write(chunk);
        }
        await fh.chmod(finalMode); // the umask may have taken bits off at open
      } finally {
        nodes.set(key, { kind: 'file', bytes: size });
        await fh.close();
      }
    },

    async addSymlink(raw, target) {
      countEntry();
      const key = checkedKey(raw);
      if (key === '') throw refuseEntry(raw, 'is a symlink at the archive root itself');
      if (target === '' || target.includes('\0')) throw refuseEntry(raw, 'is a symlink with an empty or invalid target');
      if (target.startsWith('/')) throw refuseEntry(raw, `is a symlink to an absolute path ('${showEntryName(target)}')`);
      await ensureParents(raw, key);
      await replaceable(raw, key, 'symlink');
      nodes.set(key, { kind: 'symlink', target });
      pendingLinks.add(key);
    },

    async addHardlink(raw, targetRaw) {
      countEntry();
      const key = checkedKey(raw);
      let targetKey: string;
      try {
        targetKey = normalizeEntryPath(targetRaw);
      } catch {
        throw refuseEntry(raw, `is a hard link outside the archive ('${showEntryName(targetRaw)}')`);
      }
      const target = nodes.get(targetKey);
      if (target?.kind !== 'file') {
        throw refuseEntry(raw, `is a hard link to '${showEntryName(targetRaw)}', which is not an earlier file in the archive`);
      }
      if (key === '' || key === targetKey) throw refuseEntry(raw, 'is a hard link to itself');
      await ensureParents(raw, key);
      await replaceable(raw, key, 'hard link');
      await onFs(raw, () => link(onDisk(targetKey), onDisk(key)));
      nodes.set(key, { kind: 'file', bytes: target.bytes });
    },

    async adoptStagingContents() {
      const stack: string[] = [''];
      while (stack.length > 0) {
        const dir = stack.pop() as string;
        for (const ent of await readdir(onDisk(dir), { withFileTypes: true })) {
          const key = dir === '' ? ent.name : `${dir}/${ent.name}`;
          countEntry();
          if (ent.isDirectory()) {
            const st = await lstat(onDisk(key));
            if ((st.mode & 0o7777) !== DIR_MODE) await chmod(onDisk(key), DIR_MODE);
            nodes.set(key, { kind: 'dir' });
            stack.push(key);
          } else if (ent.isSymbolicLink()) {
            const target = await readlink(onDisk(key));
            if (target.startsWith('/')) throw refuseEntry(key, `is a symlink to an absolute path ('${showEntryName(target)}')`);
            nodes.set(key, { kind: 'symlink', target });
          } else if (ent.isFile()) {
            const st = await lstat(onDisk(key));
            countBytes(st.size, key);
            // git honours the umask and keeps the executable bit: same rule as archives.
            const mode = fileModeFor(st.mode);
            if ((st.mode & 0o7777) !== mode) await chmod(onDisk(key), mode);
            nodes.set(key, { kind: 'file', bytes: st.size });
          } else {
            throw refuseEntry(key, 'is a device file, fifo or socket');
          }
        }
      }
    },

    async finish({ rootDir, stripSingleTopDir }) {
      signal?.throwIfAborted();
      if (nodes.size === 0) throw new CellhostError('ERR_SOURCE_INVALID', 'the source holds no files');

      let prefix = '';
      if (stripSingleTopDir) {
        const tops = new Set<string>();
        for (const key of nodes.keys()) tops.add(key.split('/', 1)[0]);
        const [only] = tops;
        if (tops.size === 1 && nodes.get(only)?.kind === 'dir') prefix = only;
      }

      const rel = normalizeRootDir(rootDir);
      const root = [prefix, rel].filter(Boolean).join('/');
      if (rel !== '') {
        for (const dir of [...ancestorsOf(root), root]) {
          if (!isWithin(dir, prefix) || dir === prefix) continue;
          const node = nodes.get(dir);
          const shown = showEntryName(rel);
          if (node === undefined) {
            throw new CellhostError('ERR_SOURCE_INVALID', `root directory '${shown}' does not exist in the source`, { details: { rootDir: shown } });
          }
          if (node.kind !== 'dir') {
            throw new CellhostError('ERR_SOURCE_INVALID', `root directory '${shown}' is a ${describeKind(node)}, not a directory`, {
              details: { rootDir: shown },
            });
          }
        }
      }

      let files = 0;
      let kept = 0;
      for (const [key, node] of nodes) {
        if (key === root || !isWithin(key, root)) continue;
        if (node.kind === 'file') {
          files++;
          kept += node.bytes;
        } else if (node.kind === 'symlink') {
          files++;
          const verdict = checkLinkStaysInside(nodes, key, node.target, root);
          if (!verdict.ok) throw refuseEntry(key, `is a symlink to '${showEntryName(node.target)}', which ${verdict.reason}`);
        }
      }
      if (files === 0) {
        const where = rel === '' ? 'the source' : `root directory '${showEntryName(rel)}'`;
        throw new CellhostError('ERR_SOURCE_INVALID', `${where} holds no files`);
      }

      for (const key of pendingLinks) {
        if (isWithin(key, root) && key !== root) {
          const node = nodes.get(key) as { kind: 'symlink'; target: string };
          await onFs(key, () => symlink(node.target, onDisk(key)));
        }
      }
      pendingLinks.clear();

      const from = onDisk(root);
      const stagingName = basename(staging);
      for (const name of await readdir(from)) {
        if (name === stagingName) throw refuseEntry(name, 'clashes with the unpacker’s staging directory; rename it');
        await rename(join(from, name), join(dest, name));
      }
      await rm(staging, { recursive: true, force: true });
      return { files, bytes: kept };
    },

    async discard() {
      await rm(staging, { recursive: true, force: true });
    },
  };
  return tree;
}
