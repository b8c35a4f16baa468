// `cellhost restore`: a backup into an empty (or new) data dir, all or nothing. The backup is
// read through once without writing anything (verifyBackup); only then is it unpacked, into a
// directory beside the target, checked again there, and renamed into place. Any failure removes
// what was unpacked: the target is left as it was.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as tar from 'tar';
import { CellhostError } from '../core/errors.ts';
import { sqliteNativeBinding } from '../core/native.ts';
import { newerSchemaError, SCHEMA_VERSION } from '../store/db.ts';
import { backupInvalid, isAllowedPath, MANIFEST_NAME, sha256File, type Manifest } from './manifest.ts';
import { verifyBackup } from './verify-backup.ts';

export interface RestoreResult {
  manifest: Manifest;
  dataDir: string;
}

function assertEmptyTarget(dataDir: string): void {
  const st = fs.statSync(dataDir, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) throw new CellhostError('ERR_VALIDATION', `${dataDir} is not a directory`);
  const inside = fs.readdirSync(dataDir);
  if (inside.length) {
    throw new CellhostError('ERR_VALIDATION', `${dataDir} is not empty (${inside.slice(0, 3).join(', ')}${inside.length > 3 ? ', …' : ''}): restore only into a new or empty data dir`);
  }
}

/** the unpacked tree, checked against the manifest once more: what was read is what was written */
async function checkUnpacked(dir: string, manifest: Manifest): Promise<void> {
  for (const e of manifest.entries) {
    const p = path.join(dir, e.path);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    const ok =
      st &&
      (e.type === 'file'
        ? st.isFile() && st.size === e.size && (await sha256File(p)) === e.sha256
        : e.type === 'dir'
          ? st.isDirectory()
          : st.isSymbolicLink() && fs.readlinkSync(p) === e.target);
    if (!ok) throw backupInvalid(`"${e.path}" did not unpack as its manifest says: the backup changed while it was restored, or is damaged`);
  }
}

/** the store as the new data dir needs it: sound, a schema this code knows, images where they now are */
function adoptStore(dbFile: string, imagesDir: string): void {
  const db = new Database(dbFile, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined, fileMustExist: true });
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw backupInvalid(`the store in the backup is damaged (${String(check)})`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw newerSchemaError('the store in the backup', version);
    db.prepare("UPDATE deployments SET image_dir = ? || '/' || id WHERE image_dir IS NOT NULL").run(imagesDir);
  } finally {
    db.close();
  }
}

export async function restoreBackup(file: string, dataDir: string): Promise<RestoreResult> {
  const target = path.resolve(dataDir);
  assertEmptyTarget(target);
  const manifest = await verifyBackup(file);
  if (manifest.schemaVersion > SCHEMA_VERSION) throw newerSchemaError(`the store in ${file}`, manifest.schemaVersion);
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const staging = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.restore-`));
  try {
    await tar.x({
      file,
      cwd: staging,
      strict: true,
      maxDecompressionRatio: Infinity,
      filter: (p) => {
        const clean = p.replace(/\/+$/, '');
        return clean !== MANIFEST_NAME && isAllowedPath(clean);
      },
    });
    await checkUnpacked(staging, manifest);
    adoptStore(path.join(staging, 'cellhost.db'), path.join(target, 'images'));
    if (fs.existsSync(path.join(staging, 'master.key'))) fs.chmodSync(path.join(staging, 'master.key'), 0o600);
    // others may pass through (the sandboxed apps reach their images) but not list it
    fs.chmodSync(staging, 0o711);
    assertEmptyTarget(target);
    // an empty directory is replaced by the rename
    fs.renameSync(staging, target);
    return { manifest, dataDir: target };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
