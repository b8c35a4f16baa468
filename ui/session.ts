// UI sessions: a login with an API token creates a session held in memory (a restart logs
// everyone out, which is fine for an admin console). The cookie carries only a random id; the
// session carries the token's id (never the secret), so revoking the token ends its sessions,
// and a per-session CSRF token that every form and every cookie-authenticated API write must
// echo back (synchronizer token pattern).
import crypto from 'node:crypto';
import type { TokenInfo, TokenStore } from '../runtime/store/tokens.ts';

export const SESSION_COOKIE = 'cellhost_session';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  id: string;
  csrf: string;
  tokenId: string;
  createdAt: number;
  lastSeenAt: number;
  /** a one-time message for the next page (set after a redirect) */
  flash: string | null;
  /** a token just created: its secret is shown on the next tokens page, once, then dropped */
  newToken: { id: string; name: string; secret: string } | null;
}

export interface SessionsOptions {
  tokens: TokenStore;
  /** epoch ms */
  now(): number;
  /** a session unused this long ends (default 12 h) */
  idleMs?: number;
  /** a session ends this long after login whatever its use (default 7 days) */
  maxAgeMs?: number;
  /** the oldest sessions are dropped past this many (default 1000) */
  maxSessions?: number;
}

export interface Sessions {
  create(token: TokenInfo): Session;
  /** the live session the cookie value names, with its token; touches it */
  get(id: string | undefined): { session: Session; token: TokenInfo } | undefined;
  destroy(id: string | undefined): void;
  /** constant-time check of a submitted CSRF token */
  checkCsrf(session: Session, submitted: string | undefined | null): boolean;
  /** for the API's cookie auth: the session's token, and whether the CSRF header matched */
  fromCookie(sessionId: string | undefined, csrf: string | undefined): { token: TokenInfo; csrfOk: boolean } | undefined;
  readSessionId(cookieHeader: string | undefined): string | undefined;
  size(): number;
}

export function createSessions(opts: SessionsOptions): Sessions {
  const idleMs = opts.idleMs ?? 12 * 3600_000;
  const maxAgeMs = opts.maxAgeMs ?? 7 * 24 * 3600_000;
  const maxSessions = opts.maxSessions ?? 1000;
  // Map keeps insertion order, so the first entry is the oldest login
  const sessions = new Map<string, Session>();

  const isExpired = (s: Session, now: number) => now - s.lastSeenAt > idleMs || now - s.createdAt > maxAgeMs;

  function sweep(now: number): void {
    for (const [id, s] of sessions) if (isExpired(s, now)) sessions.delete(id);
  }

  function get(id: string | undefined) {
    if (!id) return undefined;
    const s = sessions.get(id);
    if (!s) return undefined;
    const now = opts.now();
    if (isExpired(s, now)) {
      sessions.delete(id);
      return undefined;
    }
    const token = opts.tokens.list().find((t) => t.id === s.tokenId);
    if (!token) {
      sessions.delete(id);
      return undefined;
    }
    s.lastSeenAt = now;
    return { session: s, token };
  }

  function checkCsrf(session: Session, submitted: string | undefined | null): boolean {
    if (!submitted) return false;
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(submitted);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  return {
    create(token) {
      const now = opts.now();
      sweep(now);
      while (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value!);
      const s: Session = {
        id: crypto.randomBytes(32).toString('base64url'),
        csrf: crypto.randomBytes(32).toString('base64url'),
        tokenId: token.id,
        createdAt: now,
        lastSeenAt: now,
        flash: null,
        newToken: null,
      };
      sessions.set(s.id, s);
      return s;
    },
    get,
    destroy(id) {
      if (id) sessions.delete(id);
    },
    checkCsrf,
    fromCookie(sessionId, csrf) {
      const found = get(sessionId);
      return found ? { token: found.token, csrfOk: checkCsrf(found.session, csrf) } : undefined;
    },
    readSessionId: readSessionCookie,
    size: () => sessions.size,
  };
}

/** the session id from a Cookie header */
export function readSessionCookie(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}
