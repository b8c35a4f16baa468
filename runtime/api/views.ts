// The API's shapes: what the store holds, as clients see it.
import type { Deployment } from '../store/deployments.ts';

export function deploymentView(d: Deployment) {
  return {
    id: d.id,
    service: d.service,
    seq: d.seq,
    status: d.status,
    source: d.source,
    createdAt: d.createdAt,
    ...(d.startedAt ? { startedAt: d.startedAt } : {}),
    ...(d.finishedAt ? { finishedAt: d.finishedAt } : {}),
    ...(d.errorCode ? { error: { code: d.errorCode, message: d.error ?? '' } } : {}),
  };
}
