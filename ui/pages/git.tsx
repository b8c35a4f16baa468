// Service > Git: the remote to push to (a push deploys), the webhook to give a forge (URL, secret,
// repository and credential), the deploy branch and previews, the last deliveries with what each
// did, and the previews running now.
import { Hono } from 'hono';
import type { Previews } from '../../runtime/control/previews.ts';
import { servicePatchSchema } from '../../runtime/control/service-settings.ts';
import type { ServiceView } from '../../runtime/control/types.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { Delivery, GitCredential, HookSettings, HookStore } from '../../runtime/store/hooks.ts';
import { Empty, PostButton } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

/** what the Git tab needs beside the usual control objects */
export interface GitUiDeps {
  hooks: HookStore;
  hookUrl(service: string): string;
  checkRepository(url: string): void;
}

function GitPage(props: {
  chrome: PageChrome;
  service: ServiceView;
  remoteUrl: string;
  adminOrigin: string;
  hook: HookSettings;
  hookUrl: string;
  reveal: boolean;
  deliveries: Delivery[];
  previews: { name: string; branch: string; pullRequest: number | null; url: string | null }[];
}) {
  const s = props.service;
  const base = `/services/${enc(s.name)}/git`;
  const c = props.hook.credential;
  return (
    <Layout title={`${s.name} · Git`} chrome={props.chrome} service={{ name: s.name, tab: 'git' }}>
      <h2>Push to deploy</h2>
      <p class="muted small">
        A push of <code>{s.deployBranch}</code> builds and deploys the pushed commit; the build's output comes back in the push's output, then the URL. A failed
        build rejects the push and the live version keeps serving. git asks for a password: give an API token (any user name).
      </p>
      <pre class="cmd" id="git-remote">
        {`git remote add cellhost ${props.remoteUrl}\n` +
          `git config credential.${props.adminOrigin}.helper '!cellhost git-remote --credential'\n` +
          `git push cellhost ${s.deployBranch}`}
      </pre>

      <h2>Deploy branch and previews</h2>
      <form method="post" action={`${base}/settings`} class="stack" id="git-settings">
        <CsrfField token={props.chrome.csrf} />
        <label>
          deploy branch <input name="deployBranch" value={s.deployBranch} required class="mono" />
        </label>
        <label>
          <input type="checkbox" name="previews" value="on" checked={s.previews} /> previews: other branches and pull requests deploy as{' '}
          <code>{`<branch>--${s.name}`}</code>
        </label>
        <button type="submit">Save</button>
      </form>

      <h2>Webhook</h2>
      <dl class="facts">
        <dt>payload URL</dt>
        <dd class="mono" id="hook-url">
          {props.hookUrl}
        </dd>
        <dt>content type</dt>
        <dd>application/json</dd>
        <dt>secret</dt>
        <dd>
          <span class="mono" id="hook-secret">
            {props.reveal ? props.hook.secret : '••••••••'}
          </span>{' '}
          {props.reveal ? <a href={base}>hide</a> : <a href={`${base}?reveal=1`}>reveal</a>}{' '}
          <PostButton action={`${base}/secret`} csrf={props.chrome.csrf} label="Rotate" confirm="Make a new secret? The forge's webhook must be given it." />
        </dd>
        <dt>repository</dt>
        <dd class="mono">{props.hook.repository ?? <span class="muted">the one each delivery names</span>}</dd>
        <dt>credential</dt>
        <dd>{c ? (c.kind === 'token' ? `token (user ${c.username})` : 'SSH deploy key') : <span class="muted">none</span>}</dd>
      </dl>
      <p class="muted small">
        GitHub: secret in "Secret" (X-Hub-Signature-256). GitLab: "Secret token". Gitea, Forgejo: "Secret". Any host of the router that no service owns
        takes deliveries.
      </p>
      <form method="post" action={`${base}/repository`} class="stack" id="hook-repository">
        <CsrfField token={props.chrome.csrf} />
        <label>
          repository <input name="repository" value={props.hook.repository ?? ''} placeholder="https://github.com/you/app.git" class="mono" />
        </label>
        <label>
          access token (private repositories; kept encrypted, never shown) <input name="token" type="password" autocomplete="off" />
        </label>
        <label>
          <input type="checkbox" name="clearCredential" value="on" /> remove the stored credential
        </label>
        <button type="submit">Save</button>
      </form>

      <h2>Recent deliveries</h2>
      {props.deliveries.length === 0 ? (
        <Empty>No deliveries yet.</Empty>
      ) : (
        <table class="list" id="deliveries">
          <thead>
            <tr>
              <th>received</th>
              <th>from</th>
              <th>event</th>
              <th>answer</th>
              <th>what it did</th>
            </tr>
          </thead>
          <tbody>
            {props.deliveries.map((d) => (
              <tr data-action={d.action}>
                <td class="small">{formatTime(Date.parse(d.receivedAt))}</td>
                <td>{d.forge ?? '?'}</td>
                <td class="mono small">{d.event ?? '—'}</td>
                <td class="mono small">{d.code ? `${d.status} ${d.code}` : d.status}</td>
                <td>
                  <strong>{d.action}</strong> {d.detail}{' '}
                  {d.deploymentId ? (
                    <a class="mono small" href={`/deployments/${enc(d.deploymentId)}`}>
                      {d.deploymentId}
                    </a>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Previews</h2>
      {props.previews.length === 0 ? (
        <Empty>{s.previews ? 'No previews: push a branch or open a pull request.' : 'Previews are off.'}</Empty>
      ) : (
        <table class="list" id="previews">
          <thead>
            <tr>
              <th>preview</th>
              <th>branch</th>
              <th>URL</th>
            </tr>
          </thead>
          <tbody>
            {props.previews.map((p) => (
              <tr>
                <td>
                  <a href={`/services/${enc(p.name)}`}>{p.name}</a>
                </td>
                <td class="mono">
                  {p.branch}
                  {p.pullRequest ? ` (#${p.pullRequest})` : ''}
                </td>
                <td>{p.url ? <a href={p.url}>{p.url}</a> : <span class="muted">being deleted</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

export function gitPages(deps: UiDeps & { git: GitUiDeps; previews: Previews }) {
  const app = new Hono<UiEnv>();
  const now = () => deps.now();

  app.get('/services/:name/git', (c) => {
    const s = deps.services.get(c.req.param('name'));
    const origin = new URL(c.req.url).origin;
    const previews = deps.previews.list(s.name).map((p) => {
      try {
        return { name: p.name, branch: p.branch, pullRequest: p.pullRequest, url: deps.services.get(p.name).url };
      } catch {
        return { name: p.name, branch: p.branch, pullRequest: p.pullRequest, url: null };
      }
    });
    return sendPage(
      c,
      <GitPage
        chrome={chromeFor(c)}
        service={s}
        remoteUrl={`${origin}/git/${s.name}.git`}
        adminOrigin={origin}
        hook={deps.git.hooks.ensure(s.name, now())}
        hookUrl={deps.git.hookUrl(s.name)}
        reveal={c.req.query('reveal') === '1'}
        deliveries={deps.git.hooks.deliveries(s.name, 20)}
        previews={previews}
      />,
    );
  });

  app.post('/services/:name/git/settings', async (c) => {
    const s = deps.services.get(c.req.param('name'));
    const body = await c.req.parseBody();
    const deployBranch = typeof body.deployBranch === 'string' ? body.deployBranch.trim() : s.deployBranch;
    // checked here as the API checks its body: the control plane takes settings as valid
    const patch = servicePatchSchema.safeParse({ deployBranch, previews: body.previews === 'on' });
    if (!patch.success) return redirectWith(c, `/services/${enc(s.name)}/git`, `deploy branch: ${patch.error.issues[0]!.message}`);
    try {
      deps.services.update(s.name, patch.data);
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/services/${enc(s.name)}/git`, err.message);
      throw err;
    }
    return redirectWith(c, `/services/${enc(s.name)}/git`, 'Saved.');
  });

  app.post('/services/:name/git/repository', async (c) => {
    const s = deps.services.get(c.req.param('name'));
    const body = await c.req.parseBody();
    const repository = typeof body.repository === 'string' && body.repository.trim() ? body.repository.trim() : null;
    const token = typeof body.token === 'string' && body.token ? body.token : null;
    let credential: GitCredential | null | undefined;
    if (body.clearCredential === 'on') credential = null;
    else if (token) credential = { kind: 'token', username: 'x-access-token', token };
    try {
      if (repository) deps.git.checkRepository(repository);
      deps.git.hooks.configure(s.name, repository, credential, now());
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/services/${enc(s.name)}/git`, err.message);
      throw err;
    }
    return redirectWith(c, `/services/${enc(s.name)}/git`, 'Repository saved.');
  });

  app.post('/services/:name/git/secret', (c) => {
    const s = deps.services.get(c.req.param('name'));
    deps.git.hooks.rotateSecret(s.name, now());
    return redirectWith(c, `/services/${enc(s.name)}/git?reveal=1`, 'A new secret: give it to the forge now; the old one no longer works.');
  });

  return app;
}
