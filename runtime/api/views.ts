// The API's shapes shared by several routes: what the store holds, as clients see it, and the
// schema the document gives for it.
import { z } from '@hono/zod-openapi';
import { serviceSettingsSchema } from '../control/service-settings.ts';
import { serviceNameSchema } from '../core/names.ts';
import { MANIFEST_FILES, type ManifestFile } from '../manifest/manifest.ts';
import type { Deployment } from '../store/deployments.ts';

export const deploymentSchema = z
  .strictObject({
    id: z.string(),
    service: z.string(),
    seq: z.number().int(),
    status: z.enum(['queued', 'building', 'ready', 'live', 'superseded', 'failed', 'interrupted']),
    source: z.string().openapi({
      description: '"upload:tar.gz", "upload:zip", "git:<url>#<ref>", "git-push:<branch>@<commit>" (a git push) or "webhook:<forge>:<branch>@<commit>"',
    }),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
    systemLayer: z
      .strictObject({
        packages: z.strictObject({
          added: z.array(z.strictObject({ name: z.string(), version: z.string() })),
          upgraded: z.array(z.strictObject({ name: z.string(), from: z.string(), to: z.string() })),
          removed: z.array(z.strictObject({ name: z.string(), version: z.string() })),
        }),
        bytes: z.number().int().openapi({ description: 'disk space the layer takes (counted with the image against its limit)' }),
        uidBase: z.number().int().openapi({ description: "the first host id of the service's block: the layer's files are owned by ids from it" }),
        builtOnCurrentBase: z
          .boolean()
          .openapi({ description: "false once the host's packages changed since the layer was built (an upgrade): rebuild to build it on the current base" }),
      })
      .optional()
      .openapi({ description: 'present when the build installed system packages (apt-get, dpkg): what its layer changed of the host system' }),
    manifest: z
      .strictObject({
        file: z.enum(MANIFEST_FILES),
        text: z.string().openapi({ description: 'the file as the source had it' }),
      })
      .optional()
      .openapi({
        description:
          'the app manifest at the root of the source (its root dir), when it had one; given by GET /deployments/{id} and promote, not in lists. ' +
          'The build log says which of its settings were applied and which were set through the API instead.',
      }),
  })
  .openapi('Deployment');

/**
 * a deployment as clients see it; `withManifest` adds the manifest text its source had; `hostBase`
 * is the host's package state now (Deployments.hostBase), to tell layers built on an older one
 */
export function deploymentView(d: Deployment, opts: { withManifest?: boolean; hostBase?: string } = {}): z.output<typeof deploymentSchema> {
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
    ...(opts.withManifest && d.manifest ? { manifest: { file: d.manifest.file as ManifestFile, text: d.manifest.text } } : {}),
    ...(d.systemLayer
      ? {
          systemLayer: {
            packages: d.systemLayer.packages,
            bytes: d.systemLayer.bytes,
            uidBase: d.systemLayer.uidBase,
            builtOnCurrentBase: opts.hostBase === undefined || d.systemLayer.hostBase === opts.hostBase,
          },
        }
      : {}),
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
  prewarm: z
    .strictObject({
      reason: z.enum(['deploy', 'change', 'idle', 'restart']),
      since: z.string(),
      kept: z.boolean().openapi({ description: 'frozen and waiting for its first request (counted against CELLHOST_PREWARM_MB); false once a request thawed it' }),
      memoryBytes: z.number().int(),
      startedAhead: z.boolean().openapi({ description: 'its app started before any request asked for it' }),
    })
    .nullable()
    .openapi({ description: 'a prewarmed instance: its app started ahead (deploy, change, restart) or was kept at its idle timeout, frozen until a request comes' }),
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
    explicitSettings: z.array(serviceSettingsSchema.keyof()).openapi({
      description:
        'settings given through the API, CLI or console: they win over the app manifest (cellhost.toml / cellhost.json). The others follow the live deployment\'s manifest, else their defaults. Send a setting as null to hand it back to the manifest.',
    }),
    liveDeploymentId: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    url: z.string(),
    instances: z.array(instanceSchema),
    cpu: z
      .strictObject({ percentOfCore: z.number(), cores: z.number().int() })
      .openapi({ description: 'what the memory size buys: the CPU cap as % of one core, and the cores the app sees' }),
    preview: z
      .strictObject({ parent: z.string(), branch: z.string(), pullRequest: z.number().int().nullable() })
      .nullable()
      .openapi({ description: "set when the service is a preview deployment of another service's branch" }),
  })
  .strict()
  .openapi('Service');
