// The admin listener's app: the management API under /api/v1 (the root mounts the console
// beside it, at /).
//
// How a new API route is added so that GET /api/openapi.json describes it (the document is
// generated from these declarations; test/unit/api/openapi.test.ts fails for a registered route
// the document lacks, and every response the API tests get is checked against the document):
// - in a routes-*.ts file, `const r = defineRoute({ method, path, summary, access, request,
//   responses, errors })` from ./openapi.ts. `access`: 'public' (no token), 'read', or 'write'
//   (a cookie session must send its CSRF token). `request`: zod schemas for params, query,
//   headers and body (jsonBody(schema) for JSON; other media types by name, e.g. an archive as
//   z.string().openapi({ format: 'binary' })). `responses`: each success status with its body
//   (jsonContent(schema) for JSON; text, SSE or Prometheus text as its media type with
//   z.string(); no content for a 204). `errors`: every ERR_* code the handler (or what it calls)
//   can throw; the token check's and the listener's codes are added by `access`.
// - `mount(router, r, handler)` on a router from createRouter(): params, query and headers
//   arrive checked in c.req.valid(...) (a failure is 400 ERR_VALIDATION); read a JSON body with
//   `await readBody(c, r)`, against the schema the route declares.
// - route that router below (v1.route(path, router) for /api/v1). A route added with plain
//   app.get()/post() is not in the document, and the route test fails; a UI page goes in that
//   test's list of UI routes instead.
import type { LogHub } from '../../builder/log-hub.ts';
import type { Deployments } from '../control/deployments.ts';
import type { Domains } from '../control/domains.ts';
import type { EnvControl } from '../control/env.ts';
import type { CronControl } from '../cron/control.ts';
import type { TaskControl } from '../tasks/control.ts';
import type { Services } from '../control/types.ts';
import { CellhostError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { LogSink } from '../logs/sink.ts';
import type { Store } from '../store/index.ts';
import { createLoginLimiter } from '../core/login-limiter.ts';
import { requireToken, type CookieAuth } from './auth.ts';
import { toResponse } from './http-errors.ts';
import { createRouter, mountDocument, type ApiRouter } from './openapi.ts';
import { envRoutes } from './routes-env.ts';
import { mountHealth, type IsolationReport } from './routes-health.ts';
import { mountGitRoutes } from './routes-git.ts';
import { previewRoutes } from './routes-previews.ts';
import { hookRoutes, type HookRouteDeps } from './routes-hooks.ts';
import type { Previews } from '../control/previews.ts';
import type { GitRemote } from '../git/remote.ts';
import { logRoutes } from './routes-logs.ts';
import { deploymentRoutes, serviceDeploymentRoutes } from './routes-deployments.ts';
import { domainRoutes } from './routes-domains.ts';
import { serviceRoutes } from './routes-services.ts';
import { tokenRoutes } from './routes-tokens.ts';
import { cronRoutes, cronSecretRoutes } from './routes-cron.ts';
import { serviceTaskRoutes, taskQueueRoutes, taskRoutes, taskTokenRoutes } from './routes-tasks.ts';
import { metricsRoutes, mountPrometheus, usageRoutes, type UsageRouteDeps } from './routes-usage.ts';

export interface ApiDeps {
  version: string;
  store: Store;
  services: Services;
  deployments: Deployments;
  logs: LogHub;
  isolation(): IsolationReport;
  sink: LogSink;
  env: EnvControl;
  usage: UsageRouteDeps;
  /** custom domains and their certificates */
  domains: Domains;
  cron: CronControl;
  tasks: TaskControl;
  uploadDir: string;
  maxUploadBytes: number;
  now(): string;
  log: Logger;
  /** the web UI's sessions: the API accepts their cookie (with CSRF on writes) */
  sessions?: CookieAuth;
  /** git's smart HTTP for each service's repository at /git/<service>.git */
  git?: GitRemote;
  /** preview deployments of services' branches */
  previews?: Previews;
  /** webhook settings and deliveries */
  hooks?: Omit<HookRouteDeps, 'services' | 'now'>;
}

export function createApi(deps: ApiDeps): ApiRouter {
  const app = createRouter();
  app.onError((err, c) => toResponse(c, err, deps.log));
  app.notFound((c) => toResponse(c, new CellhostError('ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), deps.log));

  mountHealth(app, deps);
  mountDocument(app, deps.version);

  // invalid tokens: 30 a minute per source, then refused (429) after a growing delay; valid ones pass
  const limiter = createLoginLimiter({ now: () => Date.now(), max: 30 });
  const v1 = createRouter();
  v1.use('*', requireToken(deps.store.tokens, deps.now, deps.sessions, limiter));
  const depDeps = { ...deps, services: deps.services };
  v1.route('/services/:name/deployments', serviceDeploymentRoutes(depDeps));
  v1.route('/services/:name/env', envRoutes(deps.env));
  v1.route('/services/:name/domains', domainRoutes(deps.domains));
  if (deps.hooks) v1.route('/services/:name/hooks', hookRoutes({ ...deps.hooks, services: deps.services, now: deps.now }));
  if (deps.previews) v1.route('/services/:name/previews', previewRoutes({ services: deps.services, previews: deps.previews }));
  v1.route('/services/:name/logs', logRoutes({ services: deps.services, logs: deps.store.logs, sink: deps.sink, now: () => Date.parse(deps.now()) }));
  v1.route('/services', serviceRoutes(deps.services));
  v1.route('/deployments', deploymentRoutes(depDeps));
  v1.route('/tokens', tokenRoutes(deps.store.tokens, deps.now));
  v1.route('/usage', usageRoutes(deps.usage));
  v1.route('/services/:name/metrics', metricsRoutes(deps.usage));
  v1.route('/services/:name/cron', cronRoutes(deps.cron));
  v1.route('/services/:name/cron-secret', cronSecretRoutes(deps.cron));
  v1.route('/services/:name/tasks', serviceTaskRoutes(deps.tasks));
  v1.route('/services/:name/task-queue', taskQueueRoutes(deps.tasks));
  v1.route('/services/:name/task-token', taskTokenRoutes(deps.tasks));
  v1.route('/tasks', taskRoutes(deps.tasks));
  app.route('/api/v1', v1);
  app.use('/metrics', requireToken(deps.store.tokens, deps.now, undefined, limiter));
  if (deps.git) mountGitRoutes(app, { services: deps.services, remote: deps.git, tokens: deps.store.tokens, limiter, now: deps.now });
  mountPrometheus(app, deps.usage);
  return app;
}
