// Service > Domains: the service's names with the DNS record each needs and its certificate's
// state (waiting for DNS, validating, issued with expiry, failed with the CA's reason); attach
// and remove custom domains; the service's HTTPS redirect and HSTS.
import { Hono, type Context } from 'hono';
import type { DomainView } from '../../runtime/control/domains.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import { Empty, Field, PostButton, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

const STATE: Record<string, [label: string, badge: string]> = {
  issued: ['issued', 'ok'],
  pending_dns: ['waiting for DNS', 'wait'],
  validating: ['validating', 'wait'],
  failed: ['failed', 'bad'],
  none: ['no certificate', 'muted'],
};

function Certificate(props: { d: DomainView }) {
  const c = props.d.certificate;
  return (
    <div class="cert">
      <span class={`badge badge-${STATE[c.status]?.[1] ?? 'muted'}`}>{STATE[c.status]?.[0] ?? c.status}</span>{' '}
      {c.status === 'issued' && c.expiresAt ? <span class="small">expires {formatTime(c.expiresAt)}</span> : null}
      {c.servedBy && c.servedBy.identifier !== props.d.domain ? <span class="small muted"> ({c.servedBy.source === 'user' ? 'your certificate' : c.servedBy.identifier})</span> : null}
      {c.status === 'validating' && c.challenge ? <span class="small muted"> {c.challenge}</span> : null}
      {c.error ? <div class="small cert-error">{c.error}</div> : null}
      {c.status === 'pending_dns' && c.dns ? <div class="small cert-error">{c.dns.message}</div> : null}
      {(c.status === 'failed' || c.status === 'pending_dns' || c.error) && c.nextAttemptAt ? <div class="small muted">next attempt {formatTime(c.nextAttemptAt)}</div> : null}
      {c.status === 'none' && c.message ? <div class="small muted">{c.message}</div> : null}
    </div>
  );
}

function DomainsPage(props: { chrome: PageChrome; service: string; domains: DomainView[]; httpsRedirect: boolean; hsts: boolean; form: { domain: string }; errors: FieldErrors }) {
  const base = `/services/${enc(props.service)}/domains`;
  const custom = props.domains.filter((d) => d.kind === 'custom');
  return (
    <Layout title={`${props.service} · Domains`} chrome={props.chrome} service={{ name: props.service, tab: 'domains' }}>
      <h2>Domains</h2>
      <p class="muted small">The service answers on its platform name and on every domain attached here. Once a name points to this host, a certificate is ordered and renewed by itself.</p>
      <table class="list domains">
        <thead>
          <tr>
            <th>domain</th>
            <th>DNS record to create</th>
            <th>certificate</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.domains.map((d) => (
            <tr data-domain={d.domain}>
              <td class="mono">
                {d.domain}
                {d.kind === 'platform' ? <span class="small muted"> (platform name)</span> : null}
              </td>
              <td class="mono small">
                {d.dnsRecords.length ? d.dnsRecords.map((r) => <div>{`${r.type} ${r.value}`}</div>) : <span class="muted">—</span>}
              </td>
              <td>
                <Certificate d={d} />
              </td>
              <td class="row-actions">
                {d.kind === 'custom' ? (
                  <>
                    <PostButton action={`${base}/${enc(d.domain)}/check`} csrf={props.chrome.csrf} label="Check now" class="small check-domain" title="check its DNS again now" />
                    <PostButton action={`${base}/${enc(d.domain)}/delete`} csrf={props.chrome.csrf} label="Remove" class="small danger" confirm={`Remove ${d.domain}?`} />
                  </>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {custom.length === 0 ? <Empty>No custom domains yet.</Empty> : null}

      <h2>Add a domain</h2>
      <form method="post" action={base} class="card add-domain">
        <CsrfField token={props.chrome.csrf} />
        <Field name="domain" label="Domain" errors={props.errors} hint="Lowercase, without a trailing dot, an internationalized name in its xn-- form.">
          <input id="f-domain" name="domain" value={props.form.domain} placeholder="www.example.com" spellcheck={false} autocomplete="off" />
        </Field>
        <button type="submit" class="primary">
          Add domain
        </button>
      </form>

      <h2>HTTPS</h2>
      <form method="post" action={`${base}/settings`} class="card https-settings">
        <CsrfField token={props.chrome.csrf} />
        <label class="check">
          <input type="checkbox" id="f-https-redirect" name="httpsRedirect" value="on" checked={props.httpsRedirect} /> Redirect HTTP to HTTPS for names that have a certificate
        </label>
        <label class="check">
          <input type="checkbox" id="f-hsts" name="hsts" value="on" checked={props.hsts} /> Send Strict-Transport-Security (browsers then refuse plain HTTP for a year)
        </label>
        <button type="submit">Save</button>
      </form>
    </Layout>
  );
}

export function domainPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const domains = deps.domains;

  const show = async (c: Context<UiEnv>, service: string, opts: { status?: number; form?: { domain: string }; errors?: FieldErrors } = {}) => {
    const s = deps.services.get(service);
    const list = domains ? await domains.list(service) : [];
    return sendPage(
      c,
      <DomainsPage chrome={chromeFor(c)} service={service} domains={list} httpsRedirect={s.httpsRedirect} hsts={s.hsts} form={opts.form ?? { domain: '' }} errors={opts.errors ?? {}} />,
      opts.status ?? 200,
    );
  };

  app.get('/services/:name/domains', (c) => show(c, deps.services.get(c.req.param('name')).name));

  app.post('/services/:name/domains', async (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const body = await c.req.parseBody();
    const domain = typeof body.domain === 'string' ? body.domain.trim() : '';
    if (!domains) throw new CellhostError('ERR_NOT_FOUND', 'domains are not available here');
    try {
      const { created } = await domains.add(service, domain);
      return redirectWith(c, `/services/${enc(service)}/domains`, created ? `${domain} added: create its DNS record, then a certificate is ordered.` : `${domain}: DNS checked again.`);
    } catch (err) {
      if (!(err instanceof CellhostError)) throw err;
      return show(c, service, { status: err.status, form: { domain }, errors: { domain: err.message } });
    }
  });

  app.post('/services/:name/domains/settings', async (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const body = await c.req.parseBody();
    deps.services.update(service, { httpsRedirect: body.httpsRedirect === 'on', hsts: body.hsts === 'on' });
    return redirectWith(c, `/services/${enc(service)}/domains`, 'HTTPS settings saved.');
  });

  app.post('/services/:name/domains/:domain/check', async (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const domain = c.req.param('domain');
    if (!domains) throw new CellhostError('ERR_NOT_FOUND', 'domains are not available here');
    if (!deps.services.get(service).domains.includes(domain)) throw new CellhostError('ERR_DOMAIN_NOT_FOUND', `service "${service}" has no domain "${domain}"`);
    await domains.add(service, domain);
    return redirectWith(c, `/services/${enc(service)}/domains`, `${domain}: DNS checked again.`);
  });

  app.post('/services/:name/domains/:domain/delete', (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const domain = c.req.param('domain');
    if (!domains) throw new CellhostError('ERR_NOT_FOUND', 'domains are not available here');
    domains.remove(service, domain);
    return redirectWith(c, `/services/${enc(service)}/domains`, `${domain} removed.`);
  });

  return app;
}
