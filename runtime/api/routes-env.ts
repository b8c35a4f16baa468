// A service's environment variables: names by default, values only with ?reveal=1.
import { z } from '@hono/zod-openapi';
import { envValueSchema, envVarsSchema, type EnvControl } from '../control/env.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

const serviceParams = z.object({ name: z.string() });
const keyParams = z.object({ name: z.string(), key: z.string().openapi({ description: 'the variable: letters, digits and underscores, not starting with a digit' }) });

const varsSchema = z
  .strictObject({
    vars: z.array(
      z.strictObject({
        name: z.string(),
        size: z.number().int().openapi({ description: 'bytes of the value' }),
        updatedAt: z.string(),
        updatedBy: z.string().nullable().openapi({ description: 'the name of the token that set it' }),
        value: z.string().openapi({ description: '"****" unless ?reveal=1' }),
        preview: z.boolean().openapi({ description: "given to the service's preview deployments (false keeps a production secret out of them)" }),
      }),
    ),
  })
  .openapi('EnvVars');

// a wrong name, a reserved one (PORT, CELLHOST_*) or values over 64 KB in all are ERR_VALIDATION;
// a master key that does not open the stored values is ERR_KEY_INVALID
const list = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's variables: names, sizes and who set them; values with ?reveal=1",
  access: 'read',
  request: { params: serviceParams, query: z.object({ reveal: z.string().optional().openapi({ description: '1 or true: include the values' }) }) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(varsSchema, 'the variables') },
});

const replaceAll = defineRoute({
  method: 'put',
  path: '/',
  summary: 'Replace every variable; running instances are replaced gracefully, no redeploy',
  access: 'write',
  request: { params: serviceParams, body: jsonBody(z.object({ vars: envVarsSchema }).strict()) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(varsSchema, 'the variables (values hidden)') },
});

const setOne = defineRoute({
  method: 'put',
  path: '/{key}',
  summary: 'Set one variable',
  access: 'write',
  request: {
    params: keyParams,
    body: jsonBody(
      z
        .object({
          value: envValueSchema,
          preview: z.boolean().optional().openapi({ description: 'whether previews get it (default: as before; true for a new variable)' }),
        })
        .strict(),
    ),
  },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(varsSchema, 'the variables (values hidden)') },
});

const unset = defineRoute({
  method: 'delete',
  path: '/{key}',
  summary: 'Remove one variable',
  access: 'write',
  request: { params: keyParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_ENV_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 204: { description: 'removed' } },
});

/** mounted at /api/v1/services/:name/env */
export function envRoutes(env: EnvControl) {
  const app = createRouter();
  const by = (c: { get(k: 'token'): { name: string } }) => c.get('token').name;
  mount(app, list, (c) => {
    const reveal = ['1', 'true'].includes(c.req.valid('query').reveal ?? '');
    return c.json({ vars: env.list(c.req.valid('param').name, reveal) }, 200);
  });
  mount(app, replaceAll, async (c) => {
    const { name } = c.req.valid('param');
    const body = await readBody(c, replaceAll);
    env.replace(name, body.vars, by(c));
    return c.json({ vars: env.list(name, false) }, 200);
  });
  mount(app, setOne, async (c) => {
    const { name, key } = c.req.valid('param');
    const body = await readBody(c, setOne);
    env.set(name, { [key]: body.value }, by(c), body.preview === undefined ? undefined : { [key]: body.preview });
    return c.json({ vars: env.list(name, false) }, 200);
  });
  mount(app, unset, (c) => {
    const { name, key } = c.req.valid('param');
    env.unset(name, key, by(c));
    return c.body(null, 204);
  });
  return app;
}
