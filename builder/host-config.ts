// The host's package-manager configuration, for builds. A build runs with HOME=/tmp in a sandbox
// that sees /usr and /etc but not the platform user's home, so without this a host whose pip,
// npm, cargo or Go is set up for a local mirror or a proxy builds against the public registries
// (and fails where those are unreachable). Read per build, so an edit applies to the next one.
//
// What is taken, and where the build finds it (pip, npm and Go look under HOME, which is /tmp):
// - pip: the user's files (~/.config/pip/pip.conf, legacy ~/.pip/pip.conf) at the same place
//   under HOME. The global ones (/etc/pip.conf, /etc/xdg/pip/pip.conf) are in /etc, which every
//   sandbox sees already; they are read here only for the local paths they name.
// - npm: ~/.npmrc at HOME/.npmrc. The global npmrc sits under node's prefix, which the sandbox
//   already binds with the toolchain.
// - cargo: $CARGO_HOME/config.toml (or its legacy name `config`). CARGO_HOME in a build is the
//   service's dependency cache, so the file goes where cargo looks next: /.cargo/config.toml, in
//   the build dir's parent chain (a project's own .cargo/config.toml still wins over it).
// - Go: the `go env -w` file ($GOENV, else ~/.config/go/env) at HOME/.config/go/env.
// The files reach the sandbox as copies on file descriptors (never a host path the build could
// look around), read-only. Whatever they hold, an npm auth token among it, the build can read.
//
// Local paths those files point at (a file:// index, find-links, a vendored cargo directory, a Go
// proxy on disk) are returned too: the build launcher binds them read-only, or the configuration
// would name what the build cannot see.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HostConfigHome } from '../runtime/core/config.ts';

export type PackageTool = 'pip' | 'npm' | 'cargo' | 'go';

export interface BuildConfigFile {
  tool: PackageTool;
  /** the host file it was copied from (for the build log) */
  source: string;
  /** where the build finds it: `home` is relative to the build's HOME; `root` an absolute path */
  target: { home: string } | { root: string };
  data: Buffer;
}

export interface HostBuildConfig {
  files: BuildConfigFile[];
  /** local dirs the configuration names, to bind read-only at the same path */
  paths: string[];
  /** URLs the configuration names (indexes, proxies, registries), for the egress check */
  urls: string[];
}

/** a configuration file larger than this is not a configuration file: left out */
const MAX_CONFIG_BYTES = 256 * 1024;

async function readSmall(file: string): Promise<Buffer | null> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile() || st.size > MAX_CONFIG_BYTES) return null;
    return await fs.readFile(file);
  } catch {
    return null;
  }
}

/**
 * pip's INI files: every `key = value` of every section, continuation lines (indented) joined
 * to their key's value, comments dropped.
 */
export function parseIni(text: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  let open: { key: string; value: string } | null = null;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || !raw.trim()) continue;
    if (/^\s/.test(raw) && open) {
      open.value = (open.value ? open.value + ' ' : '') + raw.trim();
      continue;
    }
    open = null;
    const m = /^([A-Za-z0-9_.-]+)\s*[=:]\s*(.*)$/.exec(raw);
    if (m) out.push((open = { key: m[1]!.toLowerCase().replace(/_/g, '-'), value: m[2]!.trim() }));
  }
  return out;
}

/** a local path a setting's word names: an absolute path, or a file: URL's path */
function localPath(word: string): string | null {
  if (word.startsWith('/')) return path.posix.normalize(word);
  if (/^file:/i.test(word)) {
    try {
      const p = decodeURIComponent(new URL(word).pathname);
      return p.startsWith('/') ? path.posix.normalize(p) : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** pip settings whose values are indexes, link pages or files */
const PIP_INDEX_KEYS = new Set(['index-url', 'extra-index-url', 'i']);
const PIP_PATH_KEYS = new Set(['find-links', 'f', 'constraint', 'c', 'requirement', 'r', 'cert', 'client-cert']);

/**
 * The dirs a pip setting needs. A file:// index is a PEP 503 tree whose pages usually link up
 * and out (`/opt/pypi/simple/x/` → `../../files/x.whl`): for an index ending in /simple, the
 * dir above it is what the build needs. A file (a constraint file, a cert, a links page) needs
 * its dir.
 */
async function pipPaths(entries: { key: string; value: string }[], paths: string[], urls: string[]): Promise<void> {
  for (const { key, value } of entries) {
    const isIndex = PIP_INDEX_KEYS.has(key);
    if (!isIndex && !PIP_PATH_KEYS.has(key) && key !== 'proxy') continue;
    for (const word of value.split(/\s+/).filter(Boolean)) {
      const p = localPath(word);
      if (!p) {
        if (/^https?:\/\//i.test(word)) urls.push(word);
        continue;
      }
      const st = await fs.stat(p).catch(() => null);
      if (!st) continue;
      if (st.isDirectory()) paths.push(isIndex && path.posix.basename(p) === 'simple' ? path.posix.dirname(p) : p);
      else paths.push(path.posix.dirname(p));
    }
  }
}

/** cargo's local sources: `directory = "..."`, `local-registry = "..."`, a file:// index */
async function cargoPaths(text: string, paths: string[], urls: string[]): Promise<void> {
  for (const m of text.matchAll(/^\s*(directory|local-registry|index|registry)\s*=\s*["']([^"']+)["']/gm)) {
    const p = localPath(m[2]!);
    if (!p) {
      if (/^(sparse\+)?https?:\/\//i.test(m[2]!)) urls.push(m[2]!.replace(/^sparse\+/, ''));
      continue;
    }
    const st = await fs.stat(p).catch(() => null);
    if (st) paths.push(st.isDirectory() ? p : path.posix.dirname(p));
  }
}

/** Go's env file: GOPROXY and friends; a file:// proxy is a dir on disk */
async function goPaths(text: string, paths: string[], urls: string[]): Promise<void> {
  for (const m of text.matchAll(/^\s*(GOPROXY|GONOSUMDB|GOPRIVATE|GOSUMDB)\s*=\s*(.*)$/gm)) {
    for (const word of m[2]!.split(/[,|]/).map((w) => w.trim()).filter(Boolean)) {
      const p = localPath(word);
      if (p && (await fs.stat(p).catch(() => null))?.isDirectory()) paths.push(p);
      else if (/^https?:\/\//i.test(word)) urls.push(word);
    }
  }
}

/** npm: the registries and proxies an .npmrc names, and a CA file outside /etc */
async function npmPaths(entries: { key: string; value: string }[], paths: string[], urls: string[]): Promise<void> {
  for (const { key, value } of entries) {
    if (/(^|:)registry$/.test(key) || key === 'proxy' || key === 'https-proxy') {
      if (/^https?:\/\//i.test(value)) urls.push(value);
    } else if (key === 'cafile') {
      const p = localPath(value);
      if (p && (await fs.stat(p).catch(() => null))?.isFile()) paths.push(path.posix.dirname(p));
    }
  }
}

/** dirs every sandbox sees already */
const ALWAYS_VISIBLE = ['/usr', '/etc'];

/** drops dirs the sandbox sees anyway and dirs inside another one in the list */
export function minimalDirs(dirs: readonly string[]): string[] {
  const inside = (p: string, d: string) => p === d || p.startsWith(d === '/' ? '/' : d + '/');
  const unique = [...new Set(dirs)].filter((p) => p !== '/' && !ALWAYS_VISIBLE.some((v) => inside(p, v)));
  return unique.filter((p) => !unique.some((other) => other !== p && inside(p, other))).sort();
}

/** the platform user's pip, npm, cargo and Go configuration, as builds should see it */
export async function readHostBuildConfig(where: HostConfigHome): Promise<HostBuildConfig> {
  const files: BuildConfigFile[] = [];
  const paths: string[] = [];
  const urls: string[] = [];
  const configHome = where.xdgConfigHome ?? path.join(where.home, '.config');

  // pip: the global files are visible already; the user's two (legacy first: pip reads both, and
  // the newer one wins) are copied to where pip looks under the build's HOME
  const pipGlobal = ['/etc/xdg/pip/pip.conf', '/etc/pip.conf'];
  const pipUser: [string, string][] = [
    [path.join(where.home, '.pip', 'pip.conf'), '.pip/pip.conf'],
    [path.join(configHome, 'pip', 'pip.conf'), '.config/pip/pip.conf'],
  ];
  for (const file of pipGlobal) {
    const data = await readSmall(file);
    if (data) await pipPaths(parseIni(data.toString('utf8')), paths, urls);
  }
  for (const [file, home] of pipUser) {
    const data = await readSmall(file);
    if (!data) continue;
    files.push({ tool: 'pip', source: file, target: { home }, data });
    await pipPaths(parseIni(data.toString('utf8')), paths, urls);
  }

  const npmrc = path.join(where.home, '.npmrc');
  const npm = await readSmall(npmrc);
  if (npm) {
    files.push({ tool: 'npm', source: npmrc, target: { home: '.npmrc' }, data: npm });
    await npmPaths(parseIni(npm.toString('utf8')), paths, urls);
  }

  // cargo reads `config` when both exist
  const cargoHome = where.cargoHome ?? path.join(where.home, '.cargo');
  for (const name of ['config', 'config.toml']) {
    const file = path.join(cargoHome, name);
    const data = await readSmall(file);
    if (!data) continue;
    files.push({ tool: 'cargo', source: file, target: { root: '/.cargo/config.toml' }, data });
    await cargoPaths(data.toString('utf8'), paths, urls);
    break;
  }

  if (where.goEnv !== 'off') {
    const file = where.goEnv ?? path.join(configHome, 'go', 'env');
    const data = await readSmall(file);
    if (data) {
      files.push({ tool: 'go', source: file, target: { home: '.config/go/env' }, data });
      await goPaths(data.toString('utf8'), paths, urls);
    }
  }
  return { files, paths: minimalDirs(paths), urls: [...new Set(urls)] };
}

function ipv4ToNumber(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  return octets.some((o) => o > 255) ? null : octets.reduce((n, o) => n * 256 + o, 0);
}

function inCidr(ip: number, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const b = ipv4ToNumber(base!);
  const len = Number(bits ?? 32);
  if (b === null) return false;
  const size = 2 ** (32 - len);
  return Math.floor(ip / size) === Math.floor(b / size);
}

/**
 * URLs whose host is an IPv4 address the builds' firewall drops (a LAN mirror or proxy) and that
 * `allowed` does not open: the build cannot reach them. Host names are not resolved here.
 */
export function unreachableUrls(urls: readonly string[], blocked: readonly string[], allowed: readonly string[]): { url: string; host: string }[] {
  const out: { url: string; host: string }[] = [];
  for (const url of urls) {
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      continue;
    }
    const ip = ipv4ToNumber(host);
    if (ip === null || !blocked.some((c) => inCidr(ip, c)) || allowed.some((c) => inCidr(ip, c))) continue;
    out.push({ url: url.replace(/\/\/[^/@]*@/, '//****@'), host });
  }
  return out;
}

/** http(s) URLs in variable values (PIP_INDEX_URL, HTTPS_PROXY, GOPROXY's list, ...) */
export function urlsIn(values: Iterable<string>): string[] {
  const out: string[] = [];
  for (const v of values) for (const m of v.matchAll(/https?:\/\/[^\s,|]+/gi)) out.push(m[0]);
  return out;
}
