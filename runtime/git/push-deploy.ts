// What a `git push` to a service's remote does, decided in its pre-receive hook (push-hook.ts),
// before any ref moves:
// - the deploy branch (default main), fast-forward or forced: its new commit is built and goes
//   live; the build's output streams to the pushing terminal, then the URL. A failed build
//   rejects the push (the branch stays where it was) and the live version keeps serving.
// - another branch: its preview is deployed when the service has previews on; otherwise the
//   push is taken without a deploy, and a line says so.
// - a deleted branch: its preview goes; deleting the deploy branch is refused.
// - tags and other refs: taken, not deployed.
// - a push while another push to the same service is still in progress (building, or its refs
//   not yet moved) is refused at once with a line naming that push: it would race the first one's
//   ref update. A push whose refs moved since it read them (another push came first) is refused
//   too: fetch, then push again.
// Several branches in one push are handled in order, the deploy branch first; the first failed
// build rejects the whole push (git decides for every ref of a push at once), and what went live
// before it stays live.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LogHub } from '../../builder/log-hub.ts';
import type { SourceInput } from '../../builder/sources/index.ts';
import type { BranchDeploys } from '../control/branch-deploys.ts';
import type { Services } from '../control/types.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Deployment, DeploymentStore } from '../store/deployments.ts';
import type { GitRepos } from './repos.ts';
import { ZERO_OID, type PushOutput, type PushRequest, type RefUpdate } from './push-hook.ts';

const run = promisify(execFile);

export interface PushDeployDeps {
  repos: GitRepos;
  services: Services;
  branches: BranchDeploys;
  deployments: DeploymentStore;
  logs: LogHub;
  /** where the pushed commit's archive is written for the build (removed by the build) */
  uploadDir: string;
  log: Logger;
}

export interface PushDeploys {
  /** decides a push; true accepts it. `done` settles when the push's request has ended (its refs moved or not) */
  handle(service: string, req: PushRequest, out: PushOutput, done: Promise<void>): Promise<boolean>;
}

const STEP = '\x1b[1;36m==>\x1b[0m';
const BAD = '\x1b[1;31m==>\x1b[0m';
const short = (oid: string) => oid.slice(0, 12);

export function createPushDeploys(deps: PushDeployDeps): PushDeploys {
  /** the pushes in progress: service → what the next one is told */
  const active = new Map<string, string>();

  /** a tar.gz of `commit` (from the quarantined objects, before the refs move) for the pipeline */
  async function archiveOf(service: string, quarantine: string, commit: string): Promise<SourceInput> {
    const repo = deps.repos.pathOf(service);
    const objects = path.join(repo, 'objects');
    const extra: Record<string, string> = { GIT_DIR: repo };
    if (quarantine) {
      // the hook's word, checked: the quarantine receive-pack made inside this repository
      const q = path.resolve(quarantine);
      if (path.dirname(q) !== objects || !path.basename(q).startsWith('tmp_objdir-incoming-')) throw new Error(`unexpected quarantine dir ${quarantine}`);
      Object.assign(extra, { GIT_OBJECT_DIRECTORY: q, GIT_ALTERNATE_OBJECT_DIRECTORIES: objects });
    }
    await fs.mkdir(deps.uploadDir, { recursive: true, mode: 0o700 });
    const file = path.join(deps.uploadDir, `push-${crypto.randomBytes(8).toString('hex')}.tar.gz`);
    try {
      // one top dir, which the unpacker strips: the image holds the repository's root as a clone would
      await run('git', ['archive', '--format=tar.gz', '--prefix=src/', '-o', file, commit], { env: deps.repos.env(extra) });
    } catch (err) {
      await fs.rm(file, { force: true });
      throw err;
    }
    return { kind: 'tar.gz', file };
  }

  /**
   * The build log to the pushing terminal until the build ends; the deployment as it ended. The
   * log's CRLF line ends (a pty's) become LF: git starts a new `remote:` line at each CR, so a CRLF
   * would print an empty one. A lone CR (a progress bar redrawing its line) stays.
   */
  function follow(id: string, out: PushOutput): Promise<Deployment | undefined> {
    let heldCr = false;
    return new Promise((resolve) => {
      deps.logs.follow(id, {
        onChunk: (text) => {
          let t = (heldCr ? '\r' : '') + text;
          heldCr = t.endsWith('\r');
          if (heldCr) t = t.slice(0, -1);
          out.write(t.replace(/\r\n/g, '\n'));
        },
        onEnd: () => {
          if (heldCr) out.write('\r');
          resolve(deps.deployments.get(id));
        },
      });
    });
  }

  /** refusals that need no build: refs that moved meanwhile, the deploy branch deleted */
  async function check(service: string, deployBranch: string, updates: RefUpdate[]): Promise<string | null> {
    for (const u of updates) {
      const current = await deps.repos.resolve(service, u.ref);
      const expected = ZERO_OID.test(u.old) ? null : u.old;
      if (current !== expected) return `${u.ref} moved since you fetched it (another push came first): fetch, then push again`;
      if (u.ref === `refs/heads/${deployBranch}` && ZERO_OID.test(u.new)) {
        return `${deployBranch} is the deploy branch of ${service}: it cannot be deleted (change the service's deployBranch first, or delete the service)`;
      }
    }
    return null;
  }

  async function handleBranch(service: string, req: PushRequest, u: RefUpdate, branch: string, out: PushOutput): Promise<boolean> {
    if (ZERO_OID.test(u.new)) {
      const gone = await deps.branches.deleted(service, branch);
      if (gone.action === 'refused') {
        out.write(`${BAD} ${gone.reason}\n`);
        return false;
      }
      out.write(`${STEP} ${branch} deleted${gone.action === 'preview_deleted' ? `: its preview ${gone.preview} is deleted` : ''}\n`);
      return true;
    }
    const outcome = await deps.branches.deploy(service, branch, () => archiveOf(service, req.quarantine, u.new), `git-push:${branch}@${short(u.new)}`);
    if (outcome.action === 'ignored') {
      out.write(`${STEP} ${branch} pushed, not deployed: ${outcome.reason}\n`);
      return true;
    }
    const dep = outcome.deployment;
    active.set(service, `deployment ${dep.id} of ${branch}`);
    out.write(`${STEP} Deploying ${branch} (${short(u.new)}) to ${outcome.service}${outcome.action === 'preview' ? ' (a preview)' : ''}: deployment ${dep.id}\n`);
    const ended = await follow(dep.id, out);
    const target = deps.services.get(outcome.service);
    if (ended?.status === 'live') {
      out.write(`${STEP} ${outcome.service} is live at ${target.url}\n`);
      return true;
    }
    const live = target.liveDeploymentId;
    out.write(
      `${BAD} The build of ${branch} (${short(u.new)}) ${ended?.status ?? 'ended'}${ended?.errorCode ? ` (${ended.errorCode})` : ''}: push rejected. ` +
        `${live ? `${outcome.service} keeps serving deployment ${live}` : `${outcome.service} has no live deployment yet`}\n`,
    );
    return false;
  }

  return {
    async handle(service, req, out, done) {
      const busy = active.get(service);
      if (busy) {
        out.write(`${BAD} Another push to ${service} is in progress (${busy}): push again once it has finished\n`);
        return false;
      }
      active.set(service, 'a push being checked');
      void done.finally(() => active.delete(service));
      try {
        const s = deps.services.get(service);
        const refused = await check(service, s.deployBranch, req.updates);
        if (refused) {
          out.write(`${BAD} ${refused}\n`);
          return false;
        }
        const isDeploy = (u: RefUpdate) => u.ref === `refs/heads/${s.deployBranch}`;
        const ordered = [...req.updates.filter(isDeploy), ...req.updates.filter((u) => !isDeploy(u))];
        for (const u of ordered) {
          if (!u.ref.startsWith('refs/heads/')) {
            out.write(`${STEP} ${u.ref.replace(/^refs\/tags\//, 'tag ')} ${ZERO_OID.test(u.new) ? 'deleted' : 'pushed'}: only branches deploy\n`);
            continue;
          }
          if (!(await handleBranch(service, req, u, u.ref.slice('refs/heads/'.length), out))) return false;
        }
        return true;
      } catch (err) {
        deps.log.error('git.push_failed', { service, error: describeError(err) });
        out.write(`${BAD} The push could not be deployed: ${describeError(err)}\n`);
        return false;
      }
    },
  };
}
