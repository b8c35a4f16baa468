// Service > Environment: the variables with masked values, reveal one or all, add, edit, delete.
// Values are only in the page when revealed or edited; changes apply without a redeploy.
import { Hono, type Context } from 'hono';
import { envValueSchema } from '../../runtime/control/env.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { EnvVarInfo } from '../../runtime/store/env.ts';
import { Empty, Field, FormError, PostButton, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatBytes, formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

type Var = EnvVarInfo & { value: string };

const MASK = '••••••••';

function EnvPage(props: {
  chrome: PageChrome;
  service: string;
  vars: Var[];
  revealed: Set<string>;
  editing: string | null;
  form: { name: string; value: string };
  errors: FieldErrors;
  formError?: string | null;
}) {
  const base = `/services/${enc(props.service)}/env`;
  const allRevealed = props.vars.length > 0 && props.vars.every((v) => props.revealed.has(v.name));
  return (
    <Layout title={`${props.service} · Environment`} chrome={props.chrome} service={{ name: props.service, tab: 'env' }}>
      <div class="page-head">
        <h2>Environment variables</h2>
        {props.vars.length ? (
          <a class="button" href={allRevealed ? base : `${base}?reveal=all`} id="reveal-all">
            {allRevealed ? 'Hide all' : 'Reveal all'}
          </a>
        ) : null}
      </div>
      <p class="muted small">Stored encrypted. A change applies without a redeploy: new instances get it, warm ones are replaced after their requests finish.</p>
      {props.vars.length === 0 ? (
        <Empty>No variables yet.</Empty>
      ) : (
        <table class="list env">
          <thead>
            <tr>
              <th>name</th>
              <th>value</th>
              <th class="num">size</th>
              <th>updated</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {props.vars.map((v) =>
              props.editing === v.name ? (
                <tr class="editing" data-var={v.name}>
                  <td class="mono">{v.name}</td>
                  <td colspan={4}>
                    <form method="post" action={base} class="edit-var">
                      <CsrfField token={props.chrome.csrf} />
                      <input type="hidden" name="name" value={v.name} />
                      <input type="hidden" name="mode" value="edit" />
                      <Field name="value" label={`New value of ${v.name}`} errors={props.errors}>
                        <textarea id="f-value" name="value" rows={2} spellcheck={false} autocomplete="off">
                          {props.form.name === v.name && props.errors.value !== undefined ? props.form.value : v.value}
                        </textarea>
                      </Field>
                      <input type="hidden" name="hasPreview" value="1" />
                      <label class="small">
                        <input type="checkbox" name="preview" value="on" checked={v.preview} /> previews get it
                      </label>{' '}
                      <button type="submit" class="primary small">
                        Save
                      </button>{' '}
                      <a href={base} class="small">
                        Cancel
                      </a>
                    </form>
                  </td>
                </tr>
              ) : (
                <tr data-var={v.name}>
                  <td class="mono">
                    {v.name}
                    {v.preview ? null : (
                      <span class="muted small" title="preview deployments of this service do not get it">
                        {' '}
                        not in previews
                      </span>
                    )}
                  </td>
                  <td class="mono value">{props.revealed.has(v.name) ? <code class="revealed">{v.value}</code> : <span class="masked">{MASK}</span>}</td>
                  <td class="num small">{formatBytes(v.size)}</td>
                  <td class="small">
                    {formatTime(v.updatedAt)}
                    {v.updatedBy ? <span class="muted"> by {v.updatedBy}</span> : null}
                  </td>
                  <td class="row-actions">
                    {props.revealed.has(v.name) ? <a href={base}>Hide</a> : <a href={`${base}?reveal=${enc(v.name)}`}>Reveal</a>}
                    <a href={`${base}?edit=${enc(v.name)}`}>Edit</a>
                    <PostButton action={`${base}/${enc(v.name)}/delete`} csrf={props.chrome.csrf} label="Delete" class="small danger" confirm={`Delete ${v.name}?`} />
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      )}

      <h2>Add a variable</h2>
      <form method="post" action={base} class="card add-var">
        <CsrfField token={props.chrome.csrf} />
        <FormError message={props.formError} />
        <div class="grid2">
          <Field name="name" label="Name" errors={props.editing ? undefined : props.errors} hint="Letters, digits and underscores. An existing name is replaced.">
            <input id="f-name" name="name" value={props.editing ? '' : props.form.name} spellcheck={false} autocomplete="off" />
          </Field>
          <Field name="value" id="f-value-new" label="Value" errors={props.editing ? undefined : props.errors}>
            <textarea id="f-value-new" name="value" rows={1} spellcheck={false} autocomplete="off">
              {props.editing ? '' : props.form.value}
            </textarea>
          </Field>
        </div>
        <input type="hidden" name="hasPreview" value="1" />
        <label class="small">
          <input type="checkbox" name="preview" value="on" checked /> preview deployments get it (uncheck for a production secret)
        </label>
        <button type="submit" class="primary">
          Add variable
        </button>
      </form>
    </Layout>
  );
}

export function envPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();

  const show = (c: Context<UiEnv>, service: string, opts: { status?: number; form?: { name: string; value: string }; errors?: FieldErrors; formError?: string | null; editing?: string | null } = {}) => {
    const reveal = c.req.query('reveal');
    const editing = opts.editing ?? c.req.query('edit') ?? null;
    const names = deps.env.list(service, false).map((v) => v.name);
    const revealed = new Set(reveal === 'all' ? names : reveal ? [reveal] : []);
    // values leave the store only for the variables shown in clear or edited
    const needValues = revealed.size > 0 || (editing !== null && names.includes(editing));
    const vars = deps.env.list(service, needValues).map((v) => (revealed.has(v.name) || v.name === editing ? v : { ...v, value: '' }));
    return sendPage(
      c,
      <EnvPage
        chrome={chromeFor(c)}
        service={service}
        vars={vars}
        revealed={revealed}
        editing={editing && names.includes(editing) ? editing : null}
        form={opts.form ?? { name: '', value: '' }}
        errors={opts.errors ?? {}}
        formError={opts.formError}
      />,
      opts.status ?? 200,
    );
  };

  app.get('/services/:name/env', (c) => show(c, deps.services.get(c.req.param('name')).name));

  app.post('/services/:name/env', async (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const body = await c.req.parseBody();
    const name = typeof body.name === 'string' ? body.name.trim() : '';
    const value = typeof body.value === 'string' ? body.value.replace(/\r\n?/g, '\n') : '';
    const existing = deps.env.list(service, false).some((v) => v.name === name);
    const editing = existing && body.mode === 'edit' ? name : null;
    const fail = (status: number, errors: FieldErrors, formError?: string) => show(c, service, { status, form: { name, value }, errors, formError, editing });
    if (!name) return fail(400, { name: 'name: a variable name is required' });
    const checked = envValueSchema.safeParse(value);
    if (!checked.success) return fail(400, { value: `value: ${checked.error.issues[0]!.message}` });
    try {
      // an unchecked box sends nothing: hasPreview says the form had the box
      deps.env.set(service, { [name]: value }, c.get('token').name, body.hasPreview === '1' ? { [name]: body.preview === 'on' } : undefined);
    } catch (err) {
      if (!(err instanceof CellhostError)) throw err;
      // the env control names the variable in details.field when the name is the problem
      return err.details?.field === name ? fail(err.status, { name: err.message }) : fail(err.status, { value: err.message });
    }
    return redirectWith(c, `/services/${enc(service)}/env`, `${name} ${existing ? 'updated' : 'added'}. Instances pick it up without a redeploy.`);
  });

  app.post('/services/:name/env/:key/delete', (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const key = c.req.param('key');
    try {
      deps.env.unset(service, key, c.get('token').name);
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/services/${enc(service)}/env`, err.message);
      throw err;
    }
    return redirectWith(c, `/services/${enc(service)}/env`, `${key} deleted.`);
  });

  return app;
}
