// Which git URLs cellhost clones. A deploy token holder chooses the URL, and git can do far more
// than fetch from a remote host: a local path or file:// reads any repository the cloning user can
// (with its alternates: other repositories' objects too), `<transport>::<address>` runs a remote
// helper (fd:: waits on a file descriptor, ext:: runs a command), and git:// is unauthenticated
// and unencrypted. Allowed: https://, ssh:// and scp-style `user@host:path`; http:// only when the
// operator allows it (CELLHOST_GIT_ALLOW_HTTP=1: a LAN server without TLS), local paths and
// file:// only when the operator allows them (CELLHOST_GIT_ALLOW_LOCAL=1: tests, a single-user
// host). The same list is given to git itself (protocol.allow), so a redirect or a submodule
// cannot reach another transport either.
import path from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';

export interface GitUrlPolicy {
  /** local paths and file:// URLs */
  allowLocal: boolean;
  /** plain http:// */
  allowHttp: boolean;
}

export const DEFAULT_GIT_POLICY: Readonly<GitUrlPolicy> = Object.freeze({ allowLocal: false, allowHttp: false });

export type GitUrl = { transport: 'https' | 'http' | 'ssh' } | { transport: 'file'; path: string };

/** Hides credentials written into a URL (`https://user:token@host/...`). */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

function refuse(url: string, why: string): CellhostError {
  return new CellhostError('ERR_SOURCE_GIT_URL', `git source '${redactUrl(url)}' is not allowed: ${why}`, { details: { field: 'git' } });
}

const ALLOWED = 'use an https://, ssh:// or user@host:path URL';

/** Classifies a git URL, or throws ERR_SOURCE_GIT_URL saying why cellhost does not clone it. */
export function checkGitUrl(url: string, policy: GitUrlPolicy = DEFAULT_GIT_POLICY): GitUrl {
  if (url === '' || url.startsWith('-') || /[\0-\x20\x7f]/.test(url)) throw refuse(url, `it is empty, starts with '-' or holds spaces or control characters: ${ALLOWED}`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'https') {
    if (!/^https:\/\/[^/?#]+/i.test(url)) throw refuse(url, 'it names no host');
    return { transport: 'https' };
  }
  if (scheme === 'http') {
    if (!policy.allowHttp) throw refuse(url, `plain http is off (the operator can allow it with CELLHOST_GIT_ALLOW_HTTP=1): ${ALLOWED}`);
    if (!/^http:\/\/[^/?#]+/i.test(url)) throw refuse(url, 'it names no host');
    return { transport: 'http' };
  }
  if (scheme === 'ssh') {
    if (!/^ssh:\/\/[^/?#-][^/?#]*/i.test(url) || /^ssh:\/\/[^/@]*@-/i.test(url)) throw refuse(url, 'it names no host, or one that starts with -');
    return { transport: 'ssh' };
  }
  if (scheme === 'file') return local(url, url.slice('file://'.length), policy);
  if (scheme !== undefined) throw refuse(url, `${scheme}:// is not a transport cellhost uses: ${ALLOWED}`);
  // git's remote helpers: <transport>::<address> (fd::, ext::, and any git-remote-* on PATH)
  if (/^[A-Za-z0-9][A-Za-z0-9+.-]*::/.test(url)) throw refuse(url, `git remote helpers (${url.split('::')[0]}::) are not used: ${ALLOWED}`);
  // scp-style ssh, as git reads it: a ':' before any '/'
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash)) {
    if (!/^(?:[A-Za-z0-9._~+-]+@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):/.test(url) || /^(?:[^@]*@)?-/.test(url)) throw refuse(url, `it is not a user@host:path address: ${ALLOWED}`);
    return { transport: 'ssh' };
  }
  return local(url, url, policy);
}

function local(url: string, p: string, policy: GitUrlPolicy): GitUrl {
  if (!policy.allowLocal) throw refuse(url, `local repositories are off (the operator can allow them with CELLHOST_GIT_ALLOW_LOCAL=1): ${ALLOWED}`);
  // the path git reads and the path the sandbox shows must be the same: no escapes to decode, no
  // segments to resolve
  if (!path.isAbsolute(p) || p.includes('%') || path.normalize(p) !== p) throw refuse(url, 'a local repository must be given by its plain absolute path');
  return { transport: 'file', path: p };
}

/** git's own settings for the allowed transports: everything else is refused by git too */
export function protocolConfig(policy: GitUrlPolicy): string[] {
  const allowed = ['https', 'ssh', ...(policy.allowHttp ? ['http'] : []), ...(policy.allowLocal ? ['file'] : [])];
  return ['-c', 'protocol.allow=never', ...allowed.flatMap((p) => ['-c', `protocol.${p}.allow=always`])];
}

/** the same list as GIT_ALLOW_PROTOCOL, which takes precedence over any configuration git reads */
export function allowedProtocols(policy: GitUrlPolicy): string {
  return ['https', 'ssh', ...(policy.allowHttp ? ['http'] : []), ...(policy.allowLocal ? ['file'] : [])].join(':');
}
