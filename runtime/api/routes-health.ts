// Liveness for probes and installers: no token needed.
import { z } from '@hono/zod-openapi';
import { defineRoute, jsonContent, mount, type ApiRouter } from './openapi.ts';

const isolationSchema = z.strictObject({
  features: z.record(z.string(), z.boolean()).openapi({ description: 'what is enforced on this host: cgroups, cpu, memory, pids, freezer, sandbox, netns, systemLayers (builds may install system packages)' }),
  reasons: z.array(z.string()).openapi({ description: 'why a feature is off, in words a user can act on' }),
});

/** what the platform found it can enforce on this host, as the health route shows it */
export type IsolationReport = z.infer<typeof isolationSchema>;

const healthSchema = z.strictObject({
  status: z.literal('ok'),
  version: z.string(),
  startedAt: z.string(),
  isolation: isolationSchema,
});

const health = defineRoute({
  method: 'get',
  path: '/api/v1/health',
  summary: 'Liveness, version and the isolation features active on this host',
  access: 'public',
  responses: { 200: jsonContent(healthSchema, 'the platform is up') },
});

export function mountHealth(app: ApiRouter, deps: { version: string; isolation(): IsolationReport }): void {
  const startedAt = new Date().toISOString();
  mount(app, health, (c) => c.json({ status: 'ok' as const, version: deps.version, startedAt, isolation: deps.isolation() }, 200));
}
