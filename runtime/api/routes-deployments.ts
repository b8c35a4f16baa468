import fs from 'node:fs';
import { z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { detectArchiveKind } from '../../builder/sources/index.ts';
import type { LogHub } from '../../builder/log-hub.ts';
import type { Deployments } from '../control/deployments.ts';
import type { Services } from '../control/types.ts';
import { CellhostError } from '../core/errors.ts';
import type { Store } from '../store/index.ts';
import { createRouter, defineRoute, jsonContent, mount, readBody } from './openapi.ts';
import { saveUpload } from './upload.ts';
import { deploymentSchema, deploymentView } from './views.ts';

const gitSchema = z
  .object({
    // which URLs are cloned is the deploy's to say (ERR_SOURCE_GIT_URL), with the operator's settings
    git: z.string().min(1, 'a git URL').max(4096),
    ref: z.string().regex(/^[A-Za-z0-9._\/-]+$/, 'a branch, tag or commit').max(255).optional(),
  })
  .strict();

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.coerce.number().int().min(1).optional().openapi({ description: 'the nextCursor of the page before' }),
});

const followQuery = z.object({
  follow: z.string().optional().openapi({ description: '1 or true: stream the log as server-sent events until the build ends' }),
});

const archive = { schema: z.string().openapi({ format: 'binary' }) };

export interface DeploymentRouteDeps {
  store: Store;
  services: Services;
  deployments: Deployments;
  logs: LogHub;
  uploadDir: string;
  maxUploadBytes: number;
}

const serviceParams = z.object({ name: z.string() });
const idParams = z.object({ id: z.string() });

const create = defineRoute({
  method: 'post',
  path: '/',
  summary: 'New deployment from a tar.gz or zip body, or JSON {git, ref}',
  description:
    'An archive body is streamed to disk; its magic bytes decide between tar.gz and zip (the content type only when they do not). ' +
    'A JSON body (application/json) names a git repository and an optional ref.',
  access: 'write',
  request: {
    params: serviceParams,
    body: {
      required: true,
      content: {
        'application/gzip': archive,
        'application/zip': archive,
        'application/octet-stream': archive,
        'application/json': { schema: gitSchema.openapi('GitSource') },
      },
    },
  },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_BODY_TOO_LARGE', 'ERR_UNSUPPORTED_MEDIA', 'ERR_RUNTIME_MISSING', 'ERR_SOURCE_GIT_URL'],
  responses: { 202: jsonContent(deploymentSchema, 'the queued deployment') },
});

const history = defineRoute({
  method: 'get',
  path: '/',
  summary: 'Deployment history, newest first',
  access: 'read',
  request: { params: serviceParams, query: listQuery },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: {
    200: jsonContent(
      z.strictObject({ deployments: z.array(deploymentSchema), nextCursor: z.string().nullable().openapi({ description: 'the cursor of the next page; null on the last' }) }),
      'a page of deployments',
    ),
  },
});

/** mounted at /api/v1/services/:name/deployments */
export function serviceDeploymentRoutes(deps: DeploymentRouteDeps) {
  const app = createRouter();
  mount(app, create, async (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json') {
      const body = await readBody(c, create);
      const dep = deps.deployments.create(name, { kind: 'git', url: body.git, ref: body.ref }, `git:${body.git}${body.ref ? '#' + body.ref : ''}`);
      return c.json(deploymentView(dep), 202);
    }
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > deps.maxUploadBytes) {
      throw new CellhostError('ERR_BODY_TOO_LARGE', `the upload is larger than the limit of ${Math.round(deps.maxUploadBytes / 1024 / 1024)} MB`);
    }
    const upload = await saveUpload(c.req.raw.body, deps.uploadDir, deps.maxUploadBytes);
    const kind = detectArchiveKind(type || undefined, upload.head);
    if (!kind) {
      fs.rmSync(upload.file, { force: true });
      throw new CellhostError('ERR_UNSUPPORTED_MEDIA', 'the body is neither a tar.gz nor a zip archive (send application/gzip or application/zip)');
    }
    const dep = deps.deployments.create(name, { kind, file: upload.file }, `upload:${kind}`);
    return c.json(deploymentView(dep), 202);
  });
  mount(app, history, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const q = c.req.valid('query');
    const items = deps.store.deployments.listForService(name, { limit: q.limit + 1, beforeSeq: q.cursor });
    const page = items.slice(0, q.limit);
    const next = items.length > q.limit ? String(page[page.length - 1]!.seq) : null;
    return c.json({ deployments: page.map((d) => deploymentView(d, { hostBase: deps.deployments.hostBase() })), nextCursor: next }, 200);
  });
  return app;
}

const show = defineRoute({
  method: 'get',
  path: '/{id}',
  summary: 'One deployment',
  access: 'read',
  request: { params: idParams },
  errors: ['ERR_DEPLOYMENT_NOT_FOUND'],
  responses: { 200: jsonContent(deploymentSchema, 'the deployment') },
});

const promote = defineRoute({
  method: 'post',
  path: '/{id}/promote',
  summary: 'Make this built image live (rollback or roll forward)',
  access: 'write',
  request: { params: idParams },
  description: "The service's settings follow the manifest of the deployment that goes live, where none was set through the API.",
  errors: ['ERR_DEPLOYMENT_NOT_FOUND', 'ERR_DEPLOYMENT_NOT_READY', 'ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(deploymentSchema, 'the deployment, now live') },
});

const rebuild = defineRoute({
  method: 'post',
  path: '/{id}/rebuild',
  summary: 'Build the same source again as a new deployment (a system layer on the host’s current packages)',
  description:
    'A git source is fetched again (its ref as it is now); an uploaded archive is the one a deployment with a system layer keeps while its image is kept. ' +
    'Offered when a layer was built on an older base: the host was upgraded since.',
  access: 'write',
  request: { params: idParams },
  errors: ['ERR_DEPLOYMENT_NOT_FOUND', 'ERR_DEPLOYMENT_NO_SOURCE', 'ERR_SERVICE_NOT_FOUND', 'ERR_RUNTIME_MISSING'],
  responses: { 202: jsonContent(deploymentSchema, 'the new, queued deployment') },
});

const buildLog = defineRoute({
  method: 'get',
  path: '/{id}/logs',
  summary: 'Build log; with ?follow=1, server-sent events until the build ends',
  access: 'read',
  request: { params: idParams, query: followQuery },
  errors: ['ERR_DEPLOYMENT_NOT_FOUND'],
  responses: {
    200: {
      description: 'the log so far as text; with follow, events "log" (data: a JSON string, the next chunk) and a last "end" (data: the deployment as JSON)',
      content: {
        'text/plain; charset=utf-8': { schema: z.string() },
        'text/event-stream': { schema: z.string() },
      },
    },
  },
});

/** mounted at /api/v1/deployments */
export function deploymentRoutes(deps: DeploymentRouteDeps) {
  const app = createRouter();
  const mustGet = (id: string) => {
    const d = deps.store.deployments.get(id);
    if (!d) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    return d;
  };
  mount(app, show, (c) => c.json(deploymentView(mustGet(c.req.valid('param').id), { withManifest: true, hostBase: deps.deployments.hostBase() }), 200));
  mount(app, promote, (c) => c.json(deploymentView(deps.deployments.promote(c.req.valid('param').id), { withManifest: true, hostBase: deps.deployments.hostBase() }), 200));
  mount(app, rebuild, async (c) => c.json(deploymentView(await deps.deployments.rebuild(c.req.valid('param').id), { hostBase: deps.deployments.hostBase() }), 202));
  mount(app, buildLog, (c) => {
    const { id } = c.req.valid('param');
    mustGet(id);
    const { follow } = c.req.valid('query');
    if (follow !== '1' && follow !== 'true') {
      return c.text(deps.logs.read(id) ?? '', 200, { 'content-type': 'text/plain; charset=utf-8' });
    }
    return streamSSE(c, async (stream) => {
      let eventId = 0;
      await new Promise<void>((resolve) => {
        const unsubscribe = deps.logs.follow(id, {
          onChunk: (text) => void stream.writeSSE({ event: 'log', id: String(++eventId), data: JSON.stringify(text) }),
          onEnd: () => {
            const d = deps.store.deployments.get(id);
            void stream.writeSSE({ event: 'end', data: JSON.stringify(d ? deploymentView(d, { hostBase: deps.deployments.hostBase() }) : null) }).then(() => resolve());
          },
        });
        stream.onAbort(() => {
          unsubscribe();
          resolve();
        });
      });
    });
  });
  return app;
}
