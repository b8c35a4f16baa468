import { z } from '@hono/zod-openapi';
import type { Services } from '../control/types.ts';
import { serviceCreateSchema, servicePatchSchema } from '../control/service-settings.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';
import { serviceSchema } from './views.ts';

const params = z.object({ name: z.string() });

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: 'List services',
  access: 'read',
  responses: { 200: jsonContent(z.strictObject({ services: z.array(serviceSchema) }), 'the services') },
});

const create = defineRoute({
  method: 'post',
  path: '/',
  summary: 'Create a service',
  description: 'Settings given here are explicit: they win over the app manifest (cellhost.toml / cellhost.json) of its deployments. Settings left out (or null) follow the manifest, else their defaults.',
  access: 'write',
  request: { body: jsonBody(serviceCreateSchema.openapi('ServiceCreate')) },
  // ERR_DOMAIN_TAKEN: one of `domains` belongs to another service, or is a platform name
  errors: ['ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_SERVICE_EXISTS', 'ERR_DOMAIN_TAKEN'],
  responses: { 201: jsonContent(serviceSchema, 'the service') },
});

const show = defineRoute({
  method: 'get',
  path: '/{name}',
  summary: 'Show a service with its live deployment, instances and URL',
  access: 'read',
  request: { params },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 200: jsonContent(serviceSchema, 'the service') },
});

const change = defineRoute({
  method: 'patch',
  path: '/{name}',
  summary: 'Change a service',
  description:
    'A setting given a value becomes explicit: it wins over the app manifest of later deployments. A setting sent as null is no longer explicit: ' +
    'the live deployment\'s manifest decides it, else its default (the runtime stays as it is).',
  access: 'write',
  request: { params, body: jsonBody(servicePatchSchema.openapi('ServicePatch')) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_DOMAIN_TAKEN'],
  responses: { 200: jsonContent(serviceSchema, 'the service') },
});

const remove = defineRoute({
  method: 'delete',
  path: '/{name}',
  summary: 'Delete a service: stops its instances and removes its images',
  access: 'write',
  request: { params },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 204: { description: 'deleted' } },
});

/** mounted at /api/v1/services */
export function serviceRoutes(services: Services) {
  const app = createRouter();
  mount(app, list, (c) => c.json({ services: services.list() }, 200));
  mount(app, create, async (c) => c.json(services.create(await readBody(c, create)), 201));
  mount(app, show, (c) => c.json(services.get(c.req.valid('param').name), 200));
  mount(app, change, async (c) => {
    const { name } = c.req.valid('param');
    services.get(name);
    return c.json(services.update(name, await readBody(c, change)), 200);
  });
  mount(app, remove, async (c) => {
    await services.remove(c.req.valid('param').name);
    return c.body(null, 204);
  });
  return app;
}
