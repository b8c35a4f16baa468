// A service's git remote on the admin listener, /git/<service>.git: git's smart-HTTP protocol
// served by git http-backend (clone, fetch, push). A push's request gets the two sockets its
// pre-receive hook talks to the platform over (push-hook.ts); the push's outcome is push-deploy's.
import type http from 'node:http';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { runHttpBackend } from './http-backend.ts';
import { answerPush, readPushRequest } from './push-hook.ts';
import type { PushDeploys } from './push-deploy.ts';
import type { GitRepos } from './repos.ts';

/** the paths of git's smart-HTTP protocol under a repository */
export const GIT_PATHS = ['info/refs', 'git-upload-pack', 'git-receive-pack'] as const;
export type GitPath = (typeof GIT_PATHS)[number];

export interface GitRemoteRequest {
  service: string;
  /** the service's deploy branch, HEAD of a repository made now */
  deployBranch: string;
  gitPath: GitPath;
  query: string;
  /** the token's name: receive-pack runs only for a known user */
  remoteUser: string;
  remoteAddr: string;
}

export interface GitRemote {
  serve(incoming: http.IncomingMessage, outgoing: http.ServerResponse, req: GitRemoteRequest): Promise<void>;
}

export function createGitRemote(deps: { repos: GitRepos; push: PushDeploys; log: Logger }): GitRemote {
  return {
    async serve(incoming, outgoing, req) {
      await deps.repos.ensure(req.service, req.deployBranch);
      const isPush = req.gitPath === 'git-receive-pack' && incoming.method === 'POST';
      const run = runHttpBackend({
        incoming,
        outgoing,
        request: { method: incoming.method ?? 'GET', pathInfo: `/${req.service}.git/${req.gitPath}`, query: req.query, remoteUser: req.remoteUser, remoteAddr: req.remoteAddr },
        projectRoot: deps.repos.root,
        env: deps.repos.env(),
        extraFds: isPush ? 2 : 0,
        log: deps.log,
      });
      if (isPush) {
        const [channel, verdict] = run.fds as [NonNullable<(typeof run.fds)[0]>, NonNullable<(typeof run.fds)[0]>];
        void readPushRequest(channel).then(async (pushed) => {
          // no request: receive-pack ended before its hook ran (nothing to update, a bad pack)
          if (!pushed) return;
          deps.log.info('git.push', { service: req.service, by: req.remoteUser, refs: pushed.updates.map((u) => u.ref) });
          await answerPush(channel, verdict, (out) => deps.push.handle(req.service, pushed, out, run.done));
        }).catch((err: unknown) => deps.log.error('git.push_hook_failed', { service: req.service, error: describeError(err) }));
      }
      await run.done;
    },
  };
}
