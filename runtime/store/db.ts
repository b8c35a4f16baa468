// SQLite in WAL mode. Migrations are embedded in the code (and so in the binary) and run
// in order inside one transaction each; `user_version` records how far a database got.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { sqliteNativeBinding } from '../core/native.ts';
import { MIGRATIONS } from './migrations.ts';

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // the platform's alone; SQLite creates the -wal and -shm files with the database's mode
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  // inside the single executable: the addon loaded from its SEA asset (the types say string)
  const db = new Database(file, { nativeBinding: sqliteNativeBinding() as unknown as string | undefined });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/**
 * The database as it is, for looking only (`cellhost doctor` beside a running platform): no
 * migration, no write. Null when there is none yet, or when it is older than this version.
 */
export function openDatabaseReadOnly(file: string): Db | null {
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true, nativeBinding: sqliteNativeBinding() as unknown as string | undefined });
  db.pragma('busy_timeout = 5000');
  if ((db.pragma('user_version', { simple: true }) as number) < MIGRATIONS.length) {
    db.close();
    return null;
  }
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let i = current; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[i]!);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
}
