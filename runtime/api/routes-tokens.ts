import { z } from '@hono/zod-openapi';
import { CellhostError } from '../core/errors.ts';
import type { TokenStore } from '../store/tokens.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

/** a token's label (the API calls it its name) */
export const tokenNameSchema = z.string().min(1).max(100).regex(/^[\w .@-]+$/, 'letters, digits, spaces and . _ @ -');

const createSchema = z.object({ name: tokenNameSchema }).strict();

const tokenShape = { id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() };
const tokenSchema = z.strictObject(tokenShape).openapi('Token');

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: 'List API tokens (never their secrets)',
  access: 'read',
  responses: { 200: jsonContent(z.strictObject({ tokens: z.array(tokenSchema) }), 'the tokens') },
});

const create = defineRoute({
  method: 'post',
  path: '/',
  summary: 'Create a token; its secret is in this response only',
  access: 'write',
  request: { body: jsonBody(createSchema) },
  errors: ['ERR_BODY_MISSING', 'ERR_VALIDATION'],
  responses: { 201: jsonContent(z.strictObject({ ...tokenShape, token: z.string().openapi({ description: 'the secret, shown once' }) }), 'the token with its secret') },
});

const revoke = defineRoute({
  method: 'delete',
  path: '/{id}',
  summary: 'Revoke a token (not the last one)',
  access: 'write',
  request: { params: z.object({ id: z.string() }) },
  errors: ['ERR_VALIDATION', 'ERR_TOKEN_NOT_FOUND'],
  responses: { 204: { description: 'revoked' } },
});

/** mounted at /api/v1/tokens */
export function tokenRoutes(tokens: TokenStore, now: () => string) {
  const app = createRouter();
  mount(app, list, (c) => c.json({ tokens: tokens.list() }, 200));
  mount(app, create, async (c) => {
    const body = await readBody(c, create);
    const { token, info } = tokens.create(body.name, now());
    return c.json({ ...info, token }, 201);
  });
  mount(app, revoke, (c) => {
    const { id } = c.req.valid('param');
    if (id === c.get('token').id && tokens.count() === 1) {
      throw new CellhostError('ERR_VALIDATION', 'this is the last token: create another before revoking it');
    }
    if (!tokens.revoke(id)) throw new CellhostError('ERR_TOKEN_NOT_FOUND', `no token "${id}"`);
    return c.body(null, 204);
  });
  return app;
}
