// Certificates, the ACME account and the orders placed. Private keys are stored as ciphertexts
// under the master key (the env values' envelope), each bound to its row by the additional data;
// certificate chains are public and stored as PEM.
import type { Db } from './db.ts';
import { decryptValue, encryptValue, type MasterKey } from './secrets.ts';

/** pending_dns: the name does not point here yet; validating: an order is under way; issued: a
 *  certificate is served (a renewal may have failed: `error` says so); failed: none could be had */
export type CertificateStatus = 'pending_dns' | 'validating' | 'issued' | 'failed';

export interface DnsCheckResult {
  ok: boolean;
  /** the addresses (or CNAME target) the name resolved to */
  found: string[];
  message: string;
  checkedAt: number;
  /** failed checks in a row: the next check waits longer */
  misses?: number;
}

export interface CertificateRecord {
  /** the identifier: a host name, or `*.domain` for the wildcard */
  name: string;
  /** the service it was ordered for; null for the platform's wildcard */
  service: string | null;
  status: CertificateStatus;
  /** the chain, leaf first */
  certPem: string | null;
  notBefore: number | null;
  notAfter: number | null;
  /** the challenge of the last order */
  challenge: string | null;
  /** why the last attempt failed (the CA's words where it gave any) */
  error: string | null;
  /** failed attempts in a row: the backoff grows with them */
  failures: number;
  lastAttemptAt: number | null;
  nextAttemptAt: number | null;
  dns: DnsCheckResult | null;
  updatedAt: number;
}

export interface CertificateStore {
  list(): CertificateRecord[];
  get(name: string): CertificateRecord | undefined;
  /** the state of a name; its key and chain are left as they are */
  saveState(record: CertificateRecord): void;
  /** a new certificate and its key, in one write */
  saveIssued(record: CertificateRecord, keyPem: string): void;
  /** the decrypted private key of a name's certificate */
  key(name: string): string | null;
  remove(name: string): boolean;
  account(directory: string): { keyPem: string; url: string } | null;
  saveAccount(directory: string, keyPem: string, url: string, email: string | null, now: number): void;
  recordOrder(order: { name: string; registeredDomain: string; directory: string; renewal: boolean; outcome: string; at: number }): void;
  /** new certificates (not renewals) issued for a registered domain since `since` */
  issuedSince(registeredDomain: string, since: number): { count: number; oldest: number | null };
  /** re-encrypt every private key under a new key, in one transaction */
  rotate(newKey: MasterKey): number;
}

interface Row {
  name: string;
  service: string | null;
  status: string;
  cert_pem: string | null;
  key: Buffer | null;
  not_before: number | null;
  not_after: number | null;
  challenge: string | null;
  error: string | null;
  failures: number;
  last_attempt_at: number | null;
  next_attempt_at: number | null;
  dns: string | null;
  updated_at: number;
}

export const certificateKeyAad = (name: string) => `certificate\0${name}`;
export const accountKeyAad = (directory: string) => `acme-account\0${directory}`;

function fromRow(r: Row): CertificateRecord {
  return {
    name: r.name,
    service: r.service,
    status: r.status as CertificateStatus,
    certPem: r.cert_pem,
    notBefore: r.not_before,
    notAfter: r.not_after,
    challenge: r.challenge,
    error: r.error,
    failures: r.failures,
    lastAttemptAt: r.last_attempt_at,
    nextAttemptAt: r.next_attempt_at,
    dns: r.dns ? (JSON.parse(r.dns) as DnsCheckResult) : null,
    updatedAt: r.updated_at,
  };
}

function stateParams(c: CertificateRecord) {
  return {
    name: c.name,
    service: c.service,
    status: c.status,
    cert_pem: c.certPem,
    not_before: c.notBefore,
    not_after: c.notAfter,
    challenge: c.challenge,
    error: c.error,
    failures: c.failures,
    last_attempt_at: c.lastAttemptAt,
    next_attempt_at: c.nextAttemptAt,
    dns: c.dns ? JSON.stringify(c.dns) : null,
    updated_at: c.updatedAt,
  };
}

export function createCertificateStore(db: Db, getKey: () => MasterKey): CertificateStore {
  const stateCols = 'service, status, cert_pem, not_before, not_after, challenge, error, failures, last_attempt_at, next_attempt_at, dns, updated_at';
  const set = stateCols
    .split(', ')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  const vals = stateCols
    .split(', ')
    .map((c) => '@' + c)
    .join(', ');
  const q = {
    list: db.prepare<[], Row>('SELECT * FROM certificates ORDER BY name'),
    get: db.prepare<[string], Row>('SELECT * FROM certificates WHERE name = ?'),
    saveState: db.prepare(`INSERT INTO certificates (name, ${stateCols}) VALUES (@name, ${vals}) ON CONFLICT(name) DO UPDATE SET ${set}`),
    saveKey: db.prepare('UPDATE certificates SET key = ? WHERE name = ?'),
    remove: db.prepare('DELETE FROM certificates WHERE name = ?'),
    keys: db.prepare<[], { name: string; key: Buffer }>('SELECT name, key FROM certificates WHERE key IS NOT NULL'),
    account: db.prepare<[string], { key: Buffer; url: string }>('SELECT key, url FROM acme_accounts WHERE directory = ?'),
    saveAccount: db.prepare(
      'INSERT INTO acme_accounts (directory, key, url, email, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(directory) DO UPDATE SET key = excluded.key, url = excluded.url, email = excluded.email',
    ),
    accounts: db.prepare<[], { directory: string; key: Buffer }>('SELECT directory, key FROM acme_accounts'),
    rewriteAccount: db.prepare('UPDATE acme_accounts SET key = ? WHERE directory = ?'),
    recordOrder: db.prepare('INSERT INTO acme_orders (name, registered_domain, directory, renewal, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    issuedSince: db.prepare<[string, number], { n: number; oldest: number | null }>(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM acme_orders WHERE registered_domain = ? AND created_at >= ? AND renewal = 0 AND outcome = 'issued'",
    ),
  };
  const saveState = (c: CertificateRecord) => void q.saveState.run(stateParams(c));
  return {
    list: () => q.list.all().map(fromRow),
    get(name) {
      const r = q.get.get(name);
      return r ? fromRow(r) : undefined;
    },
    saveState,
    saveIssued: db.transaction((c: CertificateRecord, keyPem: string) => {
      saveState(c);
      q.saveKey.run(encryptValue(getKey(), keyPem, certificateKeyAad(c.name)), c.name);
    }),
    key(name) {
      const r = q.get.get(name);
      return r?.key ? decryptValue(getKey(), r.key, certificateKeyAad(name)) : null;
    },
    remove: (name) => q.remove.run(name).changes > 0,
    account(directory) {
      const r = q.account.get(directory);
      return r ? { keyPem: decryptValue(getKey(), r.key, accountKeyAad(directory)), url: r.url } : null;
    },
    saveAccount(directory, keyPem, url, email, now) {
      q.saveAccount.run(directory, encryptValue(getKey(), keyPem, accountKeyAad(directory)), url, email, now);
    },
    recordOrder(o) {
      q.recordOrder.run(o.name, o.registeredDomain, o.directory, o.renewal ? 1 : 0, o.outcome, o.at);
    },
    issuedSince(registeredDomain, since) {
      const r = q.issuedSince.get(registeredDomain, since)!;
      return { count: r.n, oldest: r.oldest };
    },
    rotate: db.transaction((newKey: MasterKey) => {
      let n = 0;
      for (const r of q.keys.all()) {
        const aad = certificateKeyAad(r.name);
        q.saveKey.run(encryptValue(newKey, decryptValue(getKey(), r.key, aad), aad), r.name);
        n++;
      }
      for (const r of q.accounts.all()) {
        const aad = accountKeyAad(r.directory);
        q.rewriteAccount.run(encryptValue(newKey, decryptValue(getKey(), r.key, aad), aad), r.directory);
        n++;
      }
      return n;
    }),
  };
}
