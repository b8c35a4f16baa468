// Log in with an API token, log out. Before there is a session, the login form's CSRF token
// is a double-submit pair: a random value in a SameSite=Strict cookie and the same in the form.
import crypto from 'node:crypto';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { UiDeps, UiEnv } from '../deps.ts';
import { Layout } from '../layout.tsx';
import type { LoginLimiter } from '../../runtime/core/login-limiter.ts';
import { sendPage } from '../render.ts';
import { CSRF_FIELD, SESSION_COOKIE } from '../session.ts';

const LOGIN_COOKIE = 'cellhost_login';

export function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

/** only a path on this site: no scheme, no "//host" */
export function safeNext(next: string | undefined | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n]/.test(next)) return '/services';
  return next;
}

function LoginPage(props: { csrf: string; next: string; error?: string | null }) {
  return (
    <Layout title="Log in" chrome={null}>
      <section class="login card">
        <h1>Log in</h1>
        <p class="muted">Use an API token: the admin token printed at the first start, or one made with the API.</p>
        <form method="post" action="/login">
          <input type="hidden" name={CSRF_FIELD} value={props.csrf} />
          <input type="hidden" name="next" value={props.next} />
          <div class={props.error ? 'field has-error' : 'field'} data-field="token">
            <label for="f-token">API token</label>
            <input id="f-token" name="token" type="password" autocomplete="current-password" required autofocus />
            {props.error ? (
              <div class="field-error" role="alert">
                {props.error}
              </div>
            ) : null}
          </div>
          <button type="submit" class="primary">
            Log in
          </button>
        </form>
      </section>
    </Layout>
  );
}

export function loginPages(deps: UiDeps, limiter: LoginLimiter, remoteAddress: (c: Context) => string) {
  const app = new Hono<UiEnv>();
  const nowIso = () => deps.now();

  const showForm = (c: Context, status: number, error: string | null, next: string) => {
    // reuse a pair already set, so a second login tab (or a stray request) keeps the first valid
    const existing = getCookie(c, LOGIN_COOKIE);
    const csrf = existing && /^[A-Za-z0-9_-]{32}$/.test(existing) ? existing : crypto.randomBytes(24).toString('base64url');
    setCookie(c, LOGIN_COOKIE, csrf, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/login', maxAge: 3600 });
    return sendPage(c, <LoginPage csrf={csrf} next={next} error={error} />, status);
  };

  app.get('/login', (c) => showForm(c, 200, null, safeNext(c.req.query('next'))));

  app.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(typeof form.next === 'string' ? form.next : null);
    const cookie = getCookie(c, LOGIN_COOKIE);
    const submitted = typeof form[CSRF_FIELD] === 'string' ? (form[CSRF_FIELD] as string) : '';
    if (!cookie || !submitted || cookie.length !== submitted.length || !crypto.timingSafeEqual(Buffer.from(cookie), Buffer.from(submitted))) {
      return showForm(c, 403, 'The login form expired or came from another site: try again.', next);
    }
    const address = remoteAddress(c);
    const secret = typeof form.token === 'string' ? form.token.trim() : '';
    const token = secret ? deps.store.tokens.verify(secret, nowIso()) : undefined;
    if (!token) {
      deps.log.warn('ui.login_failed', { address });
      if (!secret) return showForm(c, 401, 'Enter an API token.', next);
      // a valid token is never refused; failures past the limit are held, then refused
      const verdict = limiter.recordFailure(address, secret);
      if (verdict.limited) {
        await new Promise((r) => setTimeout(r, verdict.delayMs));
        const wait = Math.ceil(verdict.retryAfterMs / 1000);
        c.header('retry-after', String(wait));
        return showForm(c, 429, `Too many failed logins from this address or with this token: wrong tokens are refused for ${wait} s (a valid one is accepted).`, next);
      }
      return showForm(c, 401, 'That token is not valid (unknown or revoked).', next);
    }
    limiter.recordSuccess(address, secret);
    // a fresh id on every login, so an id planted before login is worthless
    deps.sessions.destroy(deps.sessions.readSessionId(c.req.header('cookie')));
    const session = deps.sessions.create(token);
    setCookie(c, SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/' });
    deleteCookie(c, LOGIN_COOKIE, { path: '/login', secure: isHttps(c) });
    deps.log.info('ui.login', { token: token.name });
    return c.redirect(next, 303);
  });

  // logout is checked for CSRF by the app's middleware, like every other form
  app.post('/logout', (c) => {
    deps.sessions.destroy(c.get('session').id);
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: isHttps(c) });
    return c.redirect('/login', 303);
  });

  return app;
}
