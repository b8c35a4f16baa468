import { Hono } from 'hono';
import type { Services } from '../control/services.ts';
import { serviceCreateSchema, servicePatchSchema } from '../control/service-settings.ts';
import type { AuthEnv } from './auth.ts';
import { readJson } from './http-errors.ts';

export function serviceRoutes(services: Services) {
  const app = new Hono<AuthEnv>();
  app.get('/', (c) => c.json({ services: services.list() }));
  app.post('/', async (c) => {
    const body = await readJson(c, serviceCreateSchema);
    return c.json(services.create(body), 201);
  });
  app.get('/:name', (c) => c.json(services.get(c.req.param('name'))));
  app.patch('/:name', async (c) => {
    const name = c.req.param('name');
    services.get(name);
    const patch = await readJson(c, servicePatchSchema);
    return c.json(services.update(name, patch));
  });
  app.delete('/:name', async (c) => {
    await services.remove(c.req.param('name'));
    return c.body(null, 204);
  });
  return app;
}
