// A service's deployments, newest first, with the button that makes a built one live
// (Roll back to an older one, Promote a newer one).
import type { Deployment } from '../runtime/store/deployments.ts';
import { Empty, PostButton, StatusBadge } from './components.tsx';
import { formatDuration, formatTime } from './format.ts';
import { enc } from './render.ts';

export function DeploymentList(props: { deployments: Deployment[]; live: Deployment | undefined; csrf: string; current?: string }) {
  if (!props.deployments.length) return <Empty>No deployments yet.</Empty>;
  const liveSeq = props.live?.seq ?? 0;
  return (
    <table class="list">
      <thead>
        <tr>
          <th>#</th>
          <th>deployment</th>
          <th>status</th>
          <th>source</th>
          <th>created (UTC)</th>
          <th>build</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {props.deployments.map((d) => (
          <tr class={d.id === props.current ? 'current' : undefined}>
            <td class="num">{d.seq}</td>
            <td>
              <a href={`/deployments/${enc(d.id)}`} class="mono">
                {d.id}
              </a>
            </td>
            <td>
              <StatusBadge status={d.status} />
            </td>
            <td class="mono small">{d.source}</td>
            <td class="small">{formatTime(d.createdAt)}</td>
            <td class="small">{d.startedAt && d.finishedAt ? formatDuration(Date.parse(d.finishedAt) - Date.parse(d.startedAt)) : ''}</td>
            <td>
              {(d.status === 'ready' || d.status === 'superseded') && d.imageDir ? (
                <PostButton
                  action={`/deployments/${enc(d.id)}/promote`}
                  csrf={props.csrf}
                  label={d.seq < liveSeq ? 'Roll back to this' : 'Promote'}
                  title="make this deployment's image live"
                />
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
