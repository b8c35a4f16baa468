// SQLite in WAL mode. Migrations are embedded in the code (and so in the binary);
// `user_version` records how far a database got. An upgrade runs every pending migration, each
// in its own transaction (a savepoint) inside one that holds them all: a failure anywhere leaves
// the database exactly as it was, still readable by the version that wrote it. A database
// from a newer version (a schema this code does not know) is refused before anything is written.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CellhostError } from '../core/errors.ts';
import { sqliteNativeBinding } from '../core/native.ts';
import { MIGRATIONS } from './migrations.ts';

export type Db = Database.Database;

/** the schema version this code writes */
export const SCHEMA_VERSION = MIGRATIONS.length;

export function openDatabase(file: string, opts: { readonly?: boolean } = {}): Db {
  if (!opts.readonly) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // the platform's alone; SQLite creates the -wal and -shm files with the database's mode
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  }
  // inside the single executable: the addon loaded from its SEA asset (the types say string)
  const db = new Database(file, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined, readonly: opts.readonly === true, fileMustExist: opts.readonly === true });
  try {
    assertSchemaKnown(db, file);
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    if (!opts.readonly) migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function schemaVersionOf(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** the schema version of the database in `file` (read only, nothing written); null when there is none */
export function readSchemaVersion(file: string): number | null {
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined, readonly: true, fileMustExist: true });
  try {
    return schemaVersionOf(db);
  } finally {
    db.close();
  }
}

export function newerSchemaError(file: string, version: number, known = SCHEMA_VERSION): CellhostError {
  return new CellhostError(
    'ERR_DATA_TOO_NEW',
    `${file} was written by a newer cellhost (schema version ${version}; this one knows up to ${known}): run that version or a later one, or restore a backup made with this one. Nothing was changed`,
    { details: { file, version, known } },
  );
}

function assertSchemaKnown(db: Db, file: string, known = SCHEMA_VERSION): void {
  const version = schemaVersionOf(db);
  if (version > known) throw newerSchemaError(file, version, known);
}

/** brings the database up to `migrations.length`, all pending migrations or none */
export function migrate(db: Db, migrations: readonly string[] = MIGRATIONS): void {
  const current = schemaVersionOf(db);
  if (current > migrations.length) throw newerSchemaError(db.name, current, migrations.length);
  if (current === migrations.length) return;
  db.transaction(() => {
    for (let i = current; i < migrations.length; i++) {
      db.transaction(() => {
        db.exec(migrations[i]!);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
  })();
}

/**
 * The database as it is, for looking only (`cellhost doctor` beside a running platform): no
 * migration, no write. Null when there is none yet, or when it is older than this version (its
 * tables would not have every column this code reads).
 */
export function openDatabaseReadOnly(file: string): Db | null {
  const version = readSchemaVersion(file);
  if (version === null || version < SCHEMA_VERSION) return null;
  return openDatabase(file, { readonly: true });
}
