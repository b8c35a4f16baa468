// `cellhost backup`: one file holding what a data dir needs to be served again elsewhere, taken
// while the platform serves. The store is copied with SQLite's online backup API (one
// consistent snapshot, whatever the platform writes meanwhile); images are immutable once
// built, so the live and rollback images are read from where they are. The written file is
// read back and checked against its manifest before it is put in place.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as tar from 'tar';
import { CellhostError } from '../core/errors.ts';
import { sqliteNativeBinding } from '../core/native.ts';
import { newerSchemaError, SCHEMA_VERSION, schemaVersionOf } from '../store/db.ts';
import { checkMasterKey } from '../store/env.ts';
import { loadMasterKey } from '../store/secrets.ts';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, describeTree, MANIFEST_NAME, type Manifest, type ManifestEntry } from './manifest.ts';
import { verifyBackup } from './verify-backup.ts';

export interface BackupPaths {
  dataDir: string;
  db: string;
  images: string;
  logs: string;
  masterKey: string;
}

export interface BackupOptions {
  paths: BackupPaths;
  file: string;
  /** put the master key in the backup (then the backup alone reads the env values) */
  includeKey: boolean;
  /** CELLHOST_MASTER_KEY, when the key comes from the environment */
  masterKeyFromEnv?: string;
  version: string;
  now(): string;
}

/** statuses whose image may be served: the live one and those a rollback can go back to */
const SERVABLE = ['ready', 'live', 'superseded'];

const count = (db: Database.Database, sql: string) => {
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } catch {
    return 0; // a table an older schema does not have yet
  }
};

/** a consistent copy of the live store in `dest`, taken while the platform may be writing to it */
async function snapshotStore(source: string, dest: string): Promise<void> {
  const db = new Database(source, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const version = schemaVersionOf(db);
    if (version > SCHEMA_VERSION) throw newerSchemaError(source, version);
    // all pages in one step: SQLite restarts a stepwise backup whenever another connection writes
    await db.backup(dest, { progress: () => 1_000_000 });
  } finally {
    db.close();
  }
}

export interface BackupResult {
  manifest: Manifest;
  bytes: number;
}

export async function createBackup(opts: BackupOptions): Promise<BackupResult> {
  const { paths } = opts;
  if (!fs.existsSync(paths.db)) throw new CellhostError('ERR_VALIDATION', `no cellhost data in ${paths.dataDir} (no ${path.basename(paths.db)})`);
  const target = path.resolve(opts.file);
  if (!fs.statSync(path.dirname(target), { throwIfNoEntry: false })?.isDirectory()) throw new CellhostError('ERR_VALIDATION', `the directory of ${target} does not exist`);
  if (target === paths.dataDir || target.startsWith(paths.dataDir + path.sep)) throw new CellhostError('ERR_VALIDATION', `write the backup outside the data dir ${paths.dataDir}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-backup-'));
  const partial = `${target}.partial-${process.pid}`;
  try {
    const snapshot = path.join(work, 'cellhost.db');
    await snapshotStore(paths.db, snapshot);

    const db = new Database(snapshot, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined });
    const entries: ManifestEntry[] = [];
    const sources = new Map<string, string>(); // archive path → where it is read from
    let images = 0;
    let counts: Manifest['counts'];
    let schemaVersion: number;
    let hasKeyCheck = false;
    try {
      // the images of servable deployments; one removed meanwhile (pruned) is left out, and the
      // copy no longer points at it
      const deployments = db.prepare<[], { id: string; status: string; image_dir: string | null }>('SELECT id, status, image_dir FROM deployments').all();
      const kept: string[] = [];
      for (const d of deployments) {
        const dir = path.join(paths.images, d.id);
        if (!d.image_dir || !SERVABLE.includes(d.status) || !fs.existsSync(dir)) continue;
        try {
          entries.push(...(await describeTree(dir, `images/${d.id}`)));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          continue;
        }
        sources.set(`images/${d.id}`, dir);
        kept.push(d.id);
        images++;
      }
      const keptSet = new Set(kept);
      db.transaction(() => {
        for (const d of deployments) if (d.image_dir && !keptSet.has(d.id)) db.prepare('UPDATE deployments SET image_dir = NULL WHERE id = ?').run(d.id);
      })();
      for (const d of deployments) {
        const log = path.join(paths.logs, 'builds', `${d.id}.log`);
        if (!fs.existsSync(log)) continue;
        entries.push(...(await describeTree(log, `logs/builds/${d.id}.log`)));
        sources.set(`logs/builds/${d.id}.log`, log);
      }
      counts = {
        services: count(db, 'SELECT COUNT(*) AS n FROM services'),
        deployments: deployments.length,
        images,
        envVars: count(db, 'SELECT COUNT(*) AS n FROM env_vars'),
        tokens: count(db, 'SELECT COUNT(*) AS n FROM tokens'),
      };
      schemaVersion = schemaVersionOf(db);
      hasKeyCheck = count(db, "SELECT COUNT(*) AS n FROM meta WHERE key = 'master_key_check'") > 0;
      if (opts.includeKey) {
        const { key } = loadMasterKey({ fromEnv: opts.masterKeyFromEnv, file: paths.masterKey, create: false });
        // a key that does not open this store would make a backup that cannot be read
        if (hasKeyCheck) checkMasterKey(db, key);
        fs.writeFileSync(path.join(work, 'master.key'), key.toString('base64') + '\n', { mode: 0o600 });
      }
      db.pragma('journal_mode = DELETE'); // one self-contained file, no -wal beside it
    } finally {
      db.close();
    }
    entries.unshift(...(await describeTree(snapshot, 'cellhost.db')));
    sources.set('cellhost.db', snapshot);
    if (opts.includeKey) {
      entries.unshift(...(await describeTree(path.join(work, 'master.key'), 'master.key')));
      sources.set('master.key', path.join(work, 'master.key'));
    }

    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      createdAt: opts.now(),
      cellhostVersion: opts.version,
      schemaVersion,
      dataDir: paths.dataDir,
      masterKey: opts.includeKey
        ? { included: true, note: 'the master key is in this backup (master.key): keep the backup as secret as the key' }
        : {
            included: false,
            note:
              counts.envVars > 0 || hasKeyCheck
                ? 'the master key is NOT in this backup: env values are encrypted with it, so the restored platform needs the old master.key (or CELLHOST_MASTER_KEY) to read them'
                : 'the master key is not in this backup (there were no env values to read with it)',
          },
      counts,
      entries,
    };
    fs.writeFileSync(path.join(work, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');
    await writeArchive(partial, work, sources);
    await verifyBackup(partial);
    fs.renameSync(partial, target);
    return { manifest, bytes: fs.statSync(target).size };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(partial, { force: true });
  }
}

/** the archive: the manifest first, then each source under its archive path */
async function writeArchive(file: string, work: string, sources: Map<string, string>): Promise<void> {
  // entries are added by absolute path and renamed on their way in: a source is either in the
  // work dir (manifest, store, key) or in the data dir (images, logs)
  const renames = [[MANIFEST_NAME, path.join(work, MANIFEST_NAME)] as const, ...sources].map(([name, abs]) => [abs.replace(/^\/+/, ''), name] as const);
  const pack = new tar.Pack({
    gzip: true,
    cwd: '/',
    // hard links would point at paths of this host: every file goes in whole
    linkCache: { get: () => undefined, set: () => undefined } as unknown as Map<`${number}:${number}`, string>,
    onWriteEntry(entry) {
      for (const [from, to] of renames) {
        if (entry.path === from || entry.path.startsWith(from + '/')) {
          entry.path = to + entry.path.slice(from.length);
          return;
        }
      }
      throw new Error(`backup: unexpected entry ${entry.path}`);
    },
  });
  const out = fs.createWriteStream(file, { mode: 0o600 });
  const written = new Promise<void>((resolve, reject) => {
    out.on('close', resolve);
    out.on('error', reject);
    pack.on('error', reject);
  });
  pack.pipe(out);
  for (const [from] of renames) pack.add(from);
  pack.end();
  await written;
}
