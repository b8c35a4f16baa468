// The web UI, mounted at / on the admin listener beside the API. Server-rendered pages that
// call the same control objects as the API; a session cookie after a token login; a CSRF
// token checked on every POST before any handler runs.
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { CellhostError } from '../runtime/core/errors.ts';
import type { UiDeps, UiEnv } from './deps.ts';
import { sendErrorPage } from './error-page.tsx';
import { createLoginLimiter } from '../runtime/core/login-limiter.ts';
import { deployPages, sendDeployTooLarge } from './pages/deploy.tsx';
import { deploymentPages } from './pages/deployment.tsx';
import { domainPages } from './pages/domains.tsx';
import { envPages } from './pages/env.tsx';
import { cronPages } from './pages/cron.tsx';
import { taskPages } from './pages/tasks.tsx';
import { gitPages } from './pages/git.tsx';
import { loginPages } from './pages/login.tsx';
import { observabilityPages } from './pages/observability.tsx';
import { servicePages } from './pages/services.tsx';
import { settingsPages } from './pages/settings.tsx';
import { tokenPages } from './pages/tokens.tsx';
import { usagePages } from './pages/usage.tsx';
import { CSRF_FIELD, CSRF_HEADER, readSessionCookie } from './session.ts';
import { ASSETS } from './static/assets.ts';

export type { UiDeps } from './deps.ts';

/** forms other than the deploy upload are small: env values are at most 64 KB */
const FORM_LIMIT = 1024 * 1024;

const isPublic = (path: string) => path === '/login' || path.startsWith('/static/') || path === '/favicon.ico';
const isUnsafe = (method: string) => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';

export function createUi(deps: UiDeps): Hono<UiEnv> {
  const app = new Hono<UiEnv>();
  const limiter = deps.loginLimiter ?? createLoginLimiter({ now: () => Date.parse(deps.now()) });
  const remoteAddress = deps.remoteAddress ?? defaultRemoteAddress;

  app.onError((err, c) => sendErrorPage(c, err, deps.log));

  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, (c) =>
      c.body(asset.body, 200, { 'content-type': asset.type, 'cache-control': 'public, max-age=86400', 'x-content-type-options': 'nosniff' }),
    );
  }

  // every UI page but the login needs a session; the API under /api has its own auth
  app.use('*', async function requireSession(c, next) {
    const path = c.req.path;
    if (path.startsWith('/api/') || isPublic(path)) return next();
    const found = deps.sessions.get(readSessionCookie(c.req.header('cookie')));
    if (!found) {
      if (isUnsafe(c.req.method)) return c.redirect('/login', 303);
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 302);
    }
    c.set('session', found.session);
    c.set('token', found.token);
    return next();
  });

  app.use(
    '/deploy',
    bodyLimit({ maxSize: deps.maxUploadBytes + FORM_LIMIT, onError: (c) => sendDeployTooLarge(c as Context<UiEnv>, deps) }),
  );
  app.use('*', async function limitForms(c, next) {
    if (!isUnsafe(c.req.method) || c.req.path === '/deploy' || c.req.path.startsWith('/api/')) return next();
    return bodyLimit({ maxSize: FORM_LIMIT, onError: () => { throw new CellhostError('ERR_BODY_TOO_LARGE', 'the form is larger than 1 MB'); } })(c, next);
  });

  app.use('*', async function requireCsrf(c, next) {
    if (!isUnsafe(c.req.method) || c.req.path.startsWith('/api/') || c.req.path === '/login') return next();
    let submitted = c.req.header(CSRF_HEADER);
    if (!submitted) {
      const type = c.req.header('content-type') ?? '';
      if (type.startsWith('multipart/form-data') || type.startsWith('application/x-www-form-urlencoded')) {
        const body = await c.req.parseBody();
        submitted = typeof body[CSRF_FIELD] === 'string' ? (body[CSRF_FIELD] as string) : undefined;
      }
    }
    // a public path has no session, so nothing there can pass (nothing there takes a POST)
    const session = c.get('session');
    if (!session || !deps.sessions.checkCsrf(session, submitted)) {
      throw new CellhostError('ERR_CSRF', 'The form was sent without its security token, or with an old one: go back, reload the page and try again.');
    }
    return next();
  });

  app.route('/', loginPages(deps, limiter, remoteAddress));
  app.route('/', servicePages(deps));
  app.route('/', deployPages(deps));
  app.route('/', deploymentPages(deps));
  app.route('/', envPages(deps));
  app.route('/', domainPages(deps));
  if (deps.hooks && deps.previews) app.route('/', gitPages({ ...deps, git: deps.hooks, previews: deps.previews }));
  app.route('/', observabilityPages(deps));
  app.route('/', usagePages(deps));
  app.route('/', settingsPages(deps));
  app.route('/', tokenPages(deps));
  app.route('/', cronPages(deps));
  app.route('/', taskPages(deps));

  app.all('*', (c, next) => {
    if (c.req.path.startsWith('/api/')) return next();
    throw new CellhostError('ERR_NOT_FOUND', `There is no page at ${c.req.path}.`);
  });
  return app;
}

function defaultRemoteAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // not served by @hono/node-server (app.request() in tests): one shared bucket
    return 'unknown';
  }
}
