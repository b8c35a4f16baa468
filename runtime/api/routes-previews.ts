// A service's preview deployments: one service per branch (or pull request), listed under it.
import type { Previews } from '../control/previews.ts';
import type { Services } from '../control/types.ts';
import { z } from '../core/zod.ts';
import { createRouter, defineRoute, jsonContent, mount } from './openapi.ts';

const previewSchema = z
  .strictObject({
    name: z.string().openapi({ description: 'the preview service: <branch>--<service>' }),
    branch: z.string(),
    pullRequest: z.number().int().nullable().openapi({ description: 'the pull or merge request that asked for it' }),
    url: z.string(),
    liveDeploymentId: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Preview');

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's preview deployments, by branch",
  access: 'read',
  request: { params: z.object({ name: z.string() }) },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 200: jsonContent(z.strictObject({ previews: z.array(previewSchema) }), 'the previews') },
});

/** mounted at /api/v1/services/:name/previews */
export function previewRoutes(deps: { services: Services; previews: Previews }) {
  const app = createRouter();
  mount(app, list, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const previews = deps.previews.list(name).flatMap((p) => {
      try {
        const s = deps.services.get(p.name);
        return [{ name: p.name, branch: p.branch, pullRequest: p.pullRequest, url: s.url, liveDeploymentId: s.liveDeploymentId, createdAt: p.createdAt }];
      } catch {
        return []; // being deleted
      }
    });
    return c.json({ previews }, 200);
  });
  return app;
}
