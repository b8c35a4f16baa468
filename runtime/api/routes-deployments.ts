import fs from 'node:fs';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { detectArchiveKind } from '../../builder/sources/index.ts';
import type { LogHub } from '../../builder/log-hub.ts';
import type { Deployments } from '../control/deployments.ts';
import type { Services } from '../control/services.ts';
import { CellhostError } from '../core/errors.ts';
import type { Store } from '../store/index.ts';
import type { AuthEnv } from './auth.ts';
import { readJson } from './http-errors.ts';
import { saveUpload } from './upload.ts';
import { deploymentView } from './views.ts';

const gitSchema = z
  .object({
    // which URLs are cloned is the deploy's to say (ERR_SOURCE_GIT_URL), with the operator's settings
    git: z.string().min(1, 'a git URL').max(4096),
    ref: z.string().regex(/^[A-Za-z0-9._\/-]+$/, 'a branch, tag or commit').max(255).optional(),
  })
  .strict();

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.coerce.number().int().min(1).optional(),
});

export interface DeploymentRouteDeps {
  store: Store;
  services: Services;
  deployments: Deployments;
  logs: LogHub;
  uploadDir: string;
  maxUploadBytes: number;
}

/** mounted at /api/v1/services/:name/deployments */
export function serviceDeploymentRoutes(deps: DeploymentRouteDeps) {
  const app = new Hono<AuthEnv>();
  app.post('/', async (c) => {
    const name = c.req.param('name')!;
    deps.services.get(name);
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json') {
      const body = await readJson(c, gitSchema);
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
  app.get('/', (c) => {
    const name = c.req.param('name')!;
    deps.services.get(name);
    const q = listQuery.parse(c.req.query());
    const items = deps.store.deployments.listForService(name, { limit: q.limit + 1, beforeSeq: q.cursor });
    const page = items.slice(0, q.limit);
    const next = items.length > q.limit ? String(page[page.length - 1]!.seq) : null;
    return c.json({ deployments: page.map(deploymentView), nextCursor: next });
  });
  return app;
}

/** mounted at /api/v1/deployments */
export function deploymentRoutes(deps: DeploymentRouteDeps) {
  const app = new Hono<AuthEnv>();
  const mustGet = (id: string) => {
    const d = deps.store.deployments.get(id);
    if (!d) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    return d;
  };
  app.get('/:id', (c) => c.json(deploymentView(mustGet(c.req.param('id')))));
  app.post('/:id/promote', (c) => c.json(deploymentView(deps.deployments.promote(c.req.param('id')))));
  app.get('/:id/logs', (c) => {
    const id = c.req.param('id');
    mustGet(id);
    const follow = c.req.query('follow');
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
            void stream.writeSSE({ event: 'end', data: JSON.stringify(d ? deploymentView(d) : null) }).then(() => resolve());
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
