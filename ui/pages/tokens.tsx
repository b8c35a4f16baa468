// Tokens: the API tokens (never their secrets), a form to create one (its secret shown on the
// page that follows, once), and revoking. Revoking the token this session logged in with ends
// the session.
import { Hono, type Context } from 'hono';
import { tokenNameSchema } from '../../runtime/api/routes-tokens.ts';
import type { TokenInfo } from '../../runtime/store/tokens.ts';
import { Field, PostButton, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatAgo, formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

function TokensPage(props: { chrome: PageChrome; tokens: TokenInfo[]; currentId: string; created: { id: string; name: string; secret: string } | null; label: string; errors: FieldErrors; now: number }) {
  return (
    <Layout title="Tokens" chrome={props.chrome} nav="tokens">
      <h1>API tokens</h1>
      {props.created ? (
        <section class="card new-token" id="new-token">
          <p>
            Token <strong>{props.created.name}</strong> created. Copy its secret now: it is shown this once and cannot be read again.
          </p>
          <pre class="cmd" id="new-token-secret">
            {props.created.secret}
          </pre>
          <p class="small muted">
            Use it as <code>Authorization: Bearer …</code>, or with the CLI: <code>cellhost login --token …</code>
          </p>
        </section>
      ) : null}
      <table class="list tokens">
        <thead>
          <tr>
            <th>label</th>
            <th>id</th>
            <th>created</th>
            <th>last used</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.tokens.map((t) => (
            <tr data-token={t.id} class={t.id === props.currentId ? 'current' : undefined}>
              <td>
                <strong>{t.name}</strong>
                {t.id === props.currentId ? <span class="muted small"> (this session)</span> : null}
              </td>
              <td class="mono small">{t.id}</td>
              <td class="small">{formatTime(t.createdAt)}</td>
              <td class="small">{t.lastUsedAt ? formatAgo(t.lastUsedAt, props.now) : <span class="muted">never</span>}</td>
              <td class="row-actions">
                <PostButton
                  action={`/tokens/${enc(t.id)}/revoke`}
                  csrf={props.chrome.csrf}
                  label="Revoke"
                  class="small danger"
                  confirm={t.id === props.currentId ? `Revoke ${t.name}? This session uses it and ends with it.` : `Revoke ${t.name}? Whatever uses it stops working.`}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Create a token</h2>
      <form method="post" action="/tokens" class="card create-token" novalidate>
        <CsrfField token={props.chrome.csrf} />
        <Field name="name" label="Label" errors={props.errors} hint="What it is for: ci, laptop, backup-script. Letters, digits, spaces and . _ @ -">
          <input id="f-name" name="name" value={props.label} autocomplete="off" spellcheck={false} />
        </Field>
        <button type="submit" class="primary" id="create-token">
          Create token
        </button>
      </form>
    </Layout>
  );
}

export function tokenPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const show = (c: Context<UiEnv>, opts: { status?: number; label?: string; errors?: FieldErrors } = {}) => {
    const session = c.get('session');
    const created = session.newToken;
    session.newToken = null;
    return sendPage(
      c,
      <TokensPage chrome={chromeFor(c)} tokens={deps.store.tokens.list()} currentId={c.get('token').id} created={created} label={opts.label ?? ''} errors={opts.errors ?? {}} now={Date.parse(deps.now())} />,
      opts.status ?? 200,
    );
  };

  app.get('/tokens', (c) => show(c));

  app.post('/tokens', async (c) => {
    const body = await c.req.parseBody();
    const label = typeof body.name === 'string' ? body.name.trim() : '';
    const checked = tokenNameSchema.safeParse(label);
    if (!checked.success) return show(c, { status: 400, label, errors: { name: label ? `label: ${checked.error.issues[0]!.message}` : 'label: a label is required' } });
    const { token, info } = deps.store.tokens.create(checked.data, deps.now());
    // shown on the page the redirect leads to, once: a reload shows it no more, and makes no second token
    c.get('session').newToken = { id: info.id, name: info.name, secret: token };
    return redirectWith(c, '/tokens');
  });

  app.post('/tokens/:id/revoke', (c) => {
    const id = c.req.param('id');
    const token = deps.store.tokens.list().find((t) => t.id === id);
    if (!token) return redirectWith(c, '/tokens', `No token ${id}: it was revoked already.`);
    const own = id === c.get('token').id;
    if (own && deps.store.tokens.count() === 1) return redirectWith(c, '/tokens', 'This is the last token: create another before revoking it.');
    deps.store.tokens.revoke(id);
    deps.log.info('token.revoked', { id, by: c.get('token').id });
    // the session's token is gone, and the session with it: the next page asks for a login
    if (own) return c.redirect('/login', 303);
    return redirectWith(c, '/tokens', `Token ${token.name} revoked.`);
  });

  return app;
}
