// The env_vars table: ciphertexts only. Encryption happens here, with the key passed in, so
// no plaintext value is ever bound into SQL.
import type { Db } from './db.ts';
import { decryptValue, encryptValue, envAad, keyCheckValue, verifyKey, type MasterKey } from './secrets.ts';
import { CellhostError } from '../core/errors.ts';

export interface EnvVarInfo {
  name: string;
  size: number;
  updatedAt: string;
  updatedBy: string | null;
  /** the variable is given to the service's preview deployments (off for a production secret) */
  preview: boolean;
}

export interface EnvStore {
  list(service: string): EnvVarInfo[];
  /** decrypted values */
  values(service: string): Record<string, string>;
  /** sets values; `preview` flags, where given, say which go to previews (new ones do by default) */
  set(service: string, vars: Record<string, string>, by: string, now: string, preview?: Record<string, boolean>): void;
  /** replaces every variable; one kept by name keeps its preview flag */
  replace(service: string, vars: Record<string, string>, by: string, now: string): void;
  unset(service: string, names: string[]): number;
  version(service: string): number;
  /** re-encrypt every value under a new key, in one transaction */
  rotate(newKey: MasterKey): number;
}

interface Row {
  service: string;
  name: string;
  value: Buffer;
  size: number;
  updated_at: string;
  updated_by: string | null;
  preview: number;
}

/** checks (or, on first use, records) that `key` is the database's key */
export function checkMasterKey(db: Db, key: MasterKey): void {
  const row = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'master_key_check'").get();
  if (!row) {
    db.prepare("INSERT INTO meta (key, value) VALUES ('master_key_check', ?)").run(keyCheckValue(key));
    return;
  }
  if (!verifyKey(key, row.value)) {
    throw new CellhostError('ERR_KEY_INVALID', 'the master key does not match this data dir: it was created with another key (check CELLHOST_MASTER_KEY or master.key)');
  }
}

export function createEnvStore(db: Db, getKey: () => MasterKey): EnvStore {
  const q = {
    list: db.prepare<[string], Row>('SELECT * FROM env_vars WHERE service = ? ORDER BY name'),
    upsert: db.prepare(
      'INSERT INTO env_vars (service, name, value, size, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(service, name) DO UPDATE SET value = excluded.value, size = excluded.size, updated_at = excluded.updated_at, updated_by = excluded.updated_by',
    ),
    names: db.prepare<[string], { name: string }>('SELECT name FROM env_vars WHERE service = ?'),
    flag: db.prepare('UPDATE env_vars SET preview = ? WHERE service = ? AND name = ?'),
    remove: db.prepare('DELETE FROM env_vars WHERE service = ? AND name = ?'),
    bump: db.prepare('UPDATE services SET env_version = env_version + 1 WHERE name = ?'),
    version: db.prepare<[string], { env_version: number }>('SELECT env_version FROM services WHERE name = ?'),
    all: db.prepare<[], Row>('SELECT * FROM env_vars'),
    rewrite: db.prepare('UPDATE env_vars SET value = ? WHERE service = ? AND name = ?'),
  };
  const write = (service: string, vars: Record<string, string>, by: string, now: string) => {
    for (const [name, value] of Object.entries(vars)) {
      q.upsert.run(service, name, encryptValue(getKey(), value, envAad(service, name)), Buffer.byteLength(value), now, by);
    }
  };
  return {
    list: (service) => q.list.all(service).map((r) => ({ name: r.name, size: r.size, updatedAt: r.updated_at, updatedBy: r.updated_by, preview: r.preview === 1 })),
    values(service) {
      const out: Record<string, string> = {};
      for (const r of q.list.all(service)) out[r.name] = decryptValue(getKey(), r.value, envAad(service, r.name));
      return out;
    },
    set: db.transaction((service: string, vars: Record<string, string>, by: string, now: string, preview?: Record<string, boolean>) => {
      write(service, vars, by, now);
      for (const [name, on] of Object.entries(preview ?? {})) q.flag.run(on ? 1 : 0, service, name);
      q.bump.run(service);
    }),
    replace: db.transaction((service: string, vars: Record<string, string>, by: string, now: string) => {
      for (const { name } of q.names.all(service)) if (!Object.hasOwn(vars, name)) q.remove.run(service, name);
      write(service, vars, by, now);
      q.bump.run(service);
    }),
    unset: db.transaction((service: string, names: string[]) => {
      let n = 0;
      for (const name of names) n += q.remove.run(service, name).changes;
      if (n) q.bump.run(service);
      return n;
    }),
    version: (service) => q.version.get(service)?.env_version ?? 0,
    rotate: db.transaction((newKey: MasterKey) => {
      const rows = q.all.all();
      for (const r of rows) {
        const aad = envAad(r.service, r.name);
        q.rewrite.run(encryptValue(newKey, decryptValue(getKey(), r.value, aad), aad), r.service, r.name);
      }
      db.prepare("UPDATE meta SET value = ? WHERE key = 'master_key_check'").run(keyCheckValue(newKey));
      return rows.length;
    }),
  };
}
