// Service > Observability: charts of the metrics over 1 h / 24 h / 7 d, the runtime log with
// search (text, time range, stream) and a live tail, and the platform's events.
import { Hono } from 'hono';
import { parseTime } from '../../runtime/core/time-range.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { LogEntry, LogStream } from '../../runtime/store/logs.ts';
import { stripAnsi } from '../ansi.ts';
import { LineChart } from '../chart.tsx';
import { Empty, Field, type FieldErrors } from '../components.tsx';
import { METRICS_WINDOWS, type MetricsWindow, type ServiceMetrics, type UiDeps, type UiEnv } from '../deps.ts';
import { formatTime } from '../format.ts';
import { Layout, type PageChrome } from '../layout.tsx';
import { WINDOW_MS } from '../metrics.ts';
import { chromeFor, enc, sendPage } from '../render.ts';
import { EventList } from './services.tsx';

const LOG_LIMIT = 500;

interface Search {
  q: string;
  since: string;
  until: string;
  stream: string;
}

function ObservabilityPage(props: {
  chrome: PageChrome;
  service: string;
  window: MetricsWindow;
  metrics: ServiceMetrics | null;
  metricsAvailable: boolean;
  now: number;
  search: Search;
  errors: FieldErrors;
  entries: LogEntry[];
  events: LogEntry[];
  followUrl: string | null;
}) {
  const base = `/services/${enc(props.service)}/observability`;
  const s = props.search;
  const keep = (w: string) => {
    const p = new URLSearchParams();
    p.set('window', w);
    for (const [k, v] of Object.entries(s)) if (v) p.set(k, v);
    return `${base}?${p}`;
  };
  const from = props.now - WINDOW_MS[props.window];
  const maxId = props.entries.reduce((m, e) => Math.max(m, e.id), 0);
  return (
    <Layout title={`${props.service} · Observability`} chrome={props.chrome} service={{ name: props.service, tab: 'observability' }}>
      <section id="metrics">
        <div class="page-head">
          <h2>Metrics</h2>
          <nav class="seg">
            {METRICS_WINDOWS.map((w) => (
              <a href={keep(w)} aria-current={w === props.window ? 'page' : undefined}>
                {w}
              </a>
            ))}
          </nav>
        </div>
        {!props.metricsAvailable ? (
          <p class="notice" id="metrics-unavailable">
            Charts of requests, latency, cold starts, instances and GB-s: metrics arrive with the metrics module, which is not part of this build yet.
          </p>
        ) : props.metrics ? (
          <div class="charts">
            <LineChart
              title="Requests"
              unit="req"
              from={from}
              to={props.now}
              series={[
                { name: 'all', points: props.metrics.requests },
                { name: '4xx', points: props.metrics.errors4xx },
                { name: '5xx', points: props.metrics.errors5xx },
              ]}
            />
            <LineChart
              title="Latency"
              unit="ms"
              from={from}
              to={props.now}
              summary="max"
              series={[
                { name: 'p50', points: props.metrics.latencyP50 },
                { name: 'p95', points: props.metrics.latencyP95 },
                { name: 'p99', points: props.metrics.latencyP99 },
              ]}
            />
            <LineChart
              title="Cold starts"
              unit="starts"
              from={from}
              to={props.now}
              series={[{ name: 'cold starts', points: props.metrics.coldStarts }]}
            />
            <LineChart title="Cold start duration" unit="ms" from={from} to={props.now} summary="max" series={[{ name: 'mean', points: props.metrics.coldStartMs }]} />
            <LineChart title="Instances" unit="instances" from={from} to={props.now} summary="max" series={[{ name: 'instances', points: props.metrics.instances }]} />
            <LineChart title="Billed compute" unit="GB-s" from={from} to={props.now} series={[{ name: 'GB-s', points: props.metrics.gbSeconds }]} />
          </div>
        ) : null}
      </section>

      <section id="logs">
        <h2>Logs</h2>
        <form method="get" action={base} class="card search">
          <input type="hidden" name="window" value={props.window} />
          <div class="grid4">
            <Field name="q" label="Search" errors={props.errors}>
              <input id="f-q" name="q" value={s.q} placeholder="text in the line or event" />
            </Field>
            <Field name="since" label="Since" errors={props.errors}>
              <input id="f-since" name="since" value={s.since} placeholder="15m, 2h, 7d or an ISO time" />
            </Field>
            <Field name="until" label="Until" errors={props.errors}>
              <input id="f-until" name="until" value={s.until} placeholder="empty: now" />
            </Field>
            <Field name="stream" label="Stream" errors={props.errors}>
              <select id="f-stream" name="stream">
                {['', 'stdout', 'stderr', 'event'].map((v) => (
                  <option value={v} selected={v === s.stream}>
                    {v || 'all'}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <button type="submit" class="primary">
            Search
          </button>{' '}
          <a href={`${base}?window=${props.window}`} class="small">
            Clear
          </a>
        </form>
        <div class="log-toolbar">
          <span class="muted small">
            {props.entries.length === LOG_LIMIT ? `newest ${LOG_LIMIT} entries` : `${props.entries.length} entries`}, times in UTC
          </span>
          {props.followUrl ? (
            <span class="tail" id="tail-status" data-state="off">
              <button type="button" class="small" id="tail-toggle" hidden>
                Pause live tail
              </button>
              <span class="small muted" id="tail-note">
                live tail needs JavaScript
              </span>
            </span>
          ) : null}
        </div>
        <div class="logview" id="log-view" data-follow={props.followUrl ?? undefined} data-after={String(maxId)}>
          {props.entries.length === 0 ? <p class="empty" id="log-empty">No log entries match.</p> : null}
          {props.entries.map((e) => (
            <LogRow entry={e} />
          ))}
        </div>
      </section>

      <section id="events">
        <h2>Events</h2>
        {props.events.length === 0 ? <Empty>No events yet.</Empty> : <EventList events={props.events} />}
      </section>
    </Layout>
  );
}

function LogRow(props: { entry: LogEntry }) {
  const e = props.entry;
  return (
    <div class={`logline ${e.stream}`} data-id={e.id}>
      <time>{formatTime(e.ts).slice(5)}</time>
      <span class="stream">{e.stream === 'event' ? e.event : e.stream}</span>
      <span class="inst">{e.instanceId ?? ''}</span>
      <span class="msg">{stripAnsi(e.message)}</span>
    </div>
  );
}

export function observabilityPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  app.get('/services/:name/observability', async (c) => {
    const service = deps.services.get(c.req.param('name')).name;
    const now = Date.parse(deps.now());
    const win = (METRICS_WINDOWS as readonly string[]).includes(c.req.query('window') ?? '') ? (c.req.query('window') as MetricsWindow) : '1h';
    const search: Search = {
      q: (c.req.query('q') ?? '').slice(0, 500),
      since: c.req.query('since') ?? '',
      until: c.req.query('until') ?? '',
      stream: ['stdout', 'stderr', 'event'].includes(c.req.query('stream') ?? '') ? c.req.query('stream')! : '',
    };
    const errors: FieldErrors = {};
    const time = (field: 'since' | 'until') => {
      try {
        return parseTime(search[field] || undefined, now, field);
      } catch (err) {
        if (!(err instanceof CellhostError)) throw err;
        errors[field] = err.message;
        return undefined;
      }
    };
    const since = time('since');
    const until = time('until');
    deps.sink.flush();
    const entries = Object.keys(errors).length
      ? []
      : deps.store.logs.query({ service, since, until, q: search.q || undefined, stream: (search.stream || undefined) as LogStream | undefined, limit: LOG_LIMIT });
    const events = deps.store.logs.query({ service, stream: 'event', limit: 50 });
    const metrics = deps.metrics ? await deps.metrics(service, win) : null;
    // a tail follows what is being written now: not for a search that ends in the past
    const followParams = new URLSearchParams({ follow: '1' });
    if (search.q) followParams.set('q', search.q);
    if (search.stream) followParams.set('stream', search.stream);
    const followUrl = search.until || Object.keys(errors).length ? null : `/api/v1/services/${enc(service)}/logs?${followParams}`;
    return sendPage(
      c,
      <ObservabilityPage
        chrome={chromeFor(c)}
        service={service}
        window={win}
        metrics={metrics}
        metricsAvailable={!!deps.metrics}
        now={now}
        search={search}
        errors={errors}
        entries={entries}
        events={events}
        followUrl={followUrl}
      />,
      Object.keys(errors).length ? 400 : 200,
    );
  });
  return app;
}
