// A backup is one tar.gz: manifest.json first, then the store (cellhost.db), the master key when
// it was asked for (master.key), the build logs (logs/builds/) and the images (images/<id>/).
// The manifest lists every entry with what it must be (a file's size, sha256, mode and owner; a
// link's target; a directory's mode and owner): a restore takes nothing it does not list and
// nothing that differs from it, so a damaged or altered backup is refused as a whole.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CellhostError } from '../core/errors.ts';

export const BACKUP_FORMAT = 'cellhost-backup';
export const BACKUP_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';

export type ManifestEntry =
  | { type: 'file'; path: string; size: number; sha256: string; mode: number; uid: number; gid: number }
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number }
  | { type: 'symlink'; path: string; target: string };

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  createdAt: string;
  cellhostVersion: string;
  /** the store's schema version (user_version) */
  schemaVersion: number;
  /** where the data dir was */
  dataDir: string;
  masterKey: { included: boolean; note: string };
  counts: { services: number; deployments: number; images: number; envVars: number; tokens: number };
  entries: ManifestEntry[];
}

export function backupInvalid(message: string, cause?: unknown): CellhostError {
  return new CellhostError('ERR_BACKUP_INVALID', message, cause === undefined ? {} : { cause });
}

/** the only places a backup may put something in a data dir */
export function isAllowedPath(p: string): boolean {
  if (p.startsWith('/') || p.split('/').some((s) => s === '..' || s === '.' || s === '')) return false;
  if (p === 'cellhost.db' || p === 'master.key') return true;
  if (/^logs(\/builds(\/[A-Za-z0-9_-]+\.log)?)?$/.test(p)) return true;
  return /^images(\/d-[A-Za-z0-9_-]+(\/.+)?)?$/.test(p);
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** one manifest entry per file, link and directory at and under `abs`, named from `rel` */
export async function describeTree(abs: string, rel: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const visit = async (a: string, r: string): Promise<void> => {
    const st = fs.lstatSync(a);
    if (st.isSymbolicLink()) out.push({ type: 'symlink', path: r, target: fs.readlinkSync(a) });
    else if (st.isFile()) out.push({ type: 'file', path: r, size: st.size, sha256: await sha256File(a), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    else if (st.isDirectory()) {
      out.push({ type: 'dir', path: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
      for (const name of fs.readdirSync(a).sort()) await visit(path.join(a, name), `${r}/${name}`);
    }
    // sockets, fifos and devices have no place in an image: they are left out, like the archive does
  };
  await visit(abs, rel);
  return out;
}

export function parseManifest(text: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (err) {
    throw backupInvalid('the backup manifest is not JSON: the file is damaged', err);
  }
  if (m?.format !== BACKUP_FORMAT) throw backupInvalid('this file is not a cellhost backup (its manifest says another format)');
  if (m.formatVersion > BACKUP_FORMAT_VERSION) {
    throw backupInvalid(`the backup was made by a newer cellhost (backup format ${m.formatVersion}; this one reads up to ${BACKUP_FORMAT_VERSION})`);
  }
  if (!Array.isArray(m.entries) || typeof m.schemaVersion !== 'number') throw backupInvalid('the backup manifest is incomplete: the file is damaged');
  for (const e of m.entries) {
    if (!isAllowedPath(e.path)) throw backupInvalid(`the backup lists "${e.path}", which has no place in a data dir`);
  }
  if (!m.entries.some((e) => e.path === 'cellhost.db' && e.type === 'file')) throw backupInvalid('the backup holds no store (cellhost.db)');
  return m;
}
