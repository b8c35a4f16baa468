// Service > Settings: memory (with the CPU it buys), port, scaling, timeouts, commands; and
// deleting the service, which asks for its name to be typed.
import { Hono, type Context } from 'hono';
import { CellhostError } from '../../runtime/core/errors.ts';
import { MEMORY_MAX_MB, MEMORY_MIN_MB } from '../../runtime/core/names.ts';
import type { Service } from '../../runtime/store/services.ts';
import { Field, FormError, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatCpuCap, MB_PER_CORE } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';
import { parseSettingsForm, settingsValues, type SettingsValues } from '../settings-form.ts';

function SettingsPage(props: { chrome: PageChrome; service: Service; values: SettingsValues; errors: FieldErrors; formError?: string | null; deleteError?: string }) {
  const v = props.values;
  const e = props.errors;
  const name = props.service.name;
  const base = `/services/${enc(name)}`;
  const memory = Number(v.memoryMb) || 0;
  return (
    <Layout title={`${name} · Settings`} chrome={props.chrome} service={{ name, tab: 'settings' }}>
      <form method="post" action={`${base}/settings`} class="card settings-form" novalidate>
        <CsrfField token={props.chrome.csrf} />
        <FormError message={props.formError} />
        {Object.keys(e).length ? (
          <div class="form-error" role="alert">
            Nothing was changed: fix the field{Object.keys(e).length > 1 ? 's' : ''} marked below.
          </div>
        ) : null}
        <div class="grid2">
          <Field
            name="memoryMb"
            label="Memory size (MB)"
            errors={e}
            hint={
              <>
                CPU cap <output id="cpu-cap" for="f-memoryMb">{memory ? formatCpuCap(memory) : '—'}</output> of a core ({MEMORY_MIN_MB}–{MEMORY_MAX_MB} MB; {MB_PER_CORE} MB buys a full core).
              </>
            }
          >
            <input id="f-memoryMb" name="memoryMb" type="number" min={MEMORY_MIN_MB} max={MEMORY_MAX_MB} step="1" value={v.memoryMb} inputmode="numeric" data-cpu-output="cpu-cap" data-mb-per-core={MB_PER_CORE} />
          </Field>
          <Field name="port" label="Serving port" errors={e} hint="The port the start command listens on ($PORT says the same).">
            <input id="f-port" name="port" type="number" min="1" max="65535" value={v.port} inputmode="numeric" />
          </Field>
        </div>
        <div class="grid2">
          <Field name="minInstances" label="Min instances" errors={e} hint="0 scales to zero; 1 or more stay warm (billed while they run).">
            <input id="f-minInstances" name="minInstances" type="number" min="0" max="100" value={v.minInstances} inputmode="numeric" />
          </Field>
          <Field name="maxInstances" label="Max instances" errors={e}>
            <input id="f-maxInstances" name="maxInstances" type="number" min="1" max="100" value={v.maxInstances} inputmode="numeric" />
          </Field>
        </div>
        <div class="grid2">
          <Field name="concurrency" label="Requests per instance" errors={e} hint="More requests than this on every instance start another one.">
            <input id="f-concurrency" name="concurrency" type="number" min="1" max="10000" value={v.concurrency} inputmode="numeric" />
          </Field>
          <Field name="plan" label="Plan" errors={e} hint="The build's CPU, memory and time limits, and the images kept for rollback.">
            <select id="f-plan" name="plan">
              {['hobby', 'pro'].map((p) => (
                <option value={p} selected={p === v.plan}>
                  {p}
                </option>
              ))}
            </select>
          </Field>
        </div>
        <div class="grid2">
          <Field name="idleTimeoutS" label="Idle timeout" errors={e} hint="How long an unused instance stays warm: 30s, 5m, 1h30m.">
            <input id="f-idleTimeoutS" name="idleTimeoutS" value={v.idleTimeoutS} spellcheck={false} />
          </Field>
          <Field name="requestTimeoutS" label="Request timeout" errors={e} hint="The longest a request may take: 30s, 15m.">
            <input id="f-requestTimeoutS" name="requestTimeoutS" value={v.requestTimeoutS} spellcheck={false} />
          </Field>
        </div>
        <Field name="buildCommand" label="Build command" errors={e} hint="Used by the next deploy. Empty: the runtime's default.">
          <textarea id="f-buildCommand" name="buildCommand" rows={3} spellcheck={false}>
            {v.buildCommand}
          </textarea>
        </Field>
        <Field name="startCommand" label="Start command" errors={e} hint="Empty: the runtime's default.">
          <input id="f-startCommand" name="startCommand" value={v.startCommand} spellcheck={false} />
        </Field>
        <div class="grid2">
          <Field name="healthPath" label="Health check path" errors={e} hint="Empty: an instance is ready when its port accepts a connection.">
            <input id="f-healthPath" name="healthPath" value={v.healthPath} spellcheck={false} placeholder="/healthz" />
          </Field>
          <Field name="rootDir" label="Root directory" errors={e} hint="The app's directory inside the source, for the next deploy. Empty: the top.">
            <input id="f-rootDir" name="rootDir" value={v.rootDir} spellcheck={false} />
          </Field>
        </div>
        <p class="muted small">A new memory size, port, start command or health path replaces the running instances after their requests finish; scaling applies at once.</p>
        <div class="actions">
          <button type="submit" class="primary" id="save-settings">
            Save settings
          </button>
        </div>
      </form>

      <h2>Delete this service</h2>
      <form method="post" action={`${base}/delete`} class="card danger-zone" id="delete-form" novalidate>
        <CsrfField token={props.chrome.csrf} />
        <p>
          Stops its instances and removes its images, deployments, variables and logs. This cannot be undone. Type <strong class="mono">{name}</strong> to confirm.
        </p>
        <Field name="confirm" label="Service name" errors={props.deleteError ? { confirm: props.deleteError } : undefined}>
          <input id="f-confirm" name="confirm" autocomplete="off" spellcheck={false} data-confirm-name={name} />
        </Field>
        <button type="submit" class="danger" id="delete-button" data-needs-confirm="f-confirm">
          Delete {name}
        </button>
      </form>
    </Layout>
  );
}

export function settingsPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const show = (c: Context<UiEnv>, service: Service, opts: { status?: number; values?: SettingsValues; errors?: FieldErrors; formError?: string | null; deleteError?: string } = {}) =>
    sendPage(
      c,
      <SettingsPage chrome={chromeFor(c)} service={service} values={opts.values ?? settingsValues(service)} errors={opts.errors ?? {}} formError={opts.formError} deleteError={opts.deleteError} />,
      opts.status ?? 200,
    );

  app.get('/services/:name/settings', (c) => show(c, deps.services.get(c.req.param('name'))));

  app.post('/services/:name/settings', async (c) => {
    const service = deps.services.get(c.req.param('name'));
    const parsed = parseSettingsForm(await c.req.parseBody(), service);
    if (!parsed.patch) return show(c, service, { status: 400, values: parsed.values, errors: parsed.errors });
    const changed = Object.keys(parsed.patch);
    if (!changed.length) return redirectWith(c, `/services/${enc(service.name)}/settings`, 'Nothing changed.');
    try {
      deps.services.update(service.name, parsed.patch);
    } catch (err) {
      if (!(err instanceof CellhostError)) throw err;
      const field = typeof err.details?.field === 'string' ? err.details.field : undefined;
      return field ? show(c, service, { status: err.status, values: parsed.values, errors: { [field]: err.message } }) : show(c, service, { status: err.status, values: parsed.values, formError: err.message });
    }
    return redirectWith(c, `/services/${enc(service.name)}/settings`, `Saved: ${changed.join(', ')}.`);
  });

  app.post('/services/:name/delete', async (c) => {
    const service = deps.services.get(c.req.param('name'));
    const body = await c.req.parseBody();
    const typed = typeof body.confirm === 'string' ? body.confirm.trim() : '';
    if (typed !== service.name) {
      const deleteError = typed ? `"${typed}" is not the service's name: type ${service.name} to delete it` : `type ${service.name} to delete it`;
      return show(c, service, { status: 400, deleteError });
    }
    await deps.services.remove(service.name);
    return redirectWith(c, '/services', `Service ${service.name} deleted.`);
  });

  return app;
}
