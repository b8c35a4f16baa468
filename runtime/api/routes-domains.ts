// A service's custom domains: attach, list with DNS records and certificate state, detach.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Domains } from '../control/domains.ts';
import { CellhostError } from '../core/errors.ts';
import type { AuthEnv } from './auth.ts';
import { readJson } from './http-errors.ts';

// the name itself is checked by the domain rules, each mistake with its own code
export const domainAddSchema = z.object({ domain: z.string() }).strict();

/** mounted at /api/v1/services/:name/domains */
export function domainRoutes(domains: Domains) {
  const app = new Hono<AuthEnv>();
  app.get('/', async (c) => c.json({ domains: await domains.list(c.req.param('name')!) }));
  app.post('/', async (c) => {
    const name = c.req.param('name')!;
    const body = await readJson(c, domainAddSchema);
    const { created, view } = await domains.add(name, body.domain);
    return c.json(view, created ? 201 : 200);
  });
  app.get('/:domain', async (c) => {
    const name = c.req.param('name')!;
    const domain = c.req.param('domain');
    const found = (await domains.list(name)).find((d) => d.domain === domain);
    if (!found) throw new CellhostError('ERR_DOMAIN_NOT_FOUND', `service "${name}" has no domain "${domain}"`);
    return c.json(found);
  });
  app.delete('/:domain', (c) => {
    domains.remove(c.req.param('name')!, c.req.param('domain'));
    return c.body(null, 204);
  });
  return app;
}
