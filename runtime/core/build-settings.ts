// The texts of CELLHOST_BUILD_ENV and CELLHOST_BUILD_BINDS, parsed. Pure: config.ts resolves the
// names against the platform's environment.
import path from 'node:path';
import { envNameSchema } from './names.ts';

/** one entry of CELLHOST_BUILD_ENV: a name to pass from the platform's environment, or a fixed value */
export interface BuildEnvEntry {
  name: string;
  value?: string;
}

/**
 * Variables every build sets itself (its caches, its HOME, its PATH): listing one would look like
 * it worked and change nothing, so it is refused.
 */
export const BUILD_OWN_VARIABLES: readonly string[] = [
  'PATH',
  'HOME',
  'TMPDIR',
  'VIRTUAL_ENV',
  'npm_config_cache',
  'npm_config_update_notifier',
  'npm_config_fund',
  'PIP_CACHE_DIR',
  'PIP_DISABLE_PIP_VERSION_CHECK',
  'GOCACHE',
  'GOMODCACHE',
  'GOFLAGS',
  'CARGO_HOME',
  'CARGO_TARGET_DIR',
];

/**
 * Shell-like words: whitespace separates them, single and double quotes keep spaces in a value
 * (PIP_EXTRA_INDEX_URL takes a space-separated list), a backslash escapes the next character
 * outside single quotes.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i]!;
      else word += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i]!;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw new Error(`a ${quote} quote is not closed`);
  if (word !== null) words.push(word);
  return words;
}

/**
 * "PIP_INDEX_URL,HTTPS_PROXY GOPROXY=https://goproxy.lan,direct" → the names PIP_INDEX_URL and
 * HTTPS_PROXY, and GOPROXY with its value. A word without "=" is one or more names (commas
 * allowed between them); a word with "=" is one NAME=value pair (its value keeps its commas).
 * Throws a message naming what is wrong.
 */
export function parseBuildEnv(text: string): BuildEnvEntry[] {
  const out = new Map<string, BuildEnvEntry>();
  for (const word of splitWords(text)) {
    const eq = word.indexOf('=');
    const entries: BuildEnvEntry[] = eq < 0 ? word.split(',').filter(Boolean).map((name) => ({ name })) : [{ name: word.slice(0, eq), value: word.slice(eq + 1) }];
    for (const e of entries) {
      if (!envNameSchema.safeParse(e.name).success) throw new Error(`"${e.name}" is not a variable name`);
      if (e.name.startsWith('CELLHOST_') || BUILD_OWN_VARIABLES.includes(e.name)) {
        throw new Error(`${e.name} is set by every build itself (its sandbox, caches and paths) and cannot be passed`);
      }
      if (e.value?.includes('\0')) throw new Error(`the value of ${e.name} holds a NUL byte`);
      out.set(e.name, e);
    }
  }
  return [...out.values()];
}

/** where builds have their own things: a host dir bound over one of these would hide them */
const SANDBOX_OWN = ['/app', '/cache', '/tmp', '/proc', '/dev'];

/**
 * "/opt/wheels, /srv/pypi" → absolute, normalised host paths bound read-only at the same path.
 * Refuses "/", the sandbox's own places, and anything holding or inside the platform's data dir
 * or host run dir (a build would read other services' images, env key and sandbox files).
 */
export function parseBuildBinds(text: string, opts: { dataDir: string; hostRunDir: string }): string[] {
  const out: string[] = [];
  const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
  for (const item of text.split(/[,\s]+/).filter(Boolean)) {
    if (!item.startsWith('/')) throw new Error(`"${item}" is not an absolute path`);
    const p = path.posix.normalize(item).replace(/(.)\/+$/, '$1');
    if (p === '/') throw new Error('"/" would show the whole host to builds');
    const own = SANDBOX_OWN.find((d) => within(p, d));
    if (own) throw new Error(`${p} is inside ${own}, which every build has of its own`);
    for (const [what, dir] of [['data dir', opts.dataDir], ['host run dir', opts.hostRunDir]] as const) {
      if (within(p, dir) || within(dir, p)) throw new Error(`${p} holds or is inside the platform's ${what} (${dir}): builds must never see it`);
    }
    if (!out.includes(p)) out.push(p);
  }
  return out;
}
