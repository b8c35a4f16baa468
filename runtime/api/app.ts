// The admin listener's app: the management API under /api/v1 (the UI mounts beside it).
import { Hono } from 'hono';
import type { LogHub } from '../../builder/log-hub.ts';
import type { Deployments } from '../control/deployments.ts';
import type { Domains } from '../control/domains.ts';
import type { EnvControl } from '../control/env.ts';
import type { Services } from '../control/services.ts';
import { CellhostError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { IsolationReport } from '../instances/launcher.ts';
import type { LogSink } from '../logs/sink.ts';
import type { Store } from '../store/index.ts';
import { createLoginLimiter } from '../core/login-limiter.ts';
import { requireToken, type AuthEnv, type CookieAuth } from './auth.ts';
import { toResponse } from './http-errors.ts';
import { buildOpenApi } from './openapi.ts';
import { envRoutes } from './routes-env.ts';
import { logRoutes } from './routes-logs.ts';
import { deploymentRoutes, serviceDeploymentRoutes } from './routes-deployments.ts';
import { domainRoutes } from './routes-domains.ts';
import { serviceRoutes } from './routes-services.ts';
import { tokenRoutes } from './routes-tokens.ts';
import { metricsRoutes, prometheusRoute, usageRoutes, type UsageRouteDeps } from './routes-usage.ts';

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
  uploadDir: string;
  maxUploadBytes: number;
  now(): string;
  log: Logger;
  /** the web UI's sessions: the API accepts their cookie (with CSRF on writes) */
  sessions?: CookieAuth;
  /** builds the web UI, mounted at / beside the API */
  ui?(deps: ApiDeps): Hono<any>;
}

export function createApi(deps: ApiDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.onError((err, c) => toResponse(c, err, deps.log));
  app.notFound((c) => toResponse(c, new CellhostError('ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), deps.log));

  const startedAt = new Date().toISOString();
  app.get('/api/v1/health', (c) =>
    c.json({ status: 'ok', version: deps.version, startedAt, isolation: deps.isolation() }),
  );
  const openapi = buildOpenApi(deps.version);
  app.get('/api/openapi.json', (c) => c.json(openapi));

  // invalid tokens per client address: 30 a minute, then 429 until the window moves on
  const limiter = createLoginLimiter({ now: () => Date.now(), max: 30 });
  const v1 = new Hono<AuthEnv>();
  v1.use('*', requireToken(deps.store.tokens, deps.now, deps.sessions, limiter));
  const depDeps = { ...deps, services: deps.services };
  v1.route('/services/:name/deployments', serviceDeploymentRoutes(depDeps));
  v1.route('/services/:name/env', envRoutes(deps.env));
  v1.route('/services/:name/domains', domainRoutes(deps.domains));
  v1.route('/services/:name/logs', logRoutes({ services: deps.services, logs: deps.store.logs, sink: deps.sink, now: () => Date.parse(deps.now()) }));
  v1.route('/services', serviceRoutes(deps.services));
  v1.route('/deployments', deploymentRoutes(depDeps));
  v1.route('/tokens', tokenRoutes(deps.store.tokens, deps.now));
  v1.route('/usage', usageRoutes(deps.usage));
  v1.route('/services/:name/metrics', metricsRoutes(deps.usage));
  app.route('/api/v1', v1);
  app.get('/metrics', requireToken(deps.store.tokens, deps.now, undefined, limiter), prometheusRoute(deps.usage));
  if (deps.ui) app.route('/', deps.ui(deps));
  return app;
}
