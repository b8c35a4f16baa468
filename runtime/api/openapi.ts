// The management API described in OpenAPI 3.1, built from the same zod schemas that
// validate requests, so the document cannot drift from what the routes accept.
import { z } from 'zod';
import { ERROR_STATUS } from '../core/errors.ts';
import { serviceCreateSchema, servicePatchSchema } from '../control/service-settings.ts';

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = { description: 'error', ...json(ref('Error')) };

interface Op {
  summary: string;
  body?: unknown;
  ok: [number, string, unknown?];
  auth?: boolean;
}

const OPS: Record<string, Record<string, Op>> = {
  '/api/v1/health': { get: { summary: 'Liveness, version and active isolation features', ok: [200, 'health'], auth: false } },
  '/api/v1/services': {
    get: { summary: 'List services', ok: [200, 'services', { type: 'object', properties: { services: { type: 'array', items: ref('Service') } } }] },
    post: { summary: 'Create a service', body: ref('ServiceCreate'), ok: [201, 'the service', ref('Service')] },
  },
  '/api/v1/services/{name}': {
    get: { summary: 'Show a service with its live deployment, instances and URL', ok: [200, 'the service', ref('Service')] },
    patch: { summary: 'Change a service', body: ref('ServicePatch'), ok: [200, 'the service', ref('Service')] },
    delete: { summary: 'Delete a service: stops its instances and removes its images', ok: [204, 'deleted'] },
  },
  '/api/v1/services/{name}/deployments': {
    get: { summary: 'Deployment history, newest first (?limit=&cursor=)', ok: [200, 'deployments'] },
    post: {
      summary: 'New deployment from a tar.gz or zip body, or JSON {git, ref}',
      body: {
        oneOf: [
          { type: 'string', format: 'binary', description: 'application/gzip or application/zip' },
          { type: 'object', properties: { git: { type: 'string' }, ref: { type: 'string' } }, required: ['git'] },
        ],
      },
      ok: [202, 'the queued deployment', ref('Deployment')],
    },
  },
  '/api/v1/deployments/{id}': { get: { summary: 'One deployment', ok: [200, 'the deployment', ref('Deployment')] } },
  '/api/v1/deployments/{id}/logs': { get: { summary: 'Build log; ?follow=1 streams it as server-sent events until the build ends', ok: [200, 'text/plain or text/event-stream'] } },
  '/api/v1/deployments/{id}/promote': { post: { summary: 'Make this built image live (rollback or roll forward)', ok: [200, 'the deployment', ref('Deployment')] } },
  '/api/v1/tokens': {
    get: { summary: 'List API tokens (never their secrets)', ok: [200, 'tokens'] },
    post: { summary: 'Create a token; the secret is in this response only', body: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }, ok: [201, 'the token with its secret'] },
  },
  '/api/v1/tokens/{id}': { delete: { summary: 'Revoke a token', ok: [204, 'revoked'] } },
};

export function buildOpenApi(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [p, ops] of Object.entries(OPS)) {
    paths[p] = {};
    const params = [...p.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    for (const [method, op] of Object.entries(ops)) {
      paths[p][method] = {
        summary: op.summary,
        ...(params.length ? { parameters: params } : {}),
        ...(op.auth === false ? { security: [] } : {}),
        ...(op.body ? { requestBody: { required: true, ...json(op.body) } } : {}),
        responses: { [op.ok[0]]: { description: op.ok[1], ...(op.ok[2] ? json(op.ok[2]) : {}) }, default: errorResponse },
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'cellhost management API', version },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        ServiceCreate: z.toJSONSchema(serviceCreateSchema, { io: 'input', unrepresentable: 'any' }),
        ServicePatch: z.toJSONSchema(servicePatchSchema, { io: 'input', unrepresentable: 'any' }),
        Service: {
          allOf: [
            ref('ServiceCreate'),
            { type: 'object', properties: { url: { type: 'string' }, liveDeploymentId: { type: ['string', 'null'] }, createdAt: { type: 'string' }, instances: { type: 'array' } } },
          ],
        },
        Deployment: {
          type: 'object',
          required: ['id', 'service', 'status', 'createdAt'],
          properties: {
            id: { type: 'string' },
            service: { type: 'string' },
            status: { enum: ['queued', 'building', 'ready', 'live', 'superseded', 'failed', 'interrupted'] },
            createdAt: { type: 'string' },
            startedAt: { type: 'string' },
            finishedAt: { type: 'string' },
            error: ref('ErrorBody'),
          },
        },
        ErrorBody: { type: 'object', required: ['code', 'message'], properties: { code: { enum: Object.keys(ERROR_STATUS) }, message: { type: 'string' } } },
        Error: { type: 'object', required: ['error'], properties: { error: ref('ErrorBody') } },
      },
    },
  };
}
