// cellhost's own files that fetch-handler (edge) services need inside their sandbox: the edge
// host (runtime/edge/edge-host.mjs, the small server that imports the service's module and
// serves its fetch handler) and esbuild's binary, which bundles the module (TypeScript or not)
// at build time. The single executable cannot run esbuild's JavaScript API (its binary is a
// separate program, looked for in node_modules), so the binary itself rides along as an asset,
// like the native addons.
//
// From source they are read from the repository and node_modules; in the executable they are
// SEA assets. Either way they are written once into a directory named by their content hash,
// readable by every service uid (nothing in them is secret), and the sandbox binds that
// directory read-only at EDGE_TOOLS_MOUNT: the builds' (esbuild) and the instances' (the edge
// host) both, which is why this lives with the sandbox code they share.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getRawAsset, isSea } from 'node:sea';
import { CellhostError, describeError } from '../core/errors.ts';

/** where a sandbox sees the tools */
export const EDGE_TOOLS_MOUNT = '/opt/cellhost';
export const EDGE_HOST_FILE = 'edge-host.mjs';
/** how the edge host is run, in builds and instances alike: vm modules take V8's code cache of the bundle */
export const EDGE_HOST_NODE = ['node', '--experimental-vm-modules'] as const;
export const ESBUILD_FILE = 'esbuild';
/** the SEA asset names (build.mjs embeds them under these names) */
export const EDGE_ASSETS = { host: 'edge-host.mjs', esbuild: 'esbuild' } as const;

/** the npm package holding this platform's esbuild binary (esbuild's own naming) */
export function esbuildPackage(platform = process.platform, arch = process.arch): string {
  return `@esbuild/${platform}-${arch}`;
}

let cached: string | null = null;

/** the tools' directory on the host, written on first use */
export function edgeToolsDir(): string {
  cached ??= writeTools(readTools(), toolsRoots());
  return cached;
}

function readTools(): { host: Buffer; esbuild: Buffer } {
  try {
    if (isSea()) {
      return { host: Buffer.from(getRawAsset(EDGE_ASSETS.host) as ArrayBuffer), esbuild: Buffer.from(getRawAsset(EDGE_ASSETS.esbuild) as ArrayBuffer) };
    }
    // from source this file is runtime/sandbox/; from the plain bundle, dist/ (beside runtime/)
    const here = path.dirname(fileURLToPath(import.meta.url));
    const candidates = [path.join(here, '..', 'edge', EDGE_HOST_FILE), path.join(here, '..', 'runtime', 'edge', EDGE_HOST_FILE)];
    const hostFile = candidates.find((f) => fs.existsSync(f));
    if (!hostFile) throw new Error(`${EDGE_HOST_FILE} not found (looked at ${candidates.join(', ')})`);
    const require = createRequire(import.meta.url);
    const esbuildFile = path.join(path.dirname(require.resolve(`${esbuildPackage()}/package.json`)), 'bin', 'esbuild');
    return { host: fs.readFileSync(hostFile), esbuild: fs.readFileSync(esbuildFile) };
  } catch (err) {
    throw new CellhostError('ERR_INTERNAL', `the edge runtime's files are missing from this build of cellhost: ${describeError(err)}`, { cause: err });
  }
}

/** $XDG_CACHE_HOME or ~/.cache, else a dir of this user's under the temp dir */
function toolsRoots(): string[] {
  const roots: string[] = [];
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) roots.push(path.join(xdg, 'cellhost', 'edge'));
  const home = process.env.HOME || os.homedir();
  if (home && path.isAbsolute(home)) roots.push(path.join(home, '.cache', 'cellhost', 'edge'));
  roots.push(path.join(os.tmpdir(), `cellhost-${process.getuid?.() ?? 0}`, 'edge'));
  return roots;
}

function writeTools(files: { host: Buffer; esbuild: Buffer }, roots: string[]): string {
  const hash = createHash('sha256').update(files.host).update(files.esbuild).digest('hex').slice(0, 16);
  const failures: string[] = [];
  for (const root of roots) {
    try {
      const dir = path.join(root, hash);
      const host = path.join(dir, EDGE_HOST_FILE);
      const esbuild = path.join(dir, ESBUILD_FILE);
      if (!sameFile(host, files.host, 0o644) || !sameFile(esbuild, files.esbuild, 0o755)) {
        // written aside and renamed into place: a concurrent start never sees half a directory
        fs.mkdirSync(root, { recursive: true, mode: 0o700 });
        const tmp = fs.mkdtempSync(path.join(root, `.${hash}-`));
        fs.writeFileSync(path.join(tmp, EDGE_HOST_FILE), files.host);
        fs.writeFileSync(path.join(tmp, ESBUILD_FILE), files.esbuild);
        // explicit: the platform runs with umask 077, and the service uids read and run these
        fs.chmodSync(path.join(tmp, EDGE_HOST_FILE), 0o644);
        fs.chmodSync(path.join(tmp, ESBUILD_FILE), 0o755);
        fs.chmodSync(tmp, 0o755);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.renameSync(tmp, dir);
      }
      // the service uids read it (the bind stage lets them through the dirs above)
      fs.chmodSync(dir, 0o755);
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? st.uid)) throw new Error(`${dir} is not a directory of this user`);
      return dir;
    } catch (err) {
      failures.push(`${root}: ${describeError(err)}`);
    }
  }
  throw new CellhostError('ERR_INTERNAL', `cannot write the edge runtime's files: ${failures.join('; ')}`);
}

function sameFile(file: string, bytes: Buffer, mode: number): boolean {
  try {
    const st = fs.lstatSync(file);
    return st.isFile() && (st.mode & 0o777) === mode && st.size === bytes.length && fs.readFileSync(file).equals(bytes);
  } catch {
    return false;
  }
}
