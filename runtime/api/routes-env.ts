// A service's environment variables: names by default, values only with ?reveal=1.
import { Hono } from 'hono';
import { z } from 'zod';
import { envValueSchema, envVarsSchema, type EnvControl } from '../control/env.ts';
import type { AuthEnv } from './auth.ts';
import { readJson } from './http-errors.ts';

const setOne = z.object({ value: envValueSchema }).strict();
const replaceAll = z.object({ vars: envVarsSchema }).strict();

/** mounted at /api/v1/services/:name/env */
export function envRoutes(env: EnvControl) {
  const app = new Hono<AuthEnv>();
  const by = (c: { get(k: 'token'): { name: string } }) => c.get('token').name;
  app.get('/', (c) => {
    const reveal = ['1', 'true'].includes(c.req.query('reveal') ?? '');
    return c.json({ vars: env.list(c.req.param('name')!, reveal) });
  });
  app.put('/', async (c) => {
    const name = c.req.param('name')!;
    const body = await readJson(c, replaceAll);
    env.replace(name, body.vars, by(c));
    return c.json({ vars: env.list(name, false) });
  });
  app.put('/:key', async (c) => {
    const name = c.req.param('name')!;
    const body = await readJson(c, setOne);
    env.set(name, { [c.req.param('key')]: body.value }, by(c));
    return c.json({ vars: env.list(name, false) });
  });
  app.delete('/:key', (c) => {
    env.unset(c.req.param('name')!, c.req.param('key'), by(c));
    return c.body(null, 204);
  });
  return app;
}
