// Bearer tokens on every /api/v1 route but health. Tokens are looked up by their hash.
// The web UI's session cookie is accepted too (EventSource cannot send a header); a write
// authenticated by the cookie must also carry the session's CSRF token in X-CSRF-Token.
import type { MiddlewareHandler } from 'hono';
import { CellhostError } from '../core/errors.ts';
import type { LoginLimiter } from '../core/login-limiter.ts';
import type { TokenInfo, TokenStore } from '../store/tokens.ts';

export type AuthEnv = { Variables: { token: TokenInfo } };

/** what the API needs of the UI's sessions */
export interface CookieAuth {
  /** the token behind the request's session cookie, and whether `csrf` is that session's CSRF token */
  fromCookie(sessionId: string | undefined, csrf: string | undefined): { token: TokenInfo; csrfOk: boolean } | undefined;
  readSessionId(cookieHeader: string | undefined): string | undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** the client's address: the socket's, never a header a client can set */
function remoteAddress(c: { env: unknown }): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

export function requireToken(tokens: TokenStore, now: () => string, cookies?: CookieAuth, limiter?: LoginLimiter): MiddlewareHandler<AuthEnv> {
  return async function requireTokenMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (!header && cookies) {
      const session = cookies.fromCookie(cookies.readSessionId(c.req.header('cookie')), c.req.header('x-csrf-token'));
      if (session) {
        if (!SAFE_METHODS.has(c.req.method) && !session.csrfOk) {
          throw new CellhostError('ERR_CSRF', 'a request with a session cookie must send the session\'s CSRF token in X-CSRF-Token');
        }
        c.set('token', session.token);
        await next();
        return;
      }
    }
    if (!header) throw new CellhostError('ERR_AUTH_MISSING', 'send an API token as "Authorization: Bearer <token>"');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const secret = m?.[1] ?? header;
    const info = m ? tokens.verify(secret, now()) : undefined;
    if (!info) {
      // a valid token is never refused; failures past the limit are held, then refused
      const verdict = limiter?.recordFailure(remoteAddress(c), secret);
      if (verdict?.limited) {
        await new Promise((r) => setTimeout(r, verdict.delayMs));
        c.header('retry-after', String(Math.ceil(verdict.retryAfterMs / 1000)));
        throw new CellhostError('ERR_AUTH_RATE_LIMITED', `too many invalid tokens from this address or with this token: try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`);
      }
      throw new CellhostError('ERR_AUTH_INVALID', 'the API token is not valid (unknown or revoked)');
    }
    limiter?.recordSuccess(remoteAddress(c), secret);
    c.set('token', info);
    await next();
  };
}
