import { Hono } from 'hono';
import { z } from 'zod';
import { CellhostError } from '../core/errors.ts';
import type { TokenStore } from '../store/tokens.ts';
import type { AuthEnv } from './auth.ts';
import { readJson } from './http-errors.ts';

const createSchema = z.object({ name: z.string().min(1).max(100).regex(/^[\w .@-]+$/, 'letters, digits, spaces and . _ @ -') }).strict();

export function tokenRoutes(tokens: TokenStore, now: () => string) {
  const app = new Hono<AuthEnv>();
  app.get('/', (c) => c.json({ tokens: tokens.list() }));
  app.post('/', async (c) => {
    const body = await readJson(c, createSchema);
    const { token, info } = tokens.create(body.name, now());
    return c.json({ ...info, token }, 201);
  });
  app.delete('/:id', (c) => {
    const id = c.req.param('id');
    if (id === c.get('token').id && tokens.count() === 1) {
      throw new CellhostError('ERR_VALIDATION', 'this is the last token: create another before revoking it');
    }
    if (!tokens.revoke(id)) throw new CellhostError('ERR_TOKEN_NOT_FOUND', `no token "${id}"`);
    return c.body(null, 204);
  });
  return app;
}
