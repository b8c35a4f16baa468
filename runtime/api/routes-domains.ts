// A service's custom domains: attach, list with DNS records and certificate state, detach.
import type { Domains } from '../control/domains.ts';
import { CellhostError, type ErrorCode } from '../core/errors.ts';
import { z } from '../core/zod.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

const serviceParams = z.object({ name: z.string() });
const domainParams = z.object({ name: z.string(), domain: z.string().openapi({ description: 'the domain name, e.g. app.example.com' }) });

// the name itself is checked by the domain rules, each mistake with its own code
export const domainAddSchema = z
  .object({ domain: z.string().openapi({ description: 'a full name in lowercase ASCII (punycode for IDNs), no trailing dot, no wildcard, no IP address' }) })
  .strict()
  .openapi('DomainAdd');

const STATUS = ['pending_dns', 'validating', 'issued', 'failed', 'none'] as const;

export const domainSchema = z
  .strictObject({
    domain: z.string(),
    service: z.string(),
    kind: z.enum(['platform', 'custom']).openapi({ description: 'platform: <service>.<platform domain>, always there; custom: attached by the user' }),
    dnsRecords: z
      .array(z.strictObject({ type: z.enum(['A', 'AAAA', 'CNAME']), value: z.string() }))
      .openapi({ description: 'the records to create at the DNS provider: an A/AAAA record to this host, or a CNAME to the platform name (custom domains only)' }),
    status: z.enum(STATUS).openapi({ description: "the certificate's state (none: no certificate is wanted, the message says why)" }),
    certificate: z.strictObject({
      domain: z.string(),
      status: z.enum(STATUS),
      servedBy: z
        .strictObject({ identifier: z.string(), source: z.enum(['acme', 'user']) })
        .nullable()
        .openapi({ description: "the certificate that answers: the name's own, a wildcard, or the user's (CELLHOST_TLS_CERT)" }),
      issuedAt: z.string().nullable(),
      expiresAt: z.string().nullable(),
      challenge: z.string().nullable().openapi({ description: 'the ACME challenge of the last order: http-01, tls-alpn-01 or dns-01' }),
      error: z.string().nullable().openapi({ description: "why the last attempt failed, in the CA's words where it gave any" }),
      nextAttemptAt: z.string().nullable(),
      dns: z.strictObject({ ok: z.boolean(), message: z.string(), found: z.array(z.string()), checkedAt: z.string() }).nullable(),
      message: z.string().nullable(),
    }),
  })
  .openapi('Domain');

const DOMAIN_NAME_CODES: ErrorCode[] = [
  'ERR_DOMAIN_INVALID',
  'ERR_DOMAIN_IP',
  'ERR_DOMAIN_WILDCARD',
  'ERR_DOMAIN_UPPERCASE',
  'ERR_DOMAIN_TRAILING_DOT',
  'ERR_DOMAIN_TOO_LONG',
  'ERR_DOMAIN_NOT_PUNYCODE',
];

const list = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's platform name and custom domains, each with the DNS record to create and its certificate's state",
  access: 'read',
  request: { params: serviceParams },
  errors: ['ERR_SERVICE_NOT_FOUND'],
  responses: { 200: jsonContent(z.strictObject({ domains: z.array(domainSchema) }), 'the domains, the platform name first') },
});

const add = defineRoute({
  method: 'post',
  path: '/',
  summary: 'Attach a custom domain (201); attaching one the service has checks its DNS again (200). 409 when another service has it, or it is a platform name',
  access: 'write',
  request: { params: serviceParams, body: jsonBody(domainAddSchema) },
  // ERR_VALIDATION: a body that is not {domain}, or a 51st domain
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', ...DOMAIN_NAME_CODES, 'ERR_DOMAIN_TAKEN'],
  responses: {
    200: jsonContent(domainSchema, 'the service had it already: its DNS is checked again'),
    201: jsonContent(domainSchema, 'attached'),
  },
});

const show = defineRoute({
  method: 'get',
  path: '/{domain}',
  summary: 'One domain (the platform name or a custom one) with its certificate state',
  access: 'read',
  request: { params: domainParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_DOMAIN_NOT_FOUND'],
  responses: { 200: jsonContent(domainSchema, 'the domain') },
});

const remove = defineRoute({
  method: 'delete',
  path: '/{domain}',
  summary: 'Detach a custom domain; its certificate is dropped (unless another name it covers is still served)',
  access: 'write',
  request: { params: domainParams },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_DOMAIN_NOT_FOUND'],
  responses: { 204: { description: 'detached' } },
});

/** mounted at /api/v1/services/:name/domains */
export function domainRoutes(domains: Domains) {
  const app = createRouter();
  mount(app, list, async (c) => c.json({ domains: await domains.list(c.req.valid('param').name) }, 200));
  mount(app, add, async (c) => {
    const { name } = c.req.valid('param');
    // the service first: a body sent to a service that does not exist is a 404, not a 400
    domains.assertService(name);
    const body = await readBody(c, add);
    const { created, view } = await domains.add(name, body.domain);
    return created ? c.json(view, 201) : c.json(view, 200);
  });
  mount(app, show, async (c) => {
    const { name, domain } = c.req.valid('param');
    const found = (await domains.list(name)).find((d) => d.domain === domain);
    if (!found) throw new CellhostError('ERR_DOMAIN_NOT_FOUND', `service "${name}" has no domain "${domain}"`);
    return c.json(found, 200);
  });
  mount(app, remove, (c) => {
    const { name, domain } = c.req.valid('param');
    domains.remove(name, domain);
    return c.body(null, 204);
  });
  return app;
}
