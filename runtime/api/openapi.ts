// The management API described in OpenAPI 3.1, built from the same zod schemas that
// validate requests, so the document cannot drift from what the routes accept.
import { z } from 'zod';
import { ERROR_STATUS } from '../core/errors.ts';
import { serviceCreateSchema, servicePatchSchema } from '../control/service-settings.ts';
import { domainAddSchema } from './routes-domains.ts';

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
  '/api/v1/services/{name}/domains': {
    get: { summary: "The service's platform name and custom domains, each with the DNS record to create and its certificate's state", ok: [200, 'domains', { type: 'object', properties: { domains: { type: 'array', items: ref('Domain') } } }] },
    post: { summary: 'Attach a custom domain (201); attaching one the service has checks its DNS again (200). 409 when another service has it', body: ref('DomainAdd'), ok: [201, 'the domain', ref('Domain')] },
  },
  '/api/v1/services/{name}/domains/{domain}': {
    get: { summary: 'One domain with its certificate state', ok: [200, 'the domain', ref('Domain')] },
    delete: { summary: 'Detach a custom domain; its certificate is dropped', ok: [204, 'detached'] },
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
        DomainAdd: z.toJSONSchema(domainAddSchema, { io: 'input', unrepresentable: 'any' }),
        Domain: {
          type: 'object',
          required: ['domain', 'service', 'kind', 'dnsRecords', 'status', 'certificate'],
          properties: {
            domain: { type: 'string' },
            service: { type: 'string' },
            kind: { enum: ['platform', 'custom'] },
            dnsRecords: { type: 'array', items: { type: 'object', properties: { type: { enum: ['A', 'AAAA', 'CNAME'] }, value: { type: 'string' } } } },
            status: { enum: ['pending_dns', 'validating', 'issued', 'failed', 'none'] },
            certificate: {
              type: 'object',
              properties: {
                status: { enum: ['pending_dns', 'validating', 'issued', 'failed', 'none'] },
                servedBy: { type: ['object', 'null'], properties: { identifier: { type: 'string' }, source: { enum: ['acme', 'user'] } } },
                issuedAt: { type: ['string', 'null'] },
                expiresAt: { type: ['string', 'null'] },
                challenge: { type: ['string', 'null'] },
                error: { type: ['string', 'null'], description: "why the last attempt failed, in the CA's words where it gave any" },
                nextAttemptAt: { type: ['string', 'null'] },
                dns: { type: ['object', 'null'], properties: { ok: { type: 'boolean' }, message: { type: 'string' }, found: { type: 'array', items: { type: 'string' } }, checkedAt: { type: 'string' } } },
                message: { type: ['string', 'null'] },
              },
            },
          },
        },
        ErrorBody: { type: 'object', required: ['code', 'message'], properties: { code: { enum: Object.keys(ERROR_STATUS) }, message: { type: 'string' } } },
        Error: { type: 'object', required: ['error'], properties: { error: ref('ErrorBody') } },
      },
    },
  };
}
