// Deployment Information: state, timing, source, error, the build log (ANSI colours rendered,
// live while the build runs), and the service's history with Promote / Roll back.
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { manifestState, type ManifestSettingState } from '../../runtime/control/manifest-settings.ts';
import { parsedManifest } from '../../runtime/manifest/manifest.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { Deployment } from '../../runtime/store/deployments.ts';
import { ansiToHtml, createAnsiConverter } from '../ansi.ts';
import { StatusBadge } from '../components.tsx';
import { DeploymentList } from '../deployment-list.tsx';
import type { UiDeps, UiEnv } from '../deps.ts';
import { formatDuration, formatTime } from '../format.ts';
import { Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, redirectWith, sendPage } from '../render.ts';
import { OlderBaseAlert, SystemLayerCard } from '../system-layer.tsx';
import { raw } from 'hono/html';

/** the manifest the deployment's source had; for the live one, what each of its settings became */
function ManifestCard(props: { dep: Deployment; state: ManifestSettingState[] | null }) {
  const m = props.dep.manifest!;
  return (
    <section class="card" id="manifest">
      <h3>
        Manifest <span class="mono">{m.file}</span>
      </h3>
      {props.state ? (
        <>
          <p class="muted small">
            The live deployment's manifest. Settings set through the API, CLI or console win over it; the others follow it.
          </p>
          <ul class="manifest-settings" id="manifest-settings">
            {props.state.map((s) => (
              <li class={s.applied ? 'applied' : 'overridden'}>
                <span class="mono">
                  {s.key} = {s.value}
                </span>{' '}
                <span class="muted">line {s.line}</span> {s.applied ? '' : <span class="badge">set through the API to {s.current}, which wins</span>}
              </li>
            ))}
          </ul>
        </>
      ) : m.parsed ? null : (
        <p class="muted small">This manifest is not valid: the build log names each problem.</p>
      )}
      <pre class="cmd manifest-text" id="manifest-text">
        {m.text}
      </pre>
    </section>
  );
}

function DeploymentPage(props: {
  chrome: PageChrome;
  dep: Deployment;
  logHtml: string;
  active: boolean;
  history: Deployment[];
  live: Deployment | undefined;
  url: string;
  manifestState: ManifestSettingState[] | null;
  hostBase: string;
}) {
  const d = props.dep;
  const ms = (a: string | null, b: string | null) => (a && b ? formatDuration(Date.parse(b) - Date.parse(a)) : '—');
  return (
    <Layout title={`Deployment ${d.id}`} chrome={props.chrome} service={{ name: d.service, tab: 'deployment' }}>
      <h2>
        Deployment Information <span class="mono muted">{d.id}</span>
      </h2>
      <section class="card">
        <dl class="facts">
          <dt>status</dt>
          <dd id="deploy-status">
            <StatusBadge status={d.status} />
            {props.active ? <span class="live-dot" title="updating live"></span> : null}
          </dd>
          <dt>source</dt>
          <dd class="mono">{d.source}</dd>
          <dt>created</dt>
          <dd>{formatTime(d.createdAt)} UTC</dd>
          <dt>waited in queue</dt>
          <dd>{ms(d.createdAt, d.startedAt)}</dd>
          <dt>build</dt>
          <dd>
            {d.startedAt ? `started ${formatTime(d.startedAt)}` : 'not started'}
            {d.finishedAt ? `, finished ${formatTime(d.finishedAt)} (${ms(d.startedAt, d.finishedAt)})` : ''}
          </dd>
          {d.status === 'live' ? (
            <>
              <dt>serving at</dt>
              <dd>
                <a href={props.url} class="mono" id="service-url" target="_blank" rel="noopener noreferrer">
                  {props.url}
                </a>
              </dd>
            </>
          ) : null}
        </dl>
        {d.error ? (
          <div class="alert" id="deploy-error">
            <strong>{d.errorCode}</strong>: {d.error}
          </div>
        ) : null}
      </section>
      {d.systemLayer ? (
        <>
          <h2>System layer</h2>
          {d.systemLayer.hostBase !== props.hostBase && d.imageDir ? <OlderBaseAlert dep={d} csrf={props.chrome.csrf} where="deployment" /> : null}
          <SystemLayerCard dep={{ ...d, systemLayer: d.systemLayer }} currentBase={d.systemLayer.hostBase === props.hostBase} />
        </>
      ) : null}
      {d.manifest ? <ManifestCard dep={d} state={props.manifestState} /> : null}
      <h2>Build log</h2>
      <pre class="log build-log" id="build-log" data-stream={`/deployments/${enc(d.id)}/log/stream`} data-active={props.active ? '1' : '0'}>
        {raw(props.logHtml)}
      </pre>
      <h2>History of {d.service}</h2>
      <DeploymentList deployments={props.history} live={props.live} csrf={props.chrome.csrf} current={d.id} />
    </Layout>
  );
}

export function deploymentPages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  const mustGet = (id: string) => {
    const d = deps.store.deployments.get(id);
    if (!d) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    return d;
  };

  app.get('/deployments/:id', (c) => {
    const d = mustGet(c.req.param('id'));
    const service = deps.store.services.get(d.service);
    const live = service?.liveDeploymentId ? deps.store.deployments.get(service.liveDeploymentId) : undefined;
    return sendPage(
      c,
      <DeploymentPage
        chrome={chromeFor(c)}
        dep={d}
        logHtml={ansiToHtml(deps.logs.read(d.id) ?? '')}
        active={deps.logs.isActive(d.id)}
        history={deps.store.deployments.listForService(d.service, { limit: 30 })}
        live={live}
        url={service ? deps.services.get(service.name).url : ''}
        hostBase={deps.deployments.hostBase()}
        manifestState={service && d.status === 'live' && parsedManifest(d) ? manifestState(service, parsedManifest(d)!) : null}
      />,
    );
  });

  // the build log as HTML fragments; every connection starts from the beginning of the log
  app.get('/deployments/:id/log/stream', (c) => {
    const id = mustGet(c.req.param('id')).id;
    c.header('cache-control', 'no-store');
    return streamSSE(c, async (stream) => {
      const converter = createAnsiConverter();
      // writes are chained, and the stream closes only after the last one: an unawaited write
      // still pending at close would be lost (the 'end' event first of all)
      let written: Promise<void> = Promise.resolve();
      const send = (event: string, data: unknown) => {
        written = written.then(() => stream.writeSSE({ event, data: JSON.stringify(data) }));
      };
      // a build can be silent for minutes (npm install): keep proxies from closing the stream
      const keepAlive = setInterval(() => {
        written = written.then(() => stream.write(': keep-alive\n\n')).then(() => undefined);
      }, 15_000);
      await new Promise<void>((resolve) => {
        const unsubscribe = deps.logs.follow(id, {
          onChunk: (text) => {
            const html = converter.push(text);
            if (html) send('html', html);
          },
          onEnd: () => {
            const tail = converter.flush();
            if (tail) send('html', tail);
            send('end', { status: deps.store.deployments.get(id)?.status ?? null });
            void written.then(resolve, resolve);
          },
        });
        stream.onAbort(() => {
          unsubscribe();
          resolve();
        });
      });
      clearInterval(keepAlive);
    });
  });

  app.post('/deployments/:id/promote', (c) => {
    const d = mustGet(c.req.param('id'));
    try {
      deps.deployments.promote(d.id);
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/deployments/${enc(d.id)}`, err.message);
      throw err;
    }
    return redirectWith(c, `/services/${enc(d.service)}`, `Deployment ${d.id} is live.`);
  });

  app.post('/deployments/:id/rebuild', async (c) => {
    const d = mustGet(c.req.param('id'));
    let next: Deployment;
    try {
      next = await deps.deployments.rebuild(d.id);
    } catch (err) {
      if (err instanceof CellhostError) return redirectWith(c, `/deployments/${enc(d.id)}`, err.message);
      throw err;
    }
    return redirectWith(c, `/deployments/${enc(next.id)}`, `Rebuilding ${d.id} as ${next.id}.`);
  });

  return app;
}
