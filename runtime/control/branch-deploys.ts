// What a new commit on a branch does, whether it came by `git push` or by a forge's webhook: the
// service's deploy branch deploys the service; another branch deploys its preview when the
// service has previews on, and is left alone otherwise. A deleted branch takes its preview with
// it; the deploy branch cannot be deleted this way (the service would keep serving a branch that
// no longer exists).
import fs from 'node:fs/promises';
import type { SourceInput } from '../../builder/sources/index.ts';
import type { Deployment, DeploymentStore } from '../store/deployments.ts';
import type { Deployments } from './deployments.ts';
import type { Previews } from './previews.ts';
import type { Services } from './types.ts';

export type BranchPlan = { action: 'deploy' | 'preview' } | { action: 'ignored'; reason: string };

export type BranchOutcome = { action: 'deploy' | 'preview'; service: string; deployment: Deployment } | { action: 'ignored'; reason: string };

export type DeleteOutcome = { action: 'refused'; reason: string } | { action: 'preview_deleted'; preview: string } | { action: 'ignored'; reason: string };

export interface BranchDeploys {
  plan(service: string, branch: string): BranchPlan;
  /**
   * deploys `branch` of `service` from the source `source()` makes (only called when something
   * deploys). With `commit`, a commit the target is already building or serving is not built
   * again (a forge announces a pull request's new commit twice: as a push and as the pull request).
   */
  deploy(service: string, branch: string, source: () => Promise<SourceInput>, label: string, opts?: { pullRequest?: number | null; commit?: string }): Promise<BranchOutcome>;
  /** `branch` of `service` is gone (deleted, or its pull request closed) */
  deleted(service: string, branch: string): Promise<DeleteOutcome>;
}

/** the commit a deployment's source label names: "...@<first 12 hex digits>" */
export const commitLabel = (commit: string) => `@${commit.slice(0, 12)}`;

export function createBranchDeploys(deps: { services: Services; deployments: Deployments; previews: Previews; history: DeploymentStore }): BranchDeploys {
  function plan(service: string, branch: string): BranchPlan {
    const s = deps.services.get(service);
    if (branch === s.deployBranch) return { action: 'deploy' };
    if (deps.previews.get(service)) return { action: 'ignored', reason: `${service} is itself a preview: only its parent's branches deploy` };
    if (s.previews) return { action: 'preview' };
    return {
      action: 'ignored',
      reason: `${branch} is not ${s.deployBranch}, the deploy branch of ${service}, and previews are off (turn them on with: cellhost hooks ${service} --previews on)`,
    };
  }

  return {
    plan,
    async deploy(service, branch, source, label, opts = {}) {
      const p = plan(service, branch);
      if (p.action === 'ignored') return p;
      const target = p.action === 'deploy' ? service : deps.previews.prepare(service, branch, opts.pullRequest).name;
      if (opts.commit) {
        const same = deps.history
          .listForService(target, { limit: 5 })
          .find((d) => d.source.endsWith(commitLabel(opts.commit!)) && ['queued', 'building', 'ready', 'live'].includes(d.status));
        if (same) return { action: 'ignored', reason: `${target} already has deployment ${same.id} (${same.status}) of ${opts.commit.slice(0, 12)}` };
      }
      const input = await source();
      try {
        return { action: p.action, service: target, deployment: deps.deployments.create(target, input, label) };
      } catch (err) {
        if (input.kind !== 'git') await fs.rm(input.file, { force: true });
        throw err;
      }
    },
    async deleted(service, branch) {
      const s = deps.services.get(service);
      if (branch === s.deployBranch) {
        return { action: 'refused', reason: `${branch} is the deploy branch of ${service}: it cannot be deleted while it is (change the service's deployBranch first)` };
      }
      const removed = await deps.previews.remove(service, branch);
      return removed ? { action: 'preview_deleted', preview: removed.name } : { action: 'ignored', reason: `${branch} had no preview` };
    },
  };
}
