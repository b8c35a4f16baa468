// git's smart-HTTP protocol for each service at /git/<service>.git on the admin listener: clone,
// fetch and push (a push deploys: runtime/git/). git sends the API token as the HTTP password
// (any user name) after a 401 asking for Basic credentials; a bearer header works too. Wrong
// tokens count against the same failed-login limits as the API's.
import type { MiddlewareHandler } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type http from 'node:http';
import type { Services } from '../control/types.ts';
import { CellhostError } from '../core/errors.ts';
import type { LoginLimiter } from '../core/login-limiter.ts';
import { z } from '../core/zod.ts';
import type { GitRemote } from '../git/remote.ts';
import type { TokenStore } from '../store/tokens.ts';
import type { AuthEnv } from './auth.ts';
import { defineRoute, mount, type ApiRouter } from './openapi.ts';

const repoParams = z.object({
  repo: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.git$/, '<service>.git')
    .openapi({ description: 'the service name followed by .git', example: 'hello.git' }),
});

const GIT_ERRORS = ['ERR_AUTH_MISSING', 'ERR_AUTH_INVALID', 'ERR_AUTH_RATE_LIMITED', 'ERR_VALIDATION', 'ERR_SERVICE_NOT_FOUND'] as const;
const binary = (type: string) => ({ [type]: { schema: z.string().openapi({ format: 'binary' }) } });
const basicAuth = [{ gitBasic: [] }];

const refs = defineRoute({
  method: 'get',
  path: '/git/{repo}/info/refs',
  summary: "git smart HTTP: the service repository's refs (first request of a clone, fetch or push)",
  description: 'Used by git itself: `git clone http://<admin>/git/<service>.git`. The API token is the HTTP password, any user name.',
  access: 'public',
  request: { params: repoParams, query: z.object({ service: z.enum(['git-upload-pack', 'git-receive-pack']).openapi({ description: 'which side of the protocol' }) }) },
  errors: GIT_ERRORS,
  responses: {
    200: {
      description: "the refs in git's pkt-line format",
      content: { ...binary('application/x-git-upload-pack-advertisement'), ...binary('application/x-git-receive-pack-advertisement') },
    },
  },
});

const uploadPack = defineRoute({
  method: 'post',
  path: '/git/{repo}/git-upload-pack',
  summary: 'git smart HTTP: fetch objects (clone, fetch, pull)',
  access: 'public',
  request: { params: repoParams, body: { required: true, content: binary('application/x-git-upload-pack-request') } },
  errors: GIT_ERRORS,
  responses: { 200: { description: 'the pack', content: binary('application/x-git-upload-pack-result') } },
});

const receivePack = defineRoute({
  method: 'post',
  path: '/git/{repo}/git-receive-pack',
  summary: 'git smart HTTP: push (the deploy branch deploys, other branches deploy previews when they are on)',
  description:
    "The build's output streams back as git's `remote:` lines, then the URL; a failed build rejects the push and the live version keeps serving.",
  access: 'public',
  request: { params: repoParams, body: { required: true, content: binary('application/x-git-receive-pack-request') } },
  errors: GIT_ERRORS,
  responses: { 200: { description: "receive-pack's report, with the hook's output on the side band", content: binary('application/x-git-receive-pack-result') } },
});

export interface GitRouteDeps {
  services: Services;
  remote: GitRemote;
  tokens: TokenStore;
  limiter: LoginLimiter;
  now(): string;
}

type NodeEnv = { incoming?: http.IncomingMessage; outgoing?: http.ServerResponse };

/** the token from Basic credentials (the password) or a bearer header; a 401 asks git for credentials */
function requireGitToken(deps: GitRouteDeps): MiddlewareHandler<AuthEnv> {
  return async function requireGitTokenMiddleware(c, next) {
    const header = c.req.header('authorization') ?? '';
    const challenge = () => c.header('www-authenticate', 'Basic realm="cellhost git", charset="UTF-8"');
    let secret: string | null = null;
    const basic = /^Basic\s+(\S+)$/i.exec(header);
    const bearer = /^Bearer\s+(\S+)$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      secret = colon >= 0 ? decoded.slice(colon + 1) : decoded;
    } else if (bearer) secret = bearer[1]!;
    if (!secret) {
      challenge();
      throw new CellhostError('ERR_AUTH_MISSING', 'git needs the API token as its password (any user name): see cellhost git-remote NAME');
    }
    const info = deps.tokens.verify(secret, deps.now());
    const address = (c.env as NodeEnv | undefined)?.incoming?.socket?.remoteAddress ?? 'unknown';
    if (!info) {
      const verdict = deps.limiter.recordFailure(address, secret);
      if (verdict.limited) {
        await new Promise((r) => setTimeout(r, verdict.delayMs));
        c.header('retry-after', String(Math.ceil(verdict.retryAfterMs / 1000)));
        throw new CellhostError('ERR_AUTH_RATE_LIMITED', `too many invalid tokens from this address or with this token: try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`);
      }
      challenge();
      throw new CellhostError('ERR_AUTH_INVALID', 'the API token given as the password is not valid (unknown or revoked)');
    }
    deps.limiter.recordSuccess(address, secret);
    c.set('token', info);
    await next();
  };
}

/** mounts the three smart-HTTP routes on the admin app (beside /api, not under it) */
export function mountGitRoutes(app: ApiRouter, deps: GitRouteDeps): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'gitBasic', {
    type: 'http',
    scheme: 'basic',
    description: 'git smart HTTP: any user name, an API token as the password',
  });
  const auth = requireGitToken(deps);
  for (const [route, gitPath] of [
    [refs, 'info/refs'],
    [uploadPack, 'git-upload-pack'],
    [receivePack, 'git-receive-pack'],
  ] as const) {
    mount(app, { ...route, security: basicAuth, middleware: [auth] }, async (c) => {
      const { repo } = c.req.valid('param');
      const service = deps.services.get(repo.slice(0, -'.git'.length));
      const env = c.env as NodeEnv | undefined;
      if (!env?.incoming || !env.outgoing) throw new CellhostError('ERR_INTERNAL', 'git is served on the admin listener only');
      const url = new URL(c.req.url);
      await deps.remote.serve(env.incoming, env.outgoing, {
        service: service.name,
        deployBranch: service.deployBranch,
        gitPath,
        query: url.search.slice(1),
        remoteUser: c.get('token').name,
        remoteAddr: env.incoming.socket.remoteAddress ?? '',
      });
      return RESPONSE_ALREADY_SENT;
    });
  }
}
