// A deployment's system layer: the packages its build installed over the host's, and whether it
// was built on the host's current packages (after a host upgrade: an older base, and a Rebuild).
import type { Deployment, SystemLayerRecord } from '../runtime/store/deployments.ts';
import { PostButton } from './components.tsx';
import { formatBytes } from './format.ts';
import { enc } from './render.ts';

/** "hello 2.10-3, figlet 2.2.5 and 3 more" */
export function packagesSummary(list: ReadonlyArray<{ name: string; version: string }>, max = 6): string {
  const named = list.slice(0, max).map((p) => `${p.name} ${p.version}`);
  return named.join(', ') + (list.length > max ? ` and ${list.length - max} more` : '');
}

function PackageList(props: { items: string[] }) {
  return <span class="mono small">{props.items.join(', ')}</span>;
}

/** the alert and the button, for a layer built on an older base than the host's now */
export function OlderBaseAlert(props: { dep: Deployment; csrf: string; where: 'service' | 'deployment' }) {
  return (
    <section class="alert" id="layer-older-base">
      <p>
        <strong>The system layer of {props.where === 'service' ? <a href={`/deployments/${enc(props.dep.id)}`} class="mono">{props.dep.id}</a> : 'this deployment'} was built on an older base.</strong>{' '}
        The host's packages changed since it was built (an upgrade): its packages were installed against the old ones. Rebuild it to build the layer on
        the host's current packages; the new deployment goes live when its build succeeds.
      </p>
      <PostButton action={`/deployments/${enc(props.dep.id)}/rebuild`} csrf={props.csrf} label="Rebuild" title="build the same source again as a new deployment" />
    </section>
  );
}

export function SystemLayerCard(props: { dep: Deployment & { systemLayer: SystemLayerRecord }; currentBase: boolean }) {
  const l = props.dep.systemLayer;
  const p = l.packages;
  return (
    <section class="card" id="system-layer">
      <dl class="facts">
        <dt>packages added</dt>
        <dd>{p.added.length ? <PackageList items={p.added.map((a) => `${a.name} ${a.version}`)} /> : <span class="muted">none</span>}</dd>
        {p.upgraded.length ? (
          <>
            <dt>upgraded</dt>
            <dd>
              <PackageList items={p.upgraded.map((u) => `${u.name} ${u.from} → ${u.to}`)} />
            </dd>
          </>
        ) : null}
        {p.removed.length ? (
          <>
            <dt>removed</dt>
            <dd>
              <PackageList items={p.removed.map((r) => `${r.name} ${r.version}`)} />
            </dd>
          </>
        ) : null}
        <dt>size</dt>
        <dd>{formatBytes(l.bytes)} (counted with the image)</dd>
        <dt>owned by</dt>
        <dd>
          host ids {l.uidBase}–{l.uidBase + 65_535} <span class="muted">(the service's own; its instances read the layer as the service's uid, read-only)</span>
        </dd>
        <dt>base</dt>
        <dd>{props.currentBase ? "the host's current packages" : <strong>an older base: the host's packages changed since</strong>}</dd>
      </dl>
    </section>
  );
}
