// The API's shapes shared by several routes: what the store holds, as clients see it, and the
// schema the document gives for it.
import { z } from '@hono/zod-openapi';
import { serviceSettingsSchema } from '../control/service-settings.ts';
import { serviceNameSchema } from '../core/names.ts';
import type { Deployment } from '../store/deployments.ts';

export const deploymentSchema = z
  .strictObject({
    id: z.string(),
    service: z.string(),
    seq: z.number().int(),
    status: z.enum(['queued', 'building', 'ready', 'live', 'superseded', 'failed', 'interrupted']),
    source: z.string().openapi({ description: '"upload:tar.gz", "upload:zip" or "git:<url>#<ref>"' }),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  })
  .openapi('Deployment');

export function deploymentView(d: Deployment): z.output<typeof deploymentSchema> {
  return {
    id: d.id,
    service: d.service,
    seq: d.seq,
    status: d.status,
    source: d.source,
    createdAt: d.createdAt,
    ...(d.startedAt ? { startedAt: d.startedAt } : {}),
    ...(d.finishedAt ? { finishedAt: d.finishedAt } : {}),
    ...(d.errorCode ? { error: { code: d.errorCode, message: d.error ?? '' } } : {}),
  };
}

const instanceSchema = z.strictObject({
  id: z.string(),
  deploymentId: z.string(),
  state: z.enum(['starting', 'ready', 'retiring', 'draining', 'stopped']),
  pid: z.number().int(),
  inflight: z.number().int(),
  frozen: z.boolean(),
  startedAt: z.string(),
  readyAt: z.string().nullable(),
});

export const serviceSchema = serviceSettingsSchema
  .extend({
    name: serviceNameSchema,
    uid: z.number().int().nullable().openapi({ description: 'the unprivileged host uid its builds and instances run as' }),
    subuidBase: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'the first of the 65 536 host ids its system-layer builds map (root in the build is this id); null until a build installs system packages' }),
    liveDeploymentId: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    url: z.string(),
    instances: z.array(instanceSchema),
    cpu: z
      .strictObject({ percentOfCore: z.number(), cores: z.number().int() })
      .openapi({ description: 'what the memory size buys: the CPU cap as % of one core, and the cores the app sees' }),
  })
  .strict()
  .openapi('Service');
