// Service > Tasks: the queue (depth by status, oldest pending age, settings), the token to send
// tasks with, the tasks by status, one task, and sending a dead one again.
import { Hono, type Context } from 'hono';
import { CellhostError } from '../../runtime/core/errors.ts';
import { TASK_STATUSES, type TaskStatus } from '../../runtime/store/tasks.ts';
import { queueSettingsPatchSchema, type QueueView, type TaskView } from '../../runtime/tasks/control.ts';
import { Empty, Field, FormError, PostButton, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatBytes, formatTime } from '../format.ts';
import { CsrfField, Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';

const TASK_CLASS: Record<string, string> = { done: 'ok', queued: 'wait', running: 'info', dead: 'bad' };

function TaskBadge(props: { status: string }) {
  return <span class={`badge badge-${TASK_CLASS[props.status] ?? 'muted'}`}>{props.status}</span>;
}

const PAGE_SIZE = 100;

function TasksPage(props: {
  chrome: PageChrome;
  service: string;
  queue: QueueView;
  tasks: TaskView[];
  status: TaskStatus | null;
  nextCursor: string | null;
  taskUrl: string;
  token: string | null;
  errors: FieldErrors;
  formError?: string | null;
}) {
  const base = `/services/${enc(props.service)}/tasks`;
  const q = props.queue;
  const filter = (s: TaskStatus | null) => (s ? `${base}?status=${s}` : base);
  return (
    <Layout title={`${props.service} · Tasks`} chrome={props.chrome} service={{ name: props.service, tab: 'tasks' }}>
      <div class="page-head">
        <h2>Task queue</h2>
      </div>
      <p class="muted small">
        A task is a request sent to <code>{props.taskUrl}</code> with the task token: it is stored and answered 202 with an id at once, then delivered to the app (the path after
        the service's name) with <code>X-Cellhost-Task-Id</code>, retried with backoff until the app answers 2xx, or dead-lettered after the last attempt.
      </p>
      <div class="cards queue-stats">
        {(['queued', 'running', 'done', 'dead'] as const).map((s) => (
          <a class="card stat" href={filter(s)} data-stat={s}>
            <div class="stat-value">{q.counts[s]}</div>
            <div class="stat-label">{s}</div>
          </a>
        ))}
        <div class="card stat" data-stat="oldest">
          <div class="stat-value">{q.oldestPendingAgeS === null ? '—' : `${q.oldestPendingAgeS} s`}</div>
          <div class="stat-label">oldest pending</div>
        </div>
      </div>

      <h2>Tasks</h2>
      <nav class="seg">
        <a href={filter(null)} aria-current={props.status === null ? 'page' : undefined}>
          all
        </a>
        {TASK_STATUSES.map((s) => (
          <a href={filter(s)} aria-current={props.status === s ? 'page' : undefined}>
            {s}
          </a>
        ))}
      </nav>
      {props.tasks.length === 0 ? (
        <Empty>No tasks{props.status ? ` ${props.status}` : ''}.</Empty>
      ) : (
        <table class="list tasks">
          <thead>
            <tr>
              <th>id</th>
              <th>status</th>
              <th class="num">attempts</th>
              <th>last answer</th>
              <th>request</th>
              <th>created</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {props.tasks.map((t) => (
              <tr data-task={t.id}>
                <td class="mono small">
                  <a href={`${base}/${enc(t.id)}`}>{t.id}</a>
                </td>
                <td>
                  <TaskBadge status={t.status} />
                </td>
                <td class="num small">
                  {t.attempts}/{t.maxAttempts}
                </td>
                <td class="small">{t.lastStatusCode ?? (t.lastError ? 'no answer' : '—')}</td>
                <td class="mono small">
                  {t.method} {t.path}
                </td>
                <td class="small">{formatTime(t.createdAt)}</td>
                <td class="row-actions">{t.status === 'dead' ? <PostButton action={`${base}/${enc(t.id)}/retry`} csrf={props.chrome.csrf} label="Retry" class="small" /> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.nextCursor ? (
        <p>
          <a href={`${filter(props.status)}${props.status ? '&' : '?'}cursor=${props.nextCursor}`}>Older tasks</a>
        </p>
      ) : null}

      <h2>Settings</h2>
      <form method="post" action={`${base}/settings`} class="card queue-settings">
        <CsrfField token={props.chrome.csrf} />
        <FormError message={props.formError} />
        <div class="grid2">
          <Field name="workers" label="Workers (deliveries at once)" errors={props.errors}>
            <input id="f-workers" name="workers" type="number" min="1" max="100" value={String(q.workers)} />
          </Field>
          <Field name="maxAttempts" label="Attempts before dead letter" errors={props.errors}>
            <input id="f-maxAttempts" name="maxAttempts" type="number" min="1" max="100" value={String(q.maxAttempts)} />
          </Field>
          <Field name="minBackoffMs" label="First backoff (ms), doubling" errors={props.errors}>
            <input id="f-minBackoffMs" name="minBackoffMs" type="number" min="100" value={String(q.minBackoffMs)} />
          </Field>
          <Field name="maxBackoffMs" label="Longest backoff (ms)" errors={props.errors}>
            <input id="f-maxBackoffMs" name="maxBackoffMs" type="number" min="100" value={String(q.maxBackoffMs)} />
          </Field>
        </div>
        <button type="submit" class="primary">
          Save
        </button>
      </form>

      <h2>Task token</h2>
      <p class="muted small">
        Sent with each task as <code>Authorization: Bearer …</code> (or <code>X-Cellhost-Task-Token</code>, which leaves your own Authorization header for the app).
      </p>
      <p>
        {props.token ? (
          <code class="revealed" id="task-token">
            {props.token}
          </code>
        ) : (
          <a href={`${base}?token=1`}>Reveal the token</a>
        )}{' '}
        <PostButton action={`${base}/token`} csrf={props.chrome.csrf} label="New token" class="small" confirm="Make a new token? The old one stops working at once." />
      </p>
    </Layout>
  );
}

function TaskPage(props: { chrome: PageChrome; service: string; task: TaskView }) {
  const t = props.task;
  const rows: [string, string][] = [
    ['request', `${t.method} ${t.path} (${formatBytes(t.bodyBytes)})`],
    ['attempts', `${t.attempts} of ${t.maxAttempts}`],
    ['last status', t.lastStatusCode === null ? '—' : String(t.lastStatusCode)],
    ['last error', t.lastError ?? '—'],
    ['created', formatTime(t.createdAt)],
    ['last attempt', formatTime(t.lastAttemptAt)],
    ['next attempt', formatTime(t.nextAttemptAt)],
    ['finished', formatTime(t.finishedAt)],
  ];
  return (
    <Layout title={`${props.service} · task ${t.id}`} chrome={props.chrome} service={{ name: props.service, tab: 'tasks' }}>
      <div class="page-head">
        <h2>
          <a href={`/services/${enc(props.service)}/tasks`}>Tasks</a> / <span class="mono">{t.id}</span> <TaskBadge status={t.status} />
        </h2>
        {t.status === 'dead' ? <PostButton action={`/services/${enc(props.service)}/tasks/${enc(t.id)}/retry`} csrf={props.chrome.csrf} label="Retry" class="small" /> : null}
      </div>
      <table class="list kv">
        <tbody>
          {rows.map(([k, v]) => (
            <tr>
              <th>{k}</th>
              <td class="mono small">{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Layout>
  );
}

export function taskPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const tasks = () => {
    if (!deps.tasks) throw new CellhostError('ERR_NOT_FOUND', 'Task queues are not available on this server.');
    return deps.tasks;
  };
  const serviceOf = (c: Context<UiEnv>) => deps.services.get(c.req.param('name')!);
  const show = (c: Context<UiEnv>, name: string, opts: { status?: number; errors?: FieldErrors; formError?: string | null } = {}) => {
    const status = c.req.query('status');
    const filter = TASK_STATUSES.includes(status as TaskStatus) ? (status as TaskStatus) : null;
    const cursor = c.req.query('cursor');
    const page = tasks().list(name, filter, PAGE_SIZE, cursor && /^\d+$/.test(cursor) ? cursor : undefined);
    // tasks go to the platform's own host: the service's URL without the service's label
    const url = new URL(deps.services.get(name).url);
    url.hostname = url.hostname.slice(name.length + 1);
    return sendPage(
      c,
      <TasksPage
        chrome={chromeFor(c)}
        service={name}
        queue={tasks().queue(name)}
        tasks={page.tasks}
        status={filter}
        nextCursor={page.nextCursor}
        taskUrl={`${url.origin}/tasks/${name}/<path>`}
        token={c.req.query('token') ? tasks().token(name) : null}
        errors={opts.errors ?? {}}
        formError={opts.formError}
      />,
      opts.status ?? 200,
    );
  };

  app.get('/services/:name/tasks', (c) => show(c, serviceOf(c).name));

  app.get('/services/:name/tasks/:id', (c) => {
    const service = serviceOf(c).name;
    const task = tasks().get(c.req.param('id'));
    if (task.service !== service) throw new CellhostError('ERR_TASK_NOT_FOUND', `service ${service} has no task ${task.id}`);
    return sendPage(c, <TaskPage chrome={chromeFor(c)} service={service} task={task} />);
  });

  app.post('/services/:name/tasks/:id/retry', (c) => {
    const service = serviceOf(c).name;
    const id = c.req.param('id');
    if (tasks().get(id).service !== service) throw new CellhostError('ERR_TASK_NOT_FOUND', `service ${service} has no task ${id}`);
    try {
      tasks().retry(id);
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/services/${enc(service)}/tasks/${enc(id)}`, err.message);
      throw err;
    }
    return redirectWith(c, `/services/${enc(service)}/tasks/${enc(id)}`, `Task ${id} queued again.`);
  });

  app.post('/services/:name/tasks/settings', async (c) => {
    const service = serviceOf(c).name;
    const body = await c.req.parseBody();
    const patch: Record<string, number> = {};
    for (const k of ['workers', 'maxAttempts', 'minBackoffMs', 'maxBackoffMs']) {
      const v = typeof body[k] === 'string' ? (body[k] as string).trim() : '';
      if (v) patch[k] = Number(v);
    }
    const parsed = queueSettingsPatchSchema.safeParse(patch);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0] ?? '');
      return show(c, service, { status: 400, errors: { [field]: `${field}: ${issue.message}` } });
    }
    try {
      tasks().setQueue(service, parsed.data);
    } catch (err) {
      if (!(err instanceof CellhostError)) throw err;
      const field = typeof err.details?.field === 'string' ? err.details.field : '';
      return show(c, service, { status: err.status, errors: field ? { [field]: err.message } : {}, formError: field ? null : err.message });
    }
    return redirectWith(c, `/services/${enc(service)}/tasks`, 'Queue settings saved.');
  });

  app.post('/services/:name/tasks/token', (c) => {
    const service = serviceOf(c).name;
    tasks().rotateToken(service);
    return redirectWith(c, `/services/${enc(service)}/tasks?token=1`, 'New task token made: the old one no longer works.');
  });

  return app;
}
