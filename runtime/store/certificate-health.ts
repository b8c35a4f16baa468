// What `cellhost doctor` says about certificates, read from the data dir's database without the
// server: opened read-only (no migration, no write, no key read, safe beside a running platform).
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { sqliteNativeBinding } from '../core/native.ts';
import { createCertificateStore, type CertificateRecord } from './certificates.ts';

/** null when there is no database there, or one from before certificates were stored */
export function readCertificates(dbFile: string): CertificateRecord[] | null {
  if (!fs.existsSync(dbFile)) return null;
  const db = new Database(dbFile, { readonly: true, fileMustExist: true, nativeBinding: sqliteNativeBinding() as unknown as string | undefined });
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'certificates'").get();
    if (!hasTable) return null;
    return createCertificateStore(db, () => {
      throw new Error('doctor reads no key');
    }).list();
  } finally {
    db.close();
  }
}
