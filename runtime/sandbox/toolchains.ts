// Where each runtime's toolchain lives on this host, so the sandbox can bind it read-only.
// /usr and /etc are always bound, so anything under them needs no bind; a toolchain elsewhere
// (nvm under /root, rustup under /root, Go in /opt) is bound at its own path, and only that dir.
// A dir the sandbox uid cannot reach (under /root, 0700) goes through the bind stage first.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RuntimeName } from '../core/names.ts';

export interface Toolchain {
  runtime: RuntimeName;
  /** the real binary found (symlinks resolved), or undefined when the toolchain is missing */
  binary?: string;
  /** host dirs to bind read-only at their own path (empty when everything is under /usr) */
  binds: string[];
  /** dirs to put first on the sandbox's PATH */
  pathDirs: string[];
  /** why the toolchain is missing, for `cellhost doctor` and the deploy error */
  missing?: string;
}

/** dirs bound into every sandbox: a toolchain under one of them needs no bind of its own */
export const ALWAYS_BOUND = ['/usr', '/etc'] as const;

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The default search: system dirs, then the per-user installers' usual homes. */
export function defaultSearchPath(): string[] {
  const home = os.homedir();
  return [...SYSTEM_PATH, path.join(home, '.cargo', 'bin'), path.join(home, '.local', 'bin'), '/usr/local/go/bin'];
}

function isAlwaysBound(p: string): boolean {
  return ALWAYS_BOUND.some((d) => p === d || p.startsWith(d + '/'));
}

function findExecutable(name: string, searchPath: readonly string[]): string | undefined {
  for (const dir of searchPath) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this dir: keep looking
    }
  }
  return undefined;
}

function askTool(file: string, args: string[]): string | undefined {
  try {
    // the tool's own idea of its home needs the platform's HOME/RUSTUP_HOME/GOROOT: inherit env
    return execFileSync(file, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function bindsFor(dir: string): string[] {
  return isAlwaysBound(dir) ? [] : [dir];
}

function locateNode(searchPath: readonly string[]): Toolchain {
  const found = findExecutable('node', searchPath);
  if (!found) return { runtime: 'node', binds: [], pathDirs: [], missing: 'node not found on the host (install nodejs)' };
  const real = realpathSync(found);
  const bin = path.dirname(real);
  // npm and global tools sit beside node under the install prefix (…/bin/node → …/)
  const prefix = path.basename(bin) === 'bin' ? path.dirname(bin) : bin;
  return { runtime: 'node', binary: real, binds: bindsFor(prefix), pathDirs: [bin] };
}

function locatePython(searchPath: readonly string[]): Toolchain {
  // Debian's interpreter is the one apt's flask/gunicorn belong to; a pyenv shim first on PATH is not
  const debian = '/usr/bin/python3';
  const found = findExecutable('python3', [path.dirname(debian)]) ?? findExecutable('python3', searchPath);
  if (!found) return { runtime: 'python', binds: [], pathDirs: [], missing: 'python3 not found on the host (install python3)' };
  const real = realpathSync(found);
  if (isAlwaysBound(real)) return { runtime: 'python', binary: real, binds: [], pathDirs: [path.dirname(found)] };
  const prefix = askTool(real, ['-c', 'import sys; print(sys.base_prefix)']) ?? path.dirname(path.dirname(real));
  return { runtime: 'python', binary: real, binds: bindsFor(prefix), pathDirs: [path.dirname(real)] };
}

function locateGo(searchPath: readonly string[]): Toolchain {
  const found = findExecutable('go', searchPath);
  if (!found) return { runtime: 'go', binds: [], pathDirs: [], missing: 'go not found on the host (install golang-go)' };
  const real = realpathSync(found);
  const goroot = askTool(real, ['env', 'GOROOT']) || path.dirname(path.dirname(real));
  return { runtime: 'go', binary: real, binds: bindsFor(realpathSync(goroot)), pathDirs: [path.join(goroot, 'bin')] };
}

function locateRust(searchPath: readonly string[]): Toolchain {
  const found = findExecutable('rustc', searchPath);
  if (!found) return { runtime: 'rust', binds: [], pathDirs: [], missing: 'rustc not found on the host (apt-get install cargo, or rustup)' };
  // through a rustup proxy this is the default toolchain's dir: binding it alone (not all of
  // ~/.rustup) is enough, and its bin/ holds the real cargo and rustc, so no rustup is needed inside
  const sysroot = askTool(found, ['--print', 'sysroot']);
  if (!sysroot) return { runtime: 'rust', binds: [], pathDirs: [], missing: `${found} --print sysroot failed (no default toolchain?)` };
  const real = realpathSync(sysroot);
  return { runtime: 'rust', binary: path.join(real, 'bin', 'rustc'), binds: bindsFor(real), pathDirs: [path.join(real, 'bin')] };
}

const cache = new Map<string, Toolchain>();

/** Finds a runtime's toolchain (cached per runtime and search path; it runs `go env` / `rustc --print` once). */
export function findToolchain(runtime: RuntimeName, searchPath: readonly string[] = defaultSearchPath()): Toolchain {
  const key = `${runtime}\0${searchPath.join(':')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const locate = { node: locateNode, python: locatePython, go: locateGo, rust: locateRust }[runtime];
  const t = locate(searchPath);
  cache.set(key, t);
  return t;
}

/** Host dirs a runtime's binaries need, to bind read-only at their own path. */
export function toolchainBinds(runtime: RuntimeName, searchPath?: readonly string[]): string[] {
  return findToolchain(runtime, searchPath).binds;
}
