// The services list and a service's overview: status, URL, settings, instances now, the latest
// start failure with the instance's last output, recent events and deployments.
import { Hono } from 'hono';
import type { ServiceView } from '../../runtime/control/types.ts';
import type { Deployment } from '../../runtime/store/deployments.ts';
import type { LogEntry } from '../../runtime/store/logs.ts';
import { stripAnsi } from '../ansi.ts';
import { Empty, StatusBadge } from '../components.tsx';
import { DeploymentList } from '../deployment-list.tsx';
import type { UiDeps, UiEnv, UsageReport } from '../deps.ts';
import { formatAgo, formatCost, formatCpuCap, formatDuration, formatMemory, formatNumber, formatTime } from '../format.ts';
import { Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, sendPage } from '../render.ts';
import { describeServiceStatus, findLastStart, lastOutputOf } from '../service-status.ts';
import { OlderBaseAlert, packagesSummary } from '../system-layer.tsx';

type UsageRow = UsageReport['services'][number];

function ServicesPage(props: {
  chrome: PageChrome;
  rows: { service: ServiceView; status: string; usage?: UsageRow }[];
  hasUsage: boolean;
}) {
  return (
    <Layout title="Services" chrome={props.chrome} nav="services">
      <div class="page-head">
        <h1>Services</h1>
        <a class="button primary" href="/deploy">
          Manual Deploy
        </a>
      </div>
      {props.rows.length === 0 ? (
        <Empty>
          No services yet. <a href="/deploy">Deploy one</a>: pick a runtime, upload the source, press Deploy.
        </Empty>
      ) : (
        <table class="list services">
          <thead>
            <tr>
              <th>name</th>
              <th>URL</th>
              <th>runtime</th>
              <th>memory · CPU cap</th>
              <th>status</th>
              <th>live deployment</th>
              <th class="num">instances</th>
              <th class="num">requests 24 h</th>
              <th class="num">cost 24 h</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map(({ service: s, status, usage }) => (
              <tr data-service={s.name} class={s.preview ? 'preview' : undefined}>
                <td>
                  {s.preview ? <span class="muted">↳ </span> : null}
                  <a href={`/services/${enc(s.name)}`}>
                    <strong>{s.name}</strong>
                  </a>
                  {s.preview ? (
                    <span class="muted small">
                      {' '}
                      preview of {s.preview.branch}
                      {s.preview.pullRequest ? ` (#${s.preview.pullRequest})` : ''}
                    </span>
                  ) : null}
                </td>
                <td>
                  <a href={s.url} class="mono small" target="_blank" rel="noopener noreferrer">
                    {s.url}
                  </a>
                </td>
                <td>{s.runtime}</td>
                <td>
                  {formatMemory(s.memoryMb)} · {formatCpuCap(s.memoryMb)}
                </td>
                <td>
                  <StatusBadge status={status} />
                </td>
                <td>
                  {s.liveDeploymentId ? (
                    <a href={`/deployments/${enc(s.liveDeploymentId)}`} class="mono small">
                      {s.liveDeploymentId}
                    </a>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
                <td class="num">{s.instances.length}</td>
                <td class="num">{props.hasUsage ? formatNumber(usage?.requests ?? 0) : <span class="muted">n/a</span>}</td>
                <td class="num">{props.hasUsage ? formatCost(usage?.cost ?? 0) : <span class="muted">n/a</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.hasUsage ? null : <p class="muted small">Requests and cost appear here once usage metering is wired in.</p>}
    </Layout>
  );
}

function ServicePage(props: {
  chrome: PageChrome;
  service: ServiceView;
  status: string;
  lastStart: LogEntry | undefined;
  lastOutput: LogEntry[];
  events: LogEntry[];
  deployments: Deployment[];
  live: Deployment | undefined;
  now: number;
  hostBase: string;
}) {
  const s = props.service;
  const layer = props.live?.systemLayer;
  const failure = props.lastStart && props.lastStart.event !== 'cold_start' ? props.lastStart : undefined;
  return (
    <Layout title={s.name} chrome={props.chrome} service={{ name: s.name, tab: 'overview' }}>
      {failure ? <StartFailure event={failure} output={props.lastOutput} name={s.name} now={props.now} /> : null}
      {props.live && layer && layer.hostBase !== props.hostBase ? <OlderBaseAlert dep={props.live} csrf={props.chrome.csrf} where="service" /> : null}
      <section class="card">
        <dl class="facts">
          <dt>status</dt>
          <dd>
            <StatusBadge status={props.status} />
          </dd>
          <dt>URL</dt>
          <dd>
            <a href={s.url} class="mono" target="_blank" rel="noopener noreferrer" id="service-url">
              {s.url}
            </a>
          </dd>
          <dt>live deployment</dt>
          <dd>
            {s.liveDeploymentId ? (
              <a class="mono" href={`/deployments/${enc(s.liveDeploymentId)}`}>
                {s.liveDeploymentId}
              </a>
            ) : (
              <span class="muted">none yet</span>
            )}
          </dd>
          {layer ? (
            <>
              <dt>system layer</dt>
              <dd>
                {layer.packages.added.length ? (
                  <span class="mono small">{packagesSummary(layer.packages.added)}</span>
                ) : (
                  <span class="muted">no packages added</span>
                )}{' '}
                <a class="small" href={`/deployments/${enc(props.live!.id)}#system-layer`}>
                  details
                </a>
              </dd>
            </>
          ) : null}
          {props.live?.manifest ? (
            <>
              <dt>manifest</dt>
              <dd>
                <a class="mono" href={`/deployments/${enc(props.live.id)}#manifest`} id="live-manifest">
                  {props.live.manifest.file}
                </a>{' '}
                <span class="muted">of the live deployment: it sets what the API did not</span>
              </dd>
            </>
          ) : null}
          <dt>runtime</dt>
          <dd>{s.runtime}</dd>
          <dt>memory</dt>
          <dd>
            {formatMemory(s.memoryMb)} <span class="muted">(CPU cap {formatCpuCap(s.memoryMb)} of a core)</span>
          </dd>
          <dt>serving port</dt>
          <dd>{s.port}</dd>
          <dt>build command</dt>
          <dd>{s.buildCommand ? <pre class="cmd">{s.buildCommand}</pre> : <span class="muted">the runtime's default</span>}</dd>
          <dt>start command</dt>
          <dd>{s.startCommand ? <pre class="cmd">{s.startCommand}</pre> : <span class="muted">the runtime's default</span>}</dd>
          <dt>scaling</dt>
          <dd>
            {s.minInstances}–{s.maxInstances} instances, {s.concurrency} requests each, idle stop after {formatDuration(s.idleTimeoutS * 1000)}, request
            timeout {formatDuration(s.requestTimeoutS * 1000)}
          </dd>
          {s.domains.length ? (
            <>
              <dt>domains</dt>
              <dd>{s.domains.join(', ')}</dd>
            </>
          ) : null}
        </dl>
      </section>

      <h2>
        Instances now{' '}
        <span class="small muted" id="instances-live" hidden>
          live
        </span>
      </h2>
      <section id="instances" data-poll={`/api/v1/services/${enc(s.name)}`}>
        <InstanceTable instances={s.instances} now={props.now} />
      </section>

      <h2>
        Recent events <a class="small" href={`/services/${enc(s.name)}/observability`}>all logs and events →</a>
      </h2>
      {props.events.length === 0 ? <Empty>No events yet.</Empty> : <EventList events={props.events} />}

      <h2>Deployments</h2>
      <DeploymentList deployments={props.deployments} live={props.live} csrf={props.chrome.csrf} />
    </Layout>
  );
}

/** the instances and their state; the page's script redraws the same table as they change */
function InstanceTable(props: { instances: ServiceView['instances']; now: number }) {
  if (props.instances.length === 0) return <Empty>No instance is running: the next request starts one.</Empty>;
  return (
    <table class="list instances">
      <thead>
        <tr>
          <th>instance</th>
          <th>state</th>
          <th>deployment</th>
          <th class="num">pid</th>
          <th class="num">in flight</th>
          <th>started</th>
        </tr>
      </thead>
      <tbody>
        {props.instances.map((i) => (
          <tr data-instance={i.id}>
            <td class="mono">{i.id}</td>
            <td class="state">{i.prewarm?.kept ? `${i.state} (prewarmed, frozen)` : i.frozen ? `${i.state} (frozen)` : i.state}</td>
            <td class="mono small">{i.deploymentId}</td>
            <td class="num">{i.pid}</td>
            <td class="num">{i.inflight}</td>
            <td class="small">{formatAgo(i.startedAt, props.now)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function StartFailure(props: { event: LogEntry; output: LogEntry[]; name: string; now: number }) {
  const e = props.event;
  return (
    <section class="alert" id="start-failure">
      <h2>{e.event === 'crash' ? 'The app crashed' : 'The app failed to start'}</h2>
      <p>
        <strong>{e.message}</strong> <span class="muted">({formatTime(e.ts)} UTC, {formatAgo(new Date(e.ts).toISOString(), props.now)})</span>
      </p>
      {props.output.length ? (
        <>
          <p class="small muted">Last output of instance {e.instanceId}:</p>
          <pre class="log small-log">
            {props.output.map((l) => (
              <span class={l.stream === 'stderr' ? 'stderr' : undefined}>{stripAnsi(l.message) + '\n'}</span>
            ))}
          </pre>
        </>
      ) : (
        <p class="small muted">The instance wrote no output before it ended.</p>
      )}
      <p class="small">
        <a href={`/services/${enc(props.name)}/observability?stream=event`}>See every event</a> ·{' '}
        <a href={`/deploy?service=${enc(props.name)}`}>Fix the start command and deploy again</a>
      </p>
    </section>
  );
}

export function EventList(props: { events: LogEntry[] }) {
  return (
    <ul class="events">
      {[...props.events].reverse().map((e) => (
        <li class={`event ev-${e.event}`}>
          <time>{formatTime(e.ts)}</time> <span class="ev-name">{e.event}</span> {e.message}
        </li>
      ))}
    </ul>
  );
}

export function servicePages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const now = () => Date.parse(deps.now());

  app.get('/', (c) => c.redirect('/services', 302));

  app.get('/services', async (c) => {
    deps.sink.flush();
    // a service's previews right under it
    const all = deps.services.list();
    const names = new Set(all.map((s) => s.name));
    const services = all
      .filter((s) => !s.preview || !names.has(s.preview.parent))
      .flatMap((s) => [s, ...all.filter((p) => p.preview?.parent === s.name)]);
    let usage: Map<string, UsageRow> | undefined;
    if (deps.usageReport) {
      const report = await deps.usageReport(now() - 24 * 3600_000, now());
      usage = new Map(report.services.flatMap((r) => [r, ...(r.previews ?? [])]).map((r) => [r.service, r]));
    }
    const rows = services.map((s) => {
      const latest = deps.store.deployments.listForService(s.name, { limit: 1 })[0];
      return { service: s, status: describeServiceStatus(s, latest, findLastStart(deps.store.logs, s.name)), usage: usage?.get(s.name) };
    });
    return sendPage(c, <ServicesPage chrome={chromeFor(c)} rows={rows} hasUsage={!!deps.usageReport} />);
  });

  app.get('/services/:name', (c) => {
    const s = deps.services.get(c.req.param('name'));
    deps.sink.flush();
    const deployments = deps.store.deployments.listForService(s.name, { limit: 20 });
    const lastStart = findLastStart(deps.store.logs, s.name);
    const live = s.liveDeploymentId ? deps.store.deployments.get(s.liveDeploymentId) : undefined;
    const lastOutput = lastStart && lastStart.event !== 'cold_start' && lastStart.instanceId ? lastOutputOf(deps.store.logs, s.name, lastStart.instanceId) : [];
    return sendPage(
      c,
      <ServicePage
        chrome={chromeFor(c)}
        service={s}
        status={describeServiceStatus(s, deployments[0], lastStart)}
        lastStart={lastStart}
        lastOutput={lastOutput}
        events={deps.store.logs.query({ service: s.name, stream: 'event', limit: 12 })}
        deployments={deployments}
        live={live}
        now={now()}
        hostBase={deps.deployments.hostBase()}
      />,
    );
  });

  return app;
}
