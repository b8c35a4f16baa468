// The management API's OpenAPI document is generated from the routes: each route is declared once
// (method, path, request, responses, the error codes it can answer) and mounted from that
// declaration, so the document and what the routes accept and answer cannot drift apart.
import { OpenAPIHono, z, type RouteConfig, type RouteHandler } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ERROR_STATUS, type ErrorCode } from '../core/errors.ts';
import type { AuthEnv } from './auth.ts';
import { readJson, zodToError } from './http-errors.ts';

export type ApiRouter = OpenAPIHono<AuthEnv>;

/** a router whose params and query failing their schema answer 400 ERR_VALIDATION, like every other bad input */
export function createRouter(): ApiRouter {
  return new OpenAPIHono<AuthEnv>({
    defaultHook: function rejectInvalidInput(result) {
      if (!result.success) throw zodToError(result.error);
    },
  });
}

/** who may call a route: anyone, a token holder (reads), or a token holder whose cookie session also sent its CSRF token (writes) */
export type Access = 'public' | 'read' | 'write';

// what any request can be answered, whatever its route: the listener's answers to malformed
// HTTP (before any route runs) and the catch-all for the unexpected
const ANY_CODES: ErrorCode[] = ['ERR_BAD_REQUEST', 'ERR_HEADERS_TIMEOUT', 'ERR_HEADERS_TOO_LARGE', 'ERR_INTERNAL'];
// what every route behind the token check can answer: the check itself (which also records the
// token's last use, a write)
const AUTH_CODES: ErrorCode[] = ['ERR_AUTH_MISSING', 'ERR_AUTH_INVALID', 'ERR_AUTH_RATE_LIMITED', 'ERR_DISK_FULL'];

/** every error the API answers: {error: {code, message}}, with details (such as the field) for some */
const errorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().regex(/^ERR_[A-Z_]+$/),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .openapi('Error');

/** the error responses of a route, one per status, each naming the codes that status carries */
function errorResponses(access: Access, codes: readonly ErrorCode[]) {
  const all = new Set<ErrorCode>([...codes, ...ANY_CODES]);
  if (access !== 'public') for (const c of AUTH_CODES) all.add(c);
  if (access === 'write') all.add('ERR_CSRF');
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of all) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  const responses: Record<number, { description: string; content: { 'application/json': { schema: z.ZodType } } }> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const schema = errorSchema.and(z.object({ error: z.object({ code: z.enum(list as [ErrorCode, ...ErrorCode[]]) }) }));
    responses[status] = { description: list.join(', '), content: { 'application/json': { schema } } };
  }
  return responses;
}

export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });

export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({ required: true, description, content: { 'application/json': { schema } } });

type RouteSpec = Omit<RouteConfig, 'security'> & { access: Access; errors?: readonly ErrorCode[] };

/**
 * A route as the document shows it: its own responses plus one error response per status its
 * error codes (and its access) can give. A public route needs no token.
 */
export function defineRoute<const S extends RouteSpec>(spec: S) {
  const { access, errors = [], ...route } = spec;
  return {
    ...route,
    ...(access === 'public' ? { security: [] } : {}),
    responses: { ...route.responses, ...errorResponses(access, errors) },
  } as Omit<S, 'access' | 'errors'> & { responses: S['responses'] };
}

type WithoutBody<R extends RouteConfig> = Omit<R, 'request'> & { request: Omit<NonNullable<R['request']>, 'body'> };

/**
 * Puts a route in the document and mounts it. Params and query are validated by the library
 * (400 ERR_VALIDATION); a body is not: a JSON body is read by the handler with readBody(c, route)
 * (after it has checked, say, that the service exists), and an upload streams from c.req.raw
 * (the library's body check would copy the stream and answer 415 in its own shape).
 */
export function mount<R extends RouteConfig>(app: ApiRouter, route: R, handler: RouteHandler<WithoutBody<R>, AuthEnv>): void {
  const { middleware: _middleware, hide: _hide, ...documented } = route;
  app.openAPIRegistry.registerPath(documented);
  const { body: _body, ...validated } = route.request ?? {};
  app.openapi({ ...route, request: validated, hide: true }, handler as never);
}

type JsonBodySchema<R> = R extends { request: { body: { content: { 'application/json': { schema: infer S extends z.ZodType } } } } } ? S : never;

/** the route's JSON body, checked against the schema its document declares */
export function readBody<R extends RouteConfig>(c: Context, route: R): Promise<z.output<JsonBodySchema<R>>> {
  const schema = (route.request?.body?.content as Record<string, { schema?: unknown }> | undefined)?.['application/json']?.schema;
  if (!(schema instanceof z.ZodType)) throw new Error(`${route.method} ${route.path} declares no JSON body`);
  return readJson(c, schema as JsonBodySchema<R>);
}

const documentRoute = defineRoute({
  method: 'get',
  path: '/api/openapi.json',
  summary: 'This document: the management API in OpenAPI 3.1',
  access: 'public',
  responses: { 200: jsonContent(z.record(z.string(), z.unknown()), 'the OpenAPI 3.1 document') },
});

/** serves the document of every route mounted on `app` (generated once, on the first request, when all are mounted) */
export function mountDocument(app: ApiRouter, version: string): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'an API token (the admin token printed on the first start, or one made with POST /api/v1/tokens): "Authorization: Bearer <token>"',
  });
  let doc: unknown;
  mount(app, documentRoute, (c) => {
    doc ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: { title: 'cellhost management API', version },
      security: [{ bearer: [] }],
    });
    return c.json(doc as Record<string, unknown>, 200);
  });
}
