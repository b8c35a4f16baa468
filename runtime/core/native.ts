// Native addons. From source they load the usual way; inside the single executable they are
// SEA assets written once to a cache dir named by content hash, then loaded with process.dlopen
// (the executable cannot dlopen straight from its own memory).
// build.mjs owns the other half of this: it embeds <package>/build/Release/<name>.node as the
// asset "<name>.node" and redirects node-pty's `loadNativeModule` and the `bindings` package
// (better-sqlite3's default loader) to loadNativeAddon, so the bundle never searches node_modules.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { getRawAsset, isSea } from 'node:sea';
import { CellhostError, describeError } from './errors.ts';

/** The npm package that ships each addon. build.mjs keeps the same table. */
export const NATIVE_ADDON_PACKAGES = {
  better_sqlite3: 'better-sqlite3',
  pty: 'node-pty',
} as const;

export type NativeAddonName = keyof typeof NATIVE_ADDON_PACKAGES;

// One load per process: dlopen-ing the same addon twice would run its init twice.
const loadedAddons = new Map<NativeAddonName, unknown>();

/** The value for better-sqlite3's `nativeBinding` option: undefined means "load normally". */
export function sqliteNativeBinding(): object | undefined {
  return isSea() ? (loadNativeAddon('better_sqlite3') as object) : undefined;
}

/**
 * The exports of a native addon ("better_sqlite3" or "pty"), wherever this process runs from
 * (source, bundle or SEA). Typed `any`: addon exports have no declared types.
 */
export function loadNativeAddon(name: string): any {
  if (!Object.hasOwn(NATIVE_ADDON_PACKAGES, name)) {
    throw new CellhostError('ERR_NATIVE_ADDON', `unknown native addon "${name}"`);
  }
  const addonName = name as NativeAddonName;
  if (!loadedAddons.has(addonName)) {
    loadedAddons.set(addonName, isSea() ? loadSeaAddon(addonName) : requirePackagedAddon(addonName));
  }
  return loadedAddons.get(addonName);
}

function loadSeaAddon(name: NativeAddonName): unknown {
  let bytes: Buffer;
  try {
    // A view of the executable's own memory, not a copy: only read it. Node returns an
    // ArrayBuffer here; the `string` in its declared type belongs to getAsset's encoding form.
    bytes = Buffer.from(getRawAsset(`${name}.node`) as ArrayBuffer);
  } catch (err) {
    throw new CellhostError('ERR_NATIVE_ADDON', `native addon ${name}.node is not embedded in this executable`, {
      cause: err,
    });
  }
  const file = extractNativeAddon(name, bytes, nativeCacheRoots(process.env, os.homedir(), os.tmpdir()));
  const mod = { exports: {} as unknown };
  try {
    process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    throw new CellhostError('ERR_NATIVE_ADDON', `cannot load native addon ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
  return mod.exports;
}

// Outside the SEA (tsx, vitest, `node dist/cellhost.js`) the addon sits in node_modules; going
// through require keeps one copy in the require cache shared with the packages' own loads.
function requirePackagedAddon(name: NativeAddonName): unknown {
  const requireHere = createRequire(import.meta.url);
  let file: string;
  try {
    const main = requireHere.resolve(NATIVE_ADDON_PACKAGES[name]);
    file = path.join(path.dirname(main), '..', 'build', 'Release', `${name}.node`);
    return requireHere(file);
  } catch (err) {
    throw new CellhostError('ERR_NATIVE_ADDON', `cannot load native addon ${name}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * Where extracted addons may live, best first: $XDG_CACHE_HOME, ~/.cache, then a private
 * per-user dir under the temp dir (for services whose home is read-only or absent).
 * This runs before any Config exists (the store asks for its binding first thing), hence the env argument.
 */
export function nativeCacheRoots(
  env: Record<string, string | undefined>,
  homeDir: string,
  tmpDir: string,
  uid: number = process.getuid?.() ?? 0,
): { dir: string; isShared: boolean }[] {
  const roots: { dir: string; isShared: boolean }[] = [];
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  if (xdg && path.isAbsolute(xdg)) roots.push({ dir: path.join(xdg, 'cellhost', 'native'), isShared: false });
  const home = env.HOME || homeDir;
  if (home && path.isAbsolute(home)) roots.push({ dir: path.join(home, '.cache', 'cellhost', 'native'), isShared: false });
  roots.push({ dir: path.join(tmpDir, `cellhost-${uid}`, 'native'), isShared: true });
  return roots;
}

/**
 * Writes `bytes` to <root>/<sha256 prefix>/<name>.node in the first root that takes it and
 * returns the path. An existing file with the same bytes is reused; the write goes through a
 * temp file and a rename, so concurrent starts never see a half-written addon.
 */
export function extractNativeAddon(
  name: string,
  bytes: Buffer,
  roots: { dir: string; isShared: boolean }[],
): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const failures: string[] = [];
  for (const root of roots) {
    try {
      if (root.isShared) ensurePrivateDir(path.dirname(root.dir));
      const dir = path.join(root.dir, hash);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const file = path.join(dir, `${name}.node`);
      if (!hasSameBytes(file, bytes)) writeFileAtomically(file, bytes);
      return file;
    } catch (err) {
      failures.push(`${root.dir}: ${describeError(err)}`);
    }
  }
  throw new CellhostError('ERR_NATIVE_ADDON', `cannot extract native addon ${name}.node: ${failures.join('; ')}`);
}

function hasSameBytes(file: string, bytes: Buffer): boolean {
  let existing: Buffer;
  try {
    if (fs.statSync(file).size !== bytes.length) return false;
    existing = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  return existing.equals(bytes);
}

function writeFileAtomically(file: string, bytes: Buffer): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, bytes, { mode: 0o755 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

// In a world-writable temp dir another user could plant a library where we would load it:
// accept the dir only if it is ours, a real directory, and closed to others.
function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a private directory of this user`);
  }
}
