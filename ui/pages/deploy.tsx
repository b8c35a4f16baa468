// Manual Deploy, the seed's form: runtime, build command, start command, serving port, memory
// (with the CPU cap it buys), env vars, and the source as an upload or a git URL. Deploy
// creates or updates the service, sets the variables, queues the build and shows its page.
import fs from 'node:fs';
import { Hono, type Context } from 'hono';
import { detectArchiveKind, type SourceInput } from '../../builder/sources/index.ts';
import { saveUpload } from '../../runtime/api/upload.ts';
import { RUNTIMES, MEMORY_MAX_MB, MEMORY_MIN_MB } from '../../runtime/core/names.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { Service } from '../../runtime/store/services.ts';
import { Field, FormError, type FieldErrors } from '../components.tsx';
import { deployDefaults, parseDeployForm, type DeployValues } from '../deploy-form.ts';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatCpuCap, MB_PER_CORE } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

const FIELDS_ON_FORM = new Set(['name', 'runtime', 'buildCommand', 'startCommand', 'port', 'memoryMb', 'env', 'archive', 'git', 'ref']);

function DeployPage(props: { chrome: PageChrome; values: DeployValues; errors: FieldErrors; formError?: string | null; existing?: Service; services: string[]; maxUploadMb: number }) {
  const v = props.values;
  const e = props.errors;
  const memory = Number(v.memoryMb) || 0;
  return (
    <Layout title="Manual Deploy" chrome={props.chrome} nav={props.existing ? null : 'deploy'} service={props.existing ? { name: props.existing.name, tab: 'deploy' } : undefined}>
      {props.existing ? null : <h1>Manual Deploy</h1>}
      <form method="post" action="/deploy" enctype="multipart/form-data" class="card deploy-form" novalidate>
        <CsrfField token={props.chrome.csrf} />
        <FormError message={props.formError} />
        {Object.keys(e).length ? (
          <div class="form-error" role="alert">
            The deployment was not started: fix the field{Object.keys(e).length > 1 ? 's' : ''} marked below.
          </div>
        ) : null}
        <div class="grid2">
          <Field name="name" label="Service name" errors={e} hint={props.existing ? 'Deploying a new version of this service.' : 'Lowercase letters, digits and hyphens. An existing name deploys a new version of it.'}>
            <input id="f-name" name="name" value={v.name} list="service-names" autocomplete="off" spellcheck={false} required />
            <datalist id="service-names">
              {props.services.map((s) => (
                <option value={s} />
              ))}
            </datalist>
          </Field>
          <Field name="runtime" label="Runtime" errors={e}>
            <select id="f-runtime" name="runtime">
              {RUNTIMES.map((r) => (
                <option value={r} selected={r === v.runtime}>
                  {RUNTIME_LABELS[r]}
                </option>
              ))}
            </select>
          </Field>
        </div>
        <Field name="buildCommand" label="Build command" errors={e} hint="Installs dependencies; several lines run in order. Empty: the app manifest's (cellhost.toml), else the runtime's default (npm install, pip install -r requirements.txt, go build, cargo build).">
          <textarea id="f-buildCommand" name="buildCommand" rows={4} spellcheck={false} placeholder="pip install -r requirements.txt">
            {v.buildCommand}
          </textarea>
        </Field>
        <Field name="startCommand" label="Start command" errors={e} hint="Starts the server; it must listen on the serving port ($PORT is set too). Empty: the app manifest's, else the runtime's default.">
          <input id="f-startCommand" name="startCommand" value={v.startCommand} spellcheck={false} placeholder="gunicorn -w 1 -b :8080 app:app" />
        </Field>
        <div class="grid2">
          <Field name="port" label="Serving port" errors={e} hint="The port the start command listens on.">
            <input id="f-port" name="port" type="number" min="1" max="65535" value={v.port} inputmode="numeric" />
          </Field>
          <Field
            name="memoryMb"
            label="Memory size (MB)"
            errors={e}
            hint={
              <>
                CPU cap <output id="cpu-cap" for="f-memoryMb">{memory ? formatCpuCap(memory) : '—'}</output> of a core ({MEMORY_MIN_MB}–{MEMORY_MAX_MB} MB; {MB_PER_CORE} MB buys a full
                core).
              </>
            }
          >
            <input id="f-memoryMb" name="memoryMb" type="number" min={MEMORY_MIN_MB} max={MEMORY_MAX_MB} step="1" value={v.memoryMb} inputmode="numeric" data-cpu-output="cpu-cap" data-mb-per-core={MB_PER_CORE} />
          </Field>
        </div>
        <Field name="env" label="Environment variables" errors={e} hint={props.existing ? 'KEY=VALUE, one per line. Added to the service\'s variables; the others are kept (edit them on the Environment page).' : 'KEY=VALUE, one per line.'}>
          <textarea id="f-env" name="env" rows={3} spellcheck={false} placeholder="DATABASE_URL=postgres://…" autocomplete="off">
            {v.env}
          </textarea>
        </Field>
        <fieldset class="source">
          <legend>Source</legend>
          <Field name="archive" label="Upload an archive" errors={e} hint={`A .tar.gz or .zip of the app's directory, at most ${props.maxUploadMb} MB.`}>
            <input id="f-archive" name="archive" type="file" accept=".tar.gz,.tgz,.zip,application/gzip,application/zip" />
          </Field>
          <p class="or">or</p>
          <div class="grid2">
            <Field name="git" label="Git URL" errors={e}>
              <input id="f-git" name="git" value={v.git} spellcheck={false} placeholder="https://github.com/you/app.git" />
            </Field>
            <Field name="ref" label="Branch, tag or commit" errors={e} hint="Empty: the default branch.">
              <input id="f-ref" name="ref" value={v.ref} spellcheck={false} placeholder="main" />
            </Field>
          </div>
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary big" id="deploy-button">
            Deploy
          </button>
        </div>
      </form>
    </Layout>
  );
}

const RUNTIME_LABELS: Record<string, string> = { python: 'Python', node: 'Node.js', go: 'Go', rust: 'Rust' };

function showDeploy(c: Context<UiEnv>, deps: UiDeps, status: number, values: DeployValues, errors: FieldErrors, formError?: string | null) {
  const existing = values.name ? deps.store.services.get(values.name.trim()) : undefined;
  const names = deps.services.list().map((s) => s.name);
  const maxUploadMb = Math.round(deps.maxUploadBytes / 1024 / 1024);
  return sendPage(c, <DeployPage chrome={chromeFor(c)} values={values} errors={errors} formError={formError} existing={existing} services={names} maxUploadMb={maxUploadMb} />, status);
}

/** the upload went past the limit: the body is unread, so the form comes back empty with the reason */
export function sendDeployTooLarge(c: Context<UiEnv>, deps: UiDeps): Promise<Response> {
  const maxUploadMb = Math.round(deps.maxUploadBytes / 1024 / 1024);
  // the rest of the body is never read: the connection cannot be reused for another request
  c.header('connection', 'close');
  return showDeploy(c, deps, 413, deployDefaults(), { archive: `source: the upload is larger than the limit of ${maxUploadMb} MB` });
}

export function deployPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const show = (c: Context<UiEnv>, status: number, values: DeployValues, errors: FieldErrors, formError?: string | null) => showDeploy(c, deps, status, values, errors, formError);

  app.get('/deploy', (c) => {
    const name = c.req.query('service');
    const service = name ? deps.services.get(name) : undefined;
    return show(c, 200, deployDefaults(service), {});
  });

  // the app limits the body size before this (see sendDeployTooLarge)
  app.post(
    '/deploy',
    async (c) => {
      const form = await c.req.parseBody();
      const parsed = parseDeployForm(form, (n) => deps.store.services.get(n));
      if (!parsed.plan) return show(c, 400, parsed.values, parsed.errors);
      const plan = parsed.plan;

      let source: SourceInput;
      let uploadFile: string | null = null;
      if (plan.source.kind === 'upload') {
        try {
          const upload = await saveUpload(plan.source.file.stream(), deps.uploadDir, deps.maxUploadBytes);
          uploadFile = upload.file;
          const kind = detectArchiveKind(plan.source.file.type || undefined, upload.head);
          if (!kind) {
            fs.rmSync(upload.file, { force: true });
            return show(c, 415, parsed.values, { archive: 'source: the file is neither a tar.gz nor a zip archive' });
          }
          source = { kind, file: upload.file };
        } catch (err) {
          if (err instanceof CellhostError) return show(c, err.status, parsed.values, { archive: `source: ${err.message}` });
          throw err;
        }
      } else {
        source = { kind: 'git', url: plan.source.url, ref: plan.source.ref };
      }

      // create or update, then set the variables; if that fails, undo the service change so a
      // rejected form leaves nothing half done
      const before = deps.store.services.get(plan.name);
      let changed: 'created' | 'updated' | null = null;
      let step: 'service' | 'env' | 'deployment' = 'service';
      try {
        if (plan.create) {
          deps.services.create(plan.create);
          changed = 'created';
        } else if (plan.patch && before) {
          deps.services.update(plan.name, plan.patch);
          changed = 'updated';
        }
        step = 'env';
        if (Object.keys(plan.env).length) deps.env.set(plan.name, plan.env, c.get('token').name);
        step = 'deployment';
        const label = source.kind === 'git' ? `git:${source.url}${source.ref ? '#' + source.ref : ''}` : `upload:${source.kind}`;
        const dep = deps.deployments.create(plan.name, source, label);
        uploadFile = null; // the build owns it now
        return redirectWith(c, `/deployments/${enc(dep.id)}`, `Deployment ${dep.id} of ${plan.name} queued.`);
      } catch (err) {
        if (!(err instanceof CellhostError)) throw err;
        if (changed === 'created') await deps.services.remove(plan.name).catch(() => {});
        if (changed === 'updated' && before) deps.services.restore(plan.name, before);
        const field = typeof err.details?.field === 'string' ? err.details.field : undefined;
        const onForm = step === 'env' ? 'env' : field && FIELDS_ON_FORM.has(field) ? field : undefined;
        return onForm ? show(c, err.status, parsed.values, { [onForm]: err.message }) : show(c, err.status, parsed.values, {}, err.message);
      } finally {
        if (uploadFile) fs.rmSync(uploadFile, { force: true });
      }
    },
  );

  return app;
}
