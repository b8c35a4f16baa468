// A service's webhook: the URL and secret to give the forge, the repository (and its credential)
// webhook deploys clone, and the last deliveries with what each did.
import type { Services } from '../control/types.ts';
import { z } from '../core/zod.ts';
import type { Delivery, GitCredential, HookSettings, HookStore } from '../store/hooks.ts';
import { createRouter, defineRoute, jsonBody, jsonContent, mount, readBody } from './openapi.ts';

const params = z.object({ name: z.string() });

const deliverySchema = z
  .strictObject({
    id: z.number().int(),
    receivedAt: z.string(),
    forge: z.string().nullable().openapi({ description: 'github, gitea, forgejo, gitlab or generic; null when the sender was not recognised' }),
    event: z.string().nullable().openapi({ description: "the forge's event name" }),
    deliveryId: z.string().nullable().openapi({ description: "the forge's id of the delivery" }),
    status: z.number().int().openapi({ description: 'what cellhost answered' }),
    code: z.string().nullable().openapi({ description: 'the ERR_* code of a refusal' }),
    action: z.enum(['deploy', 'preview', 'preview_deleted', 'ignored', 'refused']),
    detail: z.string(),
    ref: z.string().nullable(),
    commit: z.string().nullable(),
    deploymentId: z.string().nullable(),
  })
  .openapi('HookDelivery');

const hookSchema = z
  .strictObject({
    url: z.string().openapi({ description: 'where the forge sends deliveries (any host of the router that no service owns works too)' }),
    secret: z.string().openapi({ description: 'the webhook secret, "****" unless ?reveal=1' }),
    repository: z.string().nullable().openapi({ description: 'the git URL webhook deploys clone; null: the one the delivery names (without credentials)' }),
    credential: z
      .strictObject({ kind: z.enum(['token', 'ssh-key']), username: z.string().optional() })
      .nullable()
      .openapi({ description: 'how a private repository is cloned (the secret part is never shown)' }),
    deployBranch: z.string(),
    previews: z.boolean(),
    deliveries: z.array(deliverySchema).openapi({ description: 'the last 20, newest first' }),
  })
  .openapi('Webhook');

const credentialInput = z.union([
  z.strictObject({
    token: z.string().min(1).max(4096).openapi({ description: 'an access token, sent as the HTTPS password' }),
    username: z.string().min(1).max(255).optional().openapi({ description: 'the HTTPS user name (default x-access-token, which GitHub wants; GitLab and Gitea take any)' }),
  }),
  z.strictObject({
    sshKey: z.string().min(1).max(16 * 1024).openapi({ description: 'a private SSH deploy key (OpenSSH format, no passphrase)' }),
    knownHosts: z.string().max(64 * 1024).optional().openapi({ description: "known_hosts lines of the repository's host (default: the host's /etc/ssh/ssh_known_hosts)" }),
  }),
]);

const configBody = z
  .object({
    repository: z.string().min(1).max(4096).nullable().optional().openapi({ description: 'the git URL to clone (null: the one each delivery names)' }),
    credential: credentialInput.nullable().optional().openapi({ description: 'a token or an SSH deploy key for the repository; null removes it' }),
  })
  .strict();

const show = defineRoute({
  method: 'get',
  path: '/',
  summary: "The service's webhook: URL, secret (with ?reveal=1), repository and the last deliveries",
  access: 'read',
  request: { params, query: z.object({ reveal: z.string().optional().openapi({ description: '1 or true: show the secret' }) }) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(hookSchema, 'the webhook') },
});

const configure = defineRoute({
  method: 'put',
  path: '/',
  summary: 'Set the repository webhook deploys clone, and its credential',
  access: 'write',
  request: { params, body: jsonBody(configBody.openapi('WebhookSettings')) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_BODY_MISSING', 'ERR_VALIDATION', 'ERR_SOURCE_GIT_URL', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(hookSchema, 'the webhook') },
});

const rotate = defineRoute({
  method: 'post',
  path: '/secret',
  summary: 'Make a new webhook secret (the old one stops working at once)',
  access: 'write',
  request: { params },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_KEY_INVALID'],
  responses: { 200: jsonContent(z.strictObject({ secret: z.string() }), 'the new secret (shown this once here; ?reveal=1 shows it again)') },
});

const deliveries = defineRoute({
  method: 'get',
  path: '/deliveries',
  summary: 'The last webhook deliveries and what each did, newest first',
  access: 'read',
  request: { params, query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }) },
  errors: ['ERR_SERVICE_NOT_FOUND', 'ERR_VALIDATION'],
  responses: { 200: jsonContent(z.strictObject({ deliveries: z.array(deliverySchema) }), 'the deliveries') },
});

export interface HookRouteDeps {
  services: Services;
  hooks: HookStore;
  /** the URL a forge posts to for `service` */
  hookUrl(service: string): string;
  /** throws ERR_SOURCE_GIT_URL for a URL cellhost does not clone */
  checkRepository(url: string): void;
  now(): string;
}

function deliveryView(d: Delivery) {
  const { service: _service, ...rest } = d;
  return rest;
}

/** mounted at /api/v1/services/:name/hooks */
export function hookRoutes(deps: HookRouteDeps) {
  const app = createRouter();
  const view = (name: string, s: HookSettings, reveal: boolean) => {
    const service = deps.services.get(name);
    const c = s.credential;
    return {
      url: deps.hookUrl(name),
      secret: reveal ? s.secret : '****',
      repository: s.repository,
      credential: c ? (c.kind === 'token' ? { kind: c.kind, username: c.username } : { kind: c.kind }) : null,
      deployBranch: service.deployBranch,
      previews: service.previews,
      deliveries: deps.hooks.deliveries(name, 20).map(deliveryView),
    };
  };
  mount(app, show, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const reveal = ['1', 'true'].includes(c.req.valid('query').reveal ?? '');
    return c.json(view(name, deps.hooks.ensure(name, deps.now()), reveal), 200);
  });
  mount(app, configure, async (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    const body = await readBody(c, configure);
    const current = deps.hooks.ensure(name, deps.now());
    const repository = body.repository === undefined ? current.repository : body.repository;
    if (repository) deps.checkRepository(repository);
    let credential: GitCredential | null | undefined;
    if (body.credential === null) credential = null;
    else if (body.credential && 'token' in body.credential) credential = { kind: 'token', username: body.credential.username ?? 'x-access-token', token: body.credential.token };
    else if (body.credential) credential = { kind: 'ssh-key', privateKey: body.credential.sshKey, knownHosts: body.credential.knownHosts ?? null };
    return c.json(view(name, deps.hooks.configure(name, repository, credential, deps.now()), false), 200);
  });
  mount(app, rotate, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    return c.json({ secret: deps.hooks.rotateSecret(name, deps.now()) }, 200);
  });
  mount(app, deliveries, (c) => {
    const { name } = c.req.valid('param');
    deps.services.get(name);
    return c.json({ deliveries: deps.hooks.deliveries(name, c.req.valid('query').limit).map(deliveryView) }, 200);
  });
  return app;
}
