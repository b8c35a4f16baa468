// Bearer tokens on every /api/v1 route but health. Tokens are looked up by their hash.
import type { MiddlewareHandler } from 'hono';
import { CellhostError } from '../core/errors.ts';
import type { TokenInfo, TokenStore } from '../store/tokens.ts';

export type AuthEnv = { Variables: { token: TokenInfo } };

export function requireToken(tokens: TokenStore, now: () => string): MiddlewareHandler<AuthEnv> {
  return async function requireTokenMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (!header) throw new CellhostError('ERR_AUTH_MISSING', 'send an API token as "Authorization: Bearer <token>"');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const info = m ? tokens.verify(m[1]!, now()) : undefined;
    if (!info) throw new CellhostError('ERR_AUTH_INVALID', 'the API token is not valid (unknown or revoked)');
    c.set('token', info);
    await next();
  };
}
