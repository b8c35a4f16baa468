// Per-service secrets the platform makes itself: the cron secret (sent with every cron run, and
// given to the app as CELLHOST_CRON_SECRET) and the task token (what a client shows to enqueue a
// task). Stored as env values are: AES-256-GCM under the master key, bound to the service and
// kind, so they can be shown again to the admin and survive a key rotation.
import crypto from 'node:crypto';
import type { Db } from './db.ts';
import { decryptValue, encryptValue, type MasterKey } from './secrets.ts';

export type SecretKind = 'cron' | 'tasks';

export interface ServiceSecrets {
  /** the secret, or null when none was made yet */
  get(service: string, kind: SecretKind): string | null;
  /** the secret, made now when there is none */
  ensure(service: string, kind: SecretKind, now: string): string;
  /** a new secret replaces the old one, which stops working */
  rotate(service: string, kind: SecretKind, now: string): string;
}

// `#` cannot be in an env variable's name, so no env ciphertext opens as a secret or back
const aad = (service: string, kind: SecretKind) => `${service}\0#${kind}`;

const PREFIX: Record<SecretKind, string> = { cron: 'chc_', tasks: 'cht_' };

export function generateSecret(kind: SecretKind): string {
  return PREFIX[kind] + crypto.randomBytes(32).toString('base64url');
}

export function createServiceSecrets(db: Db, getKey: () => MasterKey): ServiceSecrets {
  const q = {
    get: db.prepare<[string, string], { value: Buffer }>('SELECT value FROM service_secrets WHERE service = ? AND kind = ?'),
    insert: db.prepare('INSERT INTO service_secrets (service, kind, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(service, kind) DO NOTHING'),
    replace: db.prepare('INSERT INTO service_secrets (service, kind, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(service, kind) DO UPDATE SET value = excluded.value, created_at = excluded.created_at'),
  };
  // read and decrypted on every use (an index probe and a few µs of AES): no cache to outlive a
  // deleted service or a rotation
  const get = (service: string, kind: SecretKind): string | null => {
    const row = q.get.get(service, kind);
    return row ? decryptValue(getKey(), row.value, aad(service, kind)) : null;
  };
  return {
    get,
    ensure(service, kind, now) {
      const found = get(service, kind);
      if (found !== null) return found;
      q.insert.run(service, kind, encryptValue(getKey(), generateSecret(kind), aad(service, kind)), now);
      return get(service, kind)!;
    },
    rotate(service, kind, now) {
      const value = generateSecret(kind);
      q.replace.run(service, kind, encryptValue(getKey(), value, aad(service, kind)), now);
      return value;
    },
  };
}

/** re-encrypts every service secret under a new key (inside the caller's key rotation transaction) */
export function rotateServiceSecrets(db: Db, oldKey: MasterKey, newKey: MasterKey): number {
  const rows = db.prepare<[], { service: string; kind: SecretKind; value: Buffer }>('SELECT service, kind, value FROM service_secrets').all();
  const rewrite = db.prepare('UPDATE service_secrets SET value = ? WHERE service = ? AND kind = ?');
  for (const r of rows) rewrite.run(encryptValue(newKey, decryptValue(oldKey, r.value, aad(r.service, r.kind)), aad(r.service, r.kind)), r.service, r.kind);
  return rows.length;
}

/** constant-time comparison of a presented secret with the stored one */
export function secretMatches(presented: string, stored: string): boolean {
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(stored).digest();
  return crypto.timingSafeEqual(a, b);
}
