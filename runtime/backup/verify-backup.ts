// Reads a backup from end to end, writing nothing: the manifest must come first, every entry
// must be one it lists and match it (type, size, sha256, mode, owner, link target), and every
// entry it lists must be there. A truncated file fails in the gzip stream or as missing entries.
import crypto from 'node:crypto';
import fs from 'node:fs';
import * as tar from 'tar';
import { backupInvalid, MANIFEST_NAME, parseManifest, type Manifest, type ManifestEntry } from './manifest.ts';

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** tar's entry types as the manifest names them */
function typeOf(entry: tar.ReadEntry): ManifestEntry['type'] | null {
  if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') return 'file';
  if (entry.type === 'Directory') return 'dir';
  if (entry.type === 'SymbolicLink') return 'symlink';
  return null;
}

/** tar writes a directory's path with a trailing slash */
const entryPath = (entry: tar.ReadEntry) => entry.path.replace(/\/+$/, '');

export async function verifyBackup(file: string): Promise<Manifest> {
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw backupInvalid(`no backup file at ${file}`);
  let manifest: Manifest | null = null;
  let byPath = new Map<string, ManifestEntry>();
  const seen = new Set<string>();
  let failure: Error | null = null;
  const fail = (err: Error) => {
    failure ??= err;
  };
  let first = true;

  const onEntry = (entry: tar.ReadEntry) => {
    const p = entryPath(entry);
    if (first) {
      first = false;
      if (p !== MANIFEST_NAME || typeOf(entry) !== 'file' || entry.size > MAX_MANIFEST_BYTES) {
        fail(backupInvalid('this file is not a cellhost backup (it does not start with its manifest)'));
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => {
        try {
          manifest = parseManifest(Buffer.concat(chunks).toString('utf8'));
          byPath = new Map(manifest.entries.map((e) => [e.path, e]));
        } catch (err) {
          fail(err as Error);
        }
      });
      return;
    }
    if (failure || !manifest) return;
    const listed = byPath.get(p);
    const type = typeOf(entry);
    if (!listed) return fail(backupInvalid(`the backup holds "${p}", which its manifest does not list: it was altered`));
    if (seen.has(p)) return fail(backupInvalid(`the backup holds "${p}" twice: it was altered`));
    seen.add(p);
    if (type !== listed.type) return fail(backupInvalid(`"${p}" is a ${type ?? entry.type} in the backup but a ${listed.type} in its manifest: it was altered`));
    if (listed.type === 'symlink') {
      if (entry.linkpath !== listed.target) fail(backupInvalid(`the link "${p}" points elsewhere than its manifest says: it was altered`));
      return;
    }
    if ((entry.mode ?? 0) % 0o10000 !== listed.mode || entry.uid !== listed.uid || entry.gid !== listed.gid) {
      return fail(backupInvalid(`the mode or owner of "${p}" differs from its manifest: it was altered`));
    }
    if (listed.type !== 'file') return;
    if (entry.size !== listed.size) return fail(backupInvalid(`"${p}" is ${entry.size} bytes in the backup but ${listed.size} in its manifest: it was altered`));
    const hash = crypto.createHash('sha256');
    entry.on('data', (c: Buffer) => hash.update(c));
    entry.on('end', () => {
      if (hash.digest('hex') !== listed.sha256) fail(backupInvalid(`the content of "${p}" does not match its checksum: the backup is damaged or was altered`));
    });
  };

  try {
    await tar.t({ file, strict: true, onReadEntry: onEntry, maxDecompressionRatio: Infinity } as tar.TarOptionsWithAliasesFile);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === 'Z_BUF_ERROR' || /unexpected end/i.test((err as Error).message) ? 'it ends early (truncated)' : (err as Error).message;
    throw backupInvalid(`the backup ${file} cannot be read: ${why}`, err);
  }
  if (failure) throw failure;
  if (!manifest) throw backupInvalid(first ? `${file} is empty or not a tar.gz archive` : 'the backup manifest could not be read');
  const missing = (manifest as Manifest).entries.filter((e) => !seen.has(e.path));
  if (missing.length) throw backupInvalid(`the backup lacks ${missing.length} entr${missing.length === 1 ? 'y' : 'ies'} its manifest lists (first: "${missing[0]!.path}"): it is truncated or was altered`);
  return manifest;
}
