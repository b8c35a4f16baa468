// `cellhost deploy DIR`: the directory as a tar.gz, without what the build recreates (installed
// dependencies, virtualenvs, build output) or what never belongs in a deploy (.git, OS litter).
import { existsSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as tar from 'tar';
import { CellhostError } from '../../runtime/core/errors.ts';
import { compileIgnoreRules, type IgnoreMatcher } from './ignore-rules.ts';

export const IGNORE_FILE = '.cellhostignore';

const ALWAYS_SKIPPED_DIRS = new Set(['.git', 'node_modules', '.venv', '__pycache__']);
const ALWAYS_SKIPPED_FILES = new Set(['.DS_Store', 'Thumbs.db']);

async function readIgnoreFile(dir: string): Promise<IgnoreMatcher | null> {
  try {
    return compileIgnoreRules(await readFile(join(dir, IGNORE_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Whether an entry the walker meets is left out; `rel` is relative to the packed directory. */
export function isSkippedByDefault(dir: string, rel: string, st: Stats): boolean {
  const name = basename(rel);
  if (st.isDirectory()) {
    if (ALWAYS_SKIPPED_DIRS.has(name)) return true;
    // Rust's build output, but only beside a Cargo.toml: a folder called target may be source.
    if (name === 'target' && existsSync(join(dir, rel, '..', 'Cargo.toml'))) return true;
    // Any Python virtualenv, whatever it is called (venv, env, .env-py…).
    if (existsSync(join(dir, rel, 'pyvenv.cfg'))) return true;
    return false;
  }
  if (ALWAYS_SKIPPED_FILES.has(name)) return true;
  // Sockets, fifos and devices cannot be deployed and the unpacker would refuse them.
  return !st.isFile() && !st.isSymbolicLink();
}

/**
 * Packs `dir` as a gzip-compressed tar, honouring `.cellhostignore` at its top. `onProgress`
 * hears the compressed size so far as the archive grows (the CLI's progress line).
 */
export async function packDirectory(dir: string, onProgress?: (bytes: number) => void): Promise<Buffer> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new CellhostError('ERR_VALIDATION', `not a directory: ${dir}`);
  const ignore = await readIgnoreFile(dir);
  // node-tar's synchronous packer: its asynchronous one fails with "zlib: stream error" (and an
  // unhandled error event) on some trees with hard links, e.g. a dotfile beside two links to one
  // file (isaacs/node-tar#460). Packing is all the CLI does meanwhile.
  const pack = tar.c(
    {
      sync: true,
      gzip: true,
      cwd: dir,
      portable: true, // no owner names or ids from this machine
      filter: (path: string, entry: Stats | tar.ReadEntry) => {
        const rel = path.replace(/^\.\/?/, '');
        if (rel === '') return true;
        if (entry instanceof tar.ReadEntry) return true; // only met when reading archives, not packing
        const entryStat = entry;
        if (isSkippedByDefault(dir, rel, entryStat)) return false;
        return !ignore?.(rel, entryStat.isDirectory());
      },
    },
    ['.'],
  );
  if (!onProgress) return pack.concat();
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of pack) {
    chunks.push(chunk);
    bytes += chunk.length;
    onProgress(bytes);
  }
  return Buffer.concat(chunks);
}
