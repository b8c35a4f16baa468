// What a verified webhook delivery does for its service:
// - a push to the deploy branch deploys that commit, cloned from the service's repository (with
//   its stored credential) or, when none is set, from the repository the delivery names (without);
// - a push to another branch deploys its preview when previews are on; a deleted branch deletes
//   its preview (the deploy branch deleted on the forge changes nothing: the live version serves);
// - a pull request opened, reopened or given new commits deploys its branch's preview, closed or
//   merged deletes it; one from a fork is not deployed (its code would run with the service's
//   variables);
// - ping, tags and other events are answered and left alone.
import type { BranchDeploys } from '../control/branch-deploys.ts';
import type { Services } from '../control/types.ts';
import { CellhostError } from '../core/errors.ts';
import type { DeliveryAction, HookSettings } from '../store/hooks.ts';
import type { GitAuth } from '../../builder/sources/git-source.ts';
import type { HookEvent } from './events.ts';
import type { Forge } from './signatures.ts';

export interface Outcome {
  status: 200 | 202;
  action: Exclude<DeliveryAction, 'refused'>;
  detail: string;
  ref: string | null;
  commit: string | null;
  deploymentId: string | null;
}

export interface ActDeps {
  services: Services;
  branches: BranchDeploys;
}

/** the clone's credentials: only for the repository they were stored with */
function authFor(settings: HookSettings, url: string): GitAuth | undefined {
  const c = settings.credential;
  if (!c || url !== settings.repository) return undefined;
  if (c.kind === 'token') return { header: `Authorization: Basic ${Buffer.from(`${c.username}:${c.token}`).toString('base64')}` };
  return { sshKey: c.privateKey, ...(c.knownHosts ? { knownHosts: c.knownHosts } : {}) };
}

export async function actOnEvent(deps: ActDeps, service: string, forge: Forge, event: HookEvent, settings: HookSettings): Promise<Outcome> {
  const s = deps.services.get(service);
  const ignored = (detail: string, ref: string | null = null, commit: string | null = null): Outcome => ({ status: 200, action: 'ignored', detail, ref, commit, deploymentId: null });

  const deploy = async (branch: string, commit: string, cloneUrl: string | null, pullRequest?: number): Promise<Outcome> => {
    const ref = `refs/heads/${branch}`;
    const url = settings.repository ?? cloneUrl;
    if (!url) {
      throw new CellhostError('ERR_SOURCE_GIT_URL', `the delivery names no repository to clone and ${service} has none set (cellhost hooks ${service} --repo URL)`);
    }
    const outcome = await deps.branches.deploy(
      service,
      branch,
      async () => ({ kind: 'git', url, ref: commit, auth: authFor(settings, url) }),
      `webhook:${forge}:${branch}@${commit.slice(0, 12)}`,
      { commit, ...(pullRequest !== undefined ? { pullRequest } : {}) },
    );
    if (outcome.action === 'ignored') return ignored(outcome.reason, ref, commit);
    return {
      status: 202,
      action: outcome.action,
      detail: `deployment ${outcome.deployment.id} of ${branch} (${commit.slice(0, 12)}) to ${outcome.service} queued`,
      ref,
      commit,
      deploymentId: outcome.deployment.id,
    };
  };

  const branchGone = async (branch: string, why: string): Promise<Outcome> => {
    const ref = `refs/heads/${branch}`;
    if (branch === s.deployBranch) return ignored(`${branch}, the deploy branch, ${why} on the forge: ${service} keeps serving its live deployment`, ref);
    const gone = await deps.branches.deleted(service, branch);
    if (gone.action === 'preview_deleted') return { status: 200, action: 'preview_deleted', detail: `${branch} ${why}: preview ${gone.preview} deleted`, ref, commit: null, deploymentId: null };
    return ignored(`${branch} ${why}; it had no preview`, ref);
  };

  switch (event.kind) {
    case 'ping':
      return ignored('ping: the webhook reaches cellhost and its secret matches');
    case 'tag':
      return ignored(`tag ${event.tag}: only branches deploy`, `refs/tags/${event.tag}`);
    case 'other':
      return ignored(`${event.name}: not an event cellhost acts on`);
    case 'push':
      if (event.commit === null) return branchGone(event.branch, 'was deleted');
      return deploy(event.branch, event.commit, event.cloneUrl);
    case 'pull_request': {
      const ref = `refs/heads/${event.branch}`;
      if (event.action === 'ignore') return ignored(`pull request #${event.number}: nothing to deploy in this change`, ref, event.commit);
      if (event.action === 'close') return branchGone(event.branch, `(pull request #${event.number}) was closed`);
      if (event.fromFork) return ignored(`pull request #${event.number} comes from a fork: not deployed (its code would run with ${service}'s variables)`, ref, event.commit);
      if (event.branch === s.deployBranch) return ignored(`pull request #${event.number} is from ${event.branch}, the deploy branch: its pushes deploy`, ref, event.commit);
      if (!s.previews) return ignored(`pull request #${event.number}: previews are off for ${service} (cellhost hooks ${service} --previews on)`, ref, event.commit);
      return deploy(event.branch, event.commit, event.cloneUrl, event.number);
    }
  }
}
