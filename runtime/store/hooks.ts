// Webhook settings and deliveries. The secret a forge signs with and the credential a private
// repository is cloned with are encrypted like env values (AES-GCM under the master key, bound to
// their service and purpose); deliveries are kept, newest last, up to a limit per service.
import crypto from 'node:crypto';
import type { Db } from './db.ts';
import { decryptValue, encryptValue, type MasterKey } from './secrets.ts';

/** how a private repository is cloned: a token as the HTTPS password, or an SSH deploy key */
export type GitCredential =
  | { kind: 'token'; username: string; token: string }
  | { kind: 'ssh-key'; privateKey: string; knownHosts: string | null };

export interface HookSettings {
  secret: string;
  /** the git URL webhook deploys clone (null: the one the delivery names, without credentials) */
  repository: string | null;
  credential: GitCredential | null;
  updatedAt: string;
}

export type DeliveryAction = 'deploy' | 'preview' | 'preview_deleted' | 'ignored' | 'refused';

export interface Delivery {
  id: number;
  service: string;
  receivedAt: string;
  /** github, gitlab, gitea, forgejo, generic; null when it could not be told */
  forge: string | null;
  /** the forge's event name (push, pull_request, ...) */
  event: string | null;
  deliveryId: string | null;
  /** what the platform answered */
  status: number;
  /** the refusal's ERR_* code */
  code: string | null;
  action: DeliveryAction;
  detail: string;
  ref: string | null;
  commit: string | null;
  deploymentId: string | null;
}

export type NewDelivery = Omit<Delivery, 'id'> & { bodySha256: string | null };

interface SettingsRow {
  service: string;
  secret: Buffer;
  repository: string | null;
  credential: Buffer | null;
  credential_kind: string | null;
  updated_at: string;
}

interface DeliveryRow {
  id: number;
  service: string;
  received_at: string;
  forge: string | null;
  event: string | null;
  delivery_id: string | null;
  status: number;
  code: string | null;
  action: string;
  detail: string;
  ref: string | null;
  commit_sha: string | null;
  deployment_id: string | null;
}

const fromDelivery = (r: DeliveryRow): Delivery => ({
  id: r.id,
  service: r.service,
  receivedAt: r.received_at,
  forge: r.forge,
  event: r.event,
  deliveryId: r.delivery_id,
  status: r.status,
  code: r.code,
  action: r.action as DeliveryAction,
  detail: r.detail,
  ref: r.ref,
  commit: r.commit_sha,
  deploymentId: r.deployment_id,
});

const secretAad = (service: string) => `hook\0${service}\0secret`;
const credentialAad = (service: string) => `hook\0${service}\0credential`;

/** a new webhook secret: 32 random bytes as hex, which every forge's form takes */
export function generateHookSecret(): string {
  return crypto.randomBytes(32).toString('hex');
}

export interface HookStore {
  get(service: string): HookSettings | undefined;
  /** the service's settings, made with a new secret when it has none yet */
  ensure(service: string, now: string): HookSettings;
  rotateSecret(service: string, now: string): string;
  /** `credential` undefined: left as it is; null: removed */
  configure(service: string, repository: string | null, credential: GitCredential | null | undefined, now: string): HookSettings;
  record(d: NewDelivery): Delivery;
  /** a delivery with this id, or this very body, was accepted before */
  seen(service: string, deliveryId: string | null, bodySha256: string): boolean;
  deliveries(service: string, limit: number): Delivery[];
  /** re-encrypt every secret and credential under a new key (inside the caller's transaction) */
  rotateKey(oldKey: MasterKey, newKey: MasterKey): number;
}

export function createHookStore(db: Db, getKey: () => MasterKey, opts: { keepDeliveries?: number } = {}): HookStore {
  const keep = opts.keepDeliveries ?? 1000;
  const q = {
    get: db.prepare<[string], SettingsRow>('SELECT * FROM hook_settings WHERE service = ?'),
    insert: db.prepare('INSERT INTO hook_settings (service, secret, updated_at) VALUES (?, ?, ?) ON CONFLICT(service) DO NOTHING'),
    secret: db.prepare('UPDATE hook_settings SET secret = ?, updated_at = ? WHERE service = ?'),
    repository: db.prepare('UPDATE hook_settings SET repository = ?, updated_at = ? WHERE service = ?'),
    credential: db.prepare('UPDATE hook_settings SET credential = ?, credential_kind = ?, updated_at = ? WHERE service = ?'),
    all: db.prepare<[], SettingsRow>('SELECT * FROM hook_settings'),
    rewrite: db.prepare('UPDATE hook_settings SET secret = ?, credential = ? WHERE service = ?'),
    record: db.prepare(
      `INSERT INTO hook_deliveries (service, received_at, forge, event, delivery_id, body_sha256, status, code, action, detail, ref, commit_sha, deployment_id)
       VALUES (@service, @receivedAt, @forge, @event, @deliveryId, @bodySha256, @status, @code, @action, @detail, @ref, @commit, @deploymentId)`,
    ),
    prune: db.prepare('DELETE FROM hook_deliveries WHERE service = ? AND id <= (SELECT id FROM hook_deliveries WHERE service = ? ORDER BY id DESC LIMIT 1 OFFSET ?)'),
    byId: db.prepare<[number], DeliveryRow>('SELECT * FROM hook_deliveries WHERE id = ?'),
    seenId: db.prepare<[string, string], { n: number }>('SELECT COUNT(*) AS n FROM hook_deliveries WHERE service = ? AND delivery_id = ? AND status < 300'),
    seenBody: db.prepare<[string, string], { n: number }>('SELECT COUNT(*) AS n FROM hook_deliveries WHERE service = ? AND body_sha256 = ? AND status < 300'),
    list: db.prepare<[string, number], DeliveryRow>('SELECT * FROM hook_deliveries WHERE service = ? ORDER BY id DESC LIMIT ?'),
  };

  function read(r: SettingsRow, key: MasterKey = getKey()): HookSettings {
    return {
      secret: decryptValue(key, r.secret, secretAad(r.service)),
      repository: r.repository,
      credential: r.credential ? (JSON.parse(decryptValue(key, r.credential, credentialAad(r.service))) as GitCredential) : null,
      updatedAt: r.updated_at,
    };
  }

  const get = (service: string) => {
    const r = q.get.get(service);
    return r ? read(r) : undefined;
  };

  const ensure = (service: string, now: string): HookSettings => {
    q.insert.run(service, encryptValue(getKey(), generateHookSecret(), secretAad(service)), now);
    return get(service)!;
  };

  return {
    get,
    ensure,
    rotateSecret(service, now) {
      ensure(service, now);
      const secret = generateHookSecret();
      q.secret.run(encryptValue(getKey(), secret, secretAad(service)), now, service);
      return secret;
    },
    configure: db.transaction((service: string, repository: string | null, credential: GitCredential | null | undefined, now: string) => {
      ensure(service, now);
      q.repository.run(repository, now, service);
      if (credential !== undefined) {
        q.credential.run(credential ? encryptValue(getKey(), JSON.stringify(credential), credentialAad(service)) : null, credential?.kind ?? null, now, service);
      }
      return get(service)!;
    }),
    record: db.transaction((d: NewDelivery) => {
      const id = Number(q.record.run(d).lastInsertRowid);
      q.prune.run(d.service, d.service, keep);
      return fromDelivery(q.byId.get(id)!);
    }),
    seen(service, deliveryId, bodySha256) {
      if (deliveryId && q.seenId.get(service, deliveryId)!.n > 0) return true;
      return q.seenBody.get(service, bodySha256)!.n > 0;
    },
    deliveries: (service, limit) => q.list.all(service, limit).map(fromDelivery),
    rotateKey(oldKey, newKey) {
      const rows = q.all.all();
      for (const r of rows) {
        const s = read(r, oldKey);
        q.rewrite.run(
          encryptValue(newKey, s.secret, secretAad(r.service)),
          s.credential ? encryptValue(newKey, JSON.stringify(s.credential), credentialAad(r.service)) : null,
          r.service,
        );
      }
      return rows.length;
    },
  };
}
