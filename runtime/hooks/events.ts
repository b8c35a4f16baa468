// A verified delivery's body read into what cellhost acts on, whichever forge sent it:
//   GitHub   push, pull_request (opened, reopened, synchronize, closed), delete, ping
//   Gitea    push, pull_request (opened, reopened, synchronized, closed), delete   (Forgejo alike)
//   GitLab   Push Hook, Merge Request Hook (open, reopen, update with new commits, close, merge)
//   generic  {"ref": "refs/heads/main" or "main", "commit"?: sha, "deleted"?: true, "repository"?: url}
// A body is JSON, or (GitHub, Gitea) a form whose `payload` field holds the JSON. Anything that
// is not what its event has is ERR_HOOK_MALFORMED; events cellhost has no use for are "other".
import { CellhostError } from '../core/errors.ts';
import type { Forge } from './signatures.ts';

export type HookEvent =
  | { kind: 'ping' }
  /** a branch moved: `commit` null when it was deleted */
  | { kind: 'push'; branch: string; commit: string | null; cloneUrl: string | null }
  | { kind: 'tag'; tag: string }
  | { kind: 'pull_request'; action: 'deploy' | 'close' | 'ignore'; number: number; branch: string; commit: string; fromFork: boolean; cloneUrl: string | null }
  | { kind: 'other'; name: string };

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const ZERO = /^0+$/;

function malformed(why: string): CellhostError {
  return new CellhostError('ERR_HOOK_MALFORMED', `the delivery is not a well-formed event: ${why}`);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw malformed(`${where}${key} is missing or not a string`);
  return v;
}

function obj(o: Json, key: string, where: string): Json {
  const v = o[key];
  if (!isObject(v)) throw malformed(`${where}${key} is missing or not an object`);
  return v;
}

function sha(o: Json, key: string, where: string): string {
  const v = str(o, key, where);
  if (!SHA.test(v)) throw malformed(`${where}${key} is not a commit id`);
  return v;
}

const optionalString = (o: Json | undefined, key: string) => (o && typeof o[key] === 'string' && o[key] !== '' ? (o[key] as string) : null);

/** the JSON the body holds: a JSON body, or a form with the JSON in its `payload` field */
export function readBody(body: Buffer, contentType: string | undefined): Json {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  let text = body.toString('utf8');
  if (type === 'application/x-www-form-urlencoded') {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw malformed('a form body without a payload field');
    text = payload;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw malformed('the body is not JSON');
  }
  if (!isObject(parsed)) throw malformed('the body is not a JSON object');
  return parsed;
}

/** a push's ref as a branch or tag */
function refEvent(ref: string, commit: string | null, cloneUrl: string | null): HookEvent {
  if (ref.startsWith('refs/heads/')) return { kind: 'push', branch: ref.slice('refs/heads/'.length), commit, cloneUrl };
  if (ref.startsWith('refs/tags/')) return { kind: 'tag', tag: ref.slice('refs/tags/'.length) };
  return { kind: 'other', name: `push of ${ref}` };
}

function githubLike(event: string, body: Json, forge: Forge): HookEvent {
  const repo = isObject(body.repository) ? body.repository : undefined;
  const cloneUrl = optionalString(repo, 'clone_url');
  switch (event) {
    case 'ping':
      return { kind: 'ping' };
    case 'push': {
      const ref = str(body, 'ref', '');
      const after = sha(body, 'after', '');
      return refEvent(ref, ZERO.test(after) || body.deleted === true ? null : after, cloneUrl);
    }
    case 'delete': {
      const ref = str(body, 'ref', '');
      if (body.ref_type !== 'branch') return { kind: 'other', name: `delete of a ${String(body.ref_type)}` };
      return { kind: 'push', branch: ref.replace(/^refs\/heads\//, ''), commit: null, cloneUrl };
    }
    case 'pull_request': {
      const action = str(body, 'action', '');
      const pr = obj(body, 'pull_request', '');
      const head = obj(pr, 'head', 'pull_request.');
      const base = obj(pr, 'base', 'pull_request.');
      const number = typeof body.number === 'number' ? body.number : typeof pr.number === 'number' ? pr.number : NaN;
      if (!Number.isInteger(number)) throw malformed('number is missing');
      // a fork's pull request: its head lives in another repository
      const headRepo = forge === 'github' ? (isObject(head.repo) ? head.repo.id : null) : (head.repo_id ?? (isObject(head.repo) ? head.repo.id : null));
      const baseRepo = forge === 'github' ? (isObject(base.repo) ? base.repo.id : null) : (base.repo_id ?? (isObject(base.repo) ? base.repo.id : null));
      const deploy = ['opened', 'reopened', 'synchronize', 'synchronized'].includes(action);
      return {
        kind: 'pull_request',
        action: deploy ? 'deploy' : action === 'closed' ? 'close' : 'ignore',
        number,
        branch: str(head, 'ref', 'pull_request.head.'),
        commit: sha(head, 'sha', 'pull_request.head.'),
        fromFork: headRepo !== baseRepo,
        cloneUrl,
      };
    }
    default:
      return { kind: 'other', name: event || 'an event without a name' };
  }
}

function gitlab(event: string, body: Json): HookEvent {
  const project = isObject(body.project) ? body.project : undefined;
  const cloneUrl = optionalString(project, 'git_http_url') ?? optionalString(isObject(body.repository) ? body.repository : undefined, 'git_http_url');
  const kind = typeof body.object_kind === 'string' ? body.object_kind : '';
  if (event === 'Push Hook' || event === 'Push Event' || kind === 'push') {
    const after = sha(body, 'after', '');
    return refEvent(str(body, 'ref', ''), ZERO.test(after) ? null : after, cloneUrl);
  }
  if (event === 'Tag Push Hook' || kind === 'tag_push') return { kind: 'tag', tag: str(body, 'ref', '').replace(/^refs\/tags\//, '') };
  if (event === 'Merge Request Hook' || kind === 'merge_request') {
    const attrs = obj(body, 'object_attributes', '');
    const action = typeof attrs.action === 'string' ? attrs.action : '';
    const last = obj(attrs, 'last_commit', 'object_attributes.');
    const iid = attrs.iid;
    if (typeof iid !== 'number') throw malformed('object_attributes.iid is missing');
    // an update with new commits says so with oldrev; other updates (title, labels) do not build
    const deploy = action === 'open' || action === 'reopen' || (action === 'update' && typeof attrs.oldrev === 'string');
    return {
      kind: 'pull_request',
      action: deploy ? 'deploy' : action === 'close' || action === 'merge' ? 'close' : 'ignore',
      number: iid,
      branch: str(attrs, 'source_branch', 'object_attributes.'),
      commit: sha(last, 'id', 'object_attributes.last_commit.'),
      fromFork: attrs.source_project_id !== attrs.target_project_id,
      cloneUrl: optionalString(isObject(attrs.target) ? attrs.target : undefined, 'git_http_url') ?? cloneUrl,
    };
  }
  return { kind: 'other', name: event || kind || 'an event without a name' };
}

function generic(body: Json): HookEvent {
  const ref = str(body, 'ref', '');
  const full = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
  const deleted = body.deleted === true;
  const commit = deleted ? null : body.commit === undefined ? null : sha(body, 'commit', '');
  if (!deleted && commit === null) throw malformed('commit is missing (the commit to deploy), and deleted is not true');
  const repository = body.repository === undefined ? null : str(body, 'repository', '');
  return refEvent(full, commit, repository);
}

export function parseEvent(forge: Forge, event: string, body: Json): HookEvent {
  switch (forge) {
    case 'github':
    case 'gitea':
    case 'forgejo':
      return githubLike(event, body, forge);
    case 'gitlab':
      return gitlab(event, body);
    case 'generic':
      return generic(body);
  }
}
