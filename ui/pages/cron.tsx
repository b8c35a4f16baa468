// Service > Cron: the jobs with their next run, last run and last failure; add, run now, pause,
// delete; a job's history; the secret the runs carry.
import { Hono, type Context } from 'hono';
import { cronJobCreateSchema, CRON_METHODS, type CronJobView } from '../../runtime/cron/control.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { CronRun } from '../../runtime/store/cron.ts';
import { Empty, Field, FormError, PostButton, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatDuration, formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

const RUN_CLASS: Record<string, string> = { ok: 'ok', running: 'info', failed: 'bad', interrupted: 'bad', missed: 'wait', skipped: 'muted' };

export function RunBadge(props: { run: CronRun | null }) {
  if (!props.run) return <span class="muted">—</span>;
  const r = props.run;
  return (
    <span class={`badge badge-${RUN_CLASS[r.status] ?? 'muted'}`} title={r.error ?? undefined}>
      {r.status}
      {r.statusCode ? ` ${r.statusCode}` : ''}
    </span>
  );
}

interface JobForm {
  name: string;
  schedule: string;
  timeZone: string;
  method: string;
  path: string;
  body: string;
  overlap: string;
}

const EMPTY_FORM: JobForm = { name: '', schedule: '', timeZone: 'UTC', method: 'GET', path: '/', body: '', overlap: 'skip' };

function CronPage(props: { chrome: PageChrome; service: string; jobs: CronJobView[]; secret: string | null; form: JobForm; errors: FieldErrors; formError?: string | null }) {
  const base = `/services/${enc(props.service)}/cron`;
  const f = props.form;
  return (
    <Layout title={`${props.service} · Cron`} chrome={props.chrome} service={{ name: props.service, tab: 'cron' }}>
      <div class="page-head">
        <h2>Cron jobs</h2>
      </div>
      <p class="muted small">
        Each run is an HTTP request to the app through the router (it cold-starts, is metered and logged like any request), with <code>X-Cellhost-Cron: job</code> and{' '}
        <code>Authorization: Bearer $CELLHOST_CRON_SECRET</code>. A scheduled time runs at most once, even across a restart.
      </p>
      {props.jobs.length === 0 ? (
        <Empty>No cron jobs yet.</Empty>
      ) : (
        <table class="list cron">
          <thead>
            <tr>
              <th>job</th>
              <th>schedule</th>
              <th>request</th>
              <th>next run</th>
              <th>last run</th>
              <th>last failure</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {props.jobs.map((j) => (
              <tr data-job={j.name}>
                <td class="mono">
                  <a href={`${base}/${enc(j.name)}`}>{j.name}</a>
                </td>
                <td class="mono small">
                  {j.schedule} <span class="muted">{j.timeZone}</span>
                  {j.overlap === 'allow' ? <span class="muted"> · overlap</span> : null}
                </td>
                <td class="mono small">
                  {j.method} {j.path}
                </td>
                <td class="small">{j.enabled ? formatTime(j.nextRunAt) : <span class="badge badge-muted">paused</span>}</td>
                <td class="small">
                  <RunBadge run={j.lastRun} /> {j.lastRun ? formatTime(j.lastRun.scheduledAt ?? j.lastRun.startedAt) : null}
                </td>
                <td class="small last-failure">
                  {j.lastFailure ? (
                    <>
                      <RunBadge run={j.lastFailure} /> {formatTime(j.lastFailure.scheduledAt ?? j.lastFailure.startedAt)}
                      {j.lastFailure.error ? <div class="muted">{j.lastFailure.error}</div> : null}
                    </>
                  ) : (
                    <span class="muted">none</span>
                  )}
                </td>
                <td class="row-actions">
                  <PostButton action={`${base}/${enc(j.name)}/run`} csrf={props.chrome.csrf} label="Run now" class="small" />
                  <PostButton action={`${base}/${enc(j.name)}/toggle`} csrf={props.chrome.csrf} label={j.enabled ? 'Pause' : 'Resume'} class="small" />
                  <PostButton action={`${base}/${enc(j.name)}/delete`} csrf={props.chrome.csrf} label="Delete" class="small danger" confirm={`Delete the cron job ${j.name} and its history?`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Add a job</h2>
      <form method="post" action={base} class="card add-cron">
        <CsrfField token={props.chrome.csrf} />
        <FormError message={props.formError} />
        <div class="grid2">
          <Field name="name" label="Name" errors={props.errors} hint="Lowercase letters, digits and hyphens.">
            <input id="f-name" name="name" value={f.name} spellcheck={false} autocomplete="off" />
          </Field>
          <Field name="schedule" label="Schedule" errors={props.errors} hint={<>5 fields (min hour day month weekday), 6 with seconds first, or @hourly, @daily.</>}>
            <input id="f-schedule" name="schedule" value={f.schedule} placeholder="0 3 * * *" spellcheck={false} autocomplete="off" />
          </Field>
          <Field name="timeZone" label="Time zone" errors={props.errors}>
            <input id="f-timeZone" name="timeZone" value={f.timeZone} spellcheck={false} />
          </Field>
          <Field name="method" label="Method" errors={props.errors}>
            <select id="f-method" name="method">
              {CRON_METHODS.map((m) => (
                <option value={m} selected={m === f.method}>
                  {m}
                </option>
              ))}
            </select>
          </Field>
          <Field name="path" label="Path" errors={props.errors}>
            <input id="f-path" name="path" value={f.path} spellcheck={false} />
          </Field>
          <Field name="overlap" label="When the previous run still goes" errors={props.errors}>
            <select id="f-overlap" name="overlap">
              <option value="skip" selected={f.overlap === 'skip'}>
                skip this time
              </option>
              <option value="allow" selected={f.overlap === 'allow'}>
                run both
              </option>
            </select>
          </Field>
        </div>
        <Field name="body" label="Body (JSON, optional; not for GET)" errors={props.errors}>
          <textarea id="f-body" name="body" rows={2} spellcheck={false}>
            {f.body}
          </textarea>
        </Field>
        <button type="submit" class="primary">
          Add job
        </button>
      </form>

      <h2>Cron secret</h2>
      <p class="muted small">
        The app has it as <code>CELLHOST_CRON_SECRET</code>: a request whose <code>Authorization</code> is <code>Bearer</code> and this secret comes from cellhost's cron.
      </p>
      <p>
        {props.secret ? (
          <code class="revealed" id="cron-secret">
            {props.secret}
          </code>
        ) : (
          <a href={`${base}?secret=1`}>Reveal the secret</a>
        )}{' '}
        <PostButton action={`${base}/secret`} csrf={props.chrome.csrf} label="New secret" class="small" confirm="Make a new secret? The old one stops working; instances are replaced to get the new one." />
      </p>
    </Layout>
  );
}

function JobPage(props: { chrome: PageChrome; service: string; job: CronJobView; runs: CronRun[] }) {
  const j = props.job;
  return (
    <Layout title={`${props.service} · cron ${j.name}`} chrome={props.chrome} service={{ name: props.service, tab: 'cron' }}>
      <div class="page-head">
        <h2>
          <a href={`/services/${enc(props.service)}/cron`}>Cron</a> / {j.name}
        </h2>
        <PostButton action={`/services/${enc(props.service)}/cron/${enc(j.name)}/run`} csrf={props.chrome.csrf} label="Run now" class="small" />
      </div>
      <p class="mono small">
        {j.method} {j.path} on "{j.schedule}" ({j.timeZone}) · next {j.enabled ? formatTime(j.nextRunAt) : 'paused'}
      </p>
      {props.runs.length === 0 ? (
        <Empty>No runs yet.</Empty>
      ) : (
        <table class="list runs">
          <thead>
            <tr>
              <th>scheduled</th>
              <th>started</th>
              <th>trigger</th>
              <th>status</th>
              <th class="num">duration</th>
              <th>answer</th>
            </tr>
          </thead>
          <tbody>
            {props.runs.map((r) => (
              <tr data-run={String(r.id)}>
                <td class="small">{r.scheduledAt === null ? 'by hand' : formatTime(r.scheduledAt)}</td>
                <td class="small">{formatTime(r.startedAt)}</td>
                <td class="small">{r.trigger.replace('_', '-')}</td>
                <td>
                  <RunBadge run={r} />
                </td>
                <td class="num small">{r.durationMs === null ? '—' : formatDuration(r.durationMs)}</td>
                <td class="mono small">
                  {r.error ? <div>{r.error}</div> : null}
                  {r.bodyHead ? <code>{r.bodyHead}</code> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

export function cronPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const cron = () => {
    if (!deps.cron) throw new CellhostError('ERR_NOT_FOUND', 'Cron jobs are not available on this server.');
    return deps.cron;
  };
  const show = (c: Context<UiEnv>, service: string, opts: { status?: number; form?: JobForm; errors?: FieldErrors; formError?: string | null } = {}) =>
    sendPage(
      c,
      <CronPage
        chrome={chromeFor(c)}
        service={service}
        jobs={cron().list(service)}
        secret={c.req.query('secret') ? cron().secret(service) : null}
        form={opts.form ?? EMPTY_FORM}
        errors={opts.errors ?? {}}
        formError={opts.formError}
      />,
      opts.status ?? 200,
    );
  const serviceOf = (c: Context<UiEnv>) => deps.services.get(c.req.param('name')!).name;

  app.get('/services/:name/cron', (c) => show(c, serviceOf(c)));

  app.post('/services/:name/cron', async (c) => {
    const service = serviceOf(c);
    const body = await c.req.parseBody();
    const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string).trim() : '');
    const form: JobForm = { name: text('name'), schedule: text('schedule'), timeZone: text('timeZone') || 'UTC', method: text('method') || 'GET', path: text('path') || '/', body: text('body'), overlap: text('overlap') || 'skip' };
    const parsed = cronJobCreateSchema.safeParse({ ...form, body: form.body || null, overlap: form.overlap });
    const fail = (status: number, errors: FieldErrors, formError?: string) => show(c, service, { status, form, errors, formError });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0] ?? '');
      return fail(400, field ? { [field]: `${field}: ${issue.message}` } : {}, field ? undefined : issue.message);
    }
    try {
      cron().create(service, parsed.data);
    } catch (err) {
      if (!(err instanceof CellhostError)) throw err;
      const field = typeof err.details?.field === 'string' ? err.details.field : err.code === 'ERR_CRON_EXISTS' ? 'name' : '';
      return field ? fail(err.status, { [field]: err.message }) : fail(err.status, {}, err.message);
    }
    return redirectWith(c, `/services/${enc(service)}/cron`, `Cron job ${form.name} added.`);
  });

  app.get('/services/:name/cron/:job', (c) => {
    const service = serviceOf(c);
    const job = cron().get(service, c.req.param('job'));
    return sendPage(c, <JobPage chrome={chromeFor(c)} service={service} job={job} runs={cron().runs(service, job.name, 200)} />);
  });

  app.post('/services/:name/cron/:job/run', async (c) => {
    const service = serviceOf(c);
    const job = c.req.param('job');
    const run = await cron().run(service, job);
    const how = `${run.status}${run.statusCode ? ` (${run.statusCode})` : ''} in ${formatDuration(run.durationMs ?? 0)}${run.error ? `: ${run.error}` : ''}`;
    return redirectWith(c, `/services/${enc(service)}/cron/${enc(job)}`, `Ran ${job}: ${how}.`);
  });

  app.post('/services/:name/cron/:job/toggle', (c) => {
    const service = serviceOf(c);
    const job = cron().get(service, c.req.param('job'));
    cron().update(service, job.name, { enabled: !job.enabled });
    return redirectWith(c, `/services/${enc(service)}/cron`, `${job.name} ${job.enabled ? 'paused' : 'resumed: it runs from its next time'}.`);
  });

  app.post('/services/:name/cron/:job/delete', (c) => {
    const service = serviceOf(c);
    const job = c.req.param('job');
    cron().remove(service, job);
    return redirectWith(c, `/services/${enc(service)}/cron`, `Cron job ${job} deleted.`);
  });

  app.post('/services/:name/cron/secret', (c) => {
    const service = serviceOf(c);
    cron().rotateSecret(service);
    return redirectWith(c, `/services/${enc(service)}/cron?secret=1`, 'New cron secret made: instances are replaced to get it.');
  });

  return app;
}
