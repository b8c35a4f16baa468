// API tokens: random, shown once, stored as a SHA-256 hash (they are high-entropy, so a
// slow hash buys nothing). Lookup by hash is an index probe, not a string compare loop.
import crypto from 'node:crypto';
import type { Db } from './db.ts';

export interface TokenInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface TokenStore {
  /** stores the hash of `secret` (or of a new random one) and returns the secret once */
  create(name: string, now: string, secret?: string): { token: string; info: TokenInfo };
  verify(secret: string, now: string): TokenInfo | undefined;
  list(): TokenInfo[];
  revoke(id: string): boolean;
  count(): number;
}

export function hashToken(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

export function generateToken(): string {
  return 'ch_' + crypto.randomBytes(24).toString('base64url');
}

interface Row {
  id: string;
  name: string;
  hash: string;
  created_at: string;
  last_used_at: string | null;
}
const info = (r: Row): TokenInfo => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at });

export function createTokenStore(db: Db): TokenStore {
  const q = {
    insert: db.prepare('INSERT INTO tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)'),
    byHash: db.prepare<[string], Row>('SELECT * FROM tokens WHERE hash = ?'),
    touch: db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?'),
    list: db.prepare<[], Row>('SELECT * FROM tokens ORDER BY created_at'),
    remove: db.prepare('DELETE FROM tokens WHERE id = ?'),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM tokens'),
  };
  // last_used_at is advisory: write it at most once a minute per token.
  const lastTouch = new Map<string, number>();
  return {
    create(name, now, secret = generateToken()) {
      const id = 'tok_' + crypto.randomBytes(6).toString('hex');
      q.insert.run(id, name, hashToken(secret), now);
      return { token: secret, info: { id, name, createdAt: now, lastUsedAt: null } };
    },
    verify(secret, now) {
      const row = q.byHash.get(hashToken(secret));
      if (!row) return undefined;
      const t = Date.parse(now);
      if ((lastTouch.get(row.id) ?? 0) < t - 60_000) {
        lastTouch.set(row.id, t);
        q.touch.run(now, row.id);
      }
      return info(row);
    },
    list: () => q.list.all().map(info),
    revoke: (id) => q.remove.run(id).changes > 0,
    count: () => q.count.get()!.n,
  };
}
