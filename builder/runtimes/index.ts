// The four runtimes: what each needs on the host, and its default build and start commands
// (used when the service leaves them empty), decided from the files in the source.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { RuntimeName } from '../../runtime/core/names.ts';
import { findToolchain } from '../../runtime/sandbox/toolchains.ts';

export interface RuntimeDef {
  name: RuntimeName;
  /** host binaries the runtime needs, with the Debian package that provides each */
  toolchain: { bin: string; pkg: string }[];
  /** commands run before the user's build command (the python venv) */
  prepare(dir: string): string | null;
  defaultBuild(dir: string): string | null;
  defaultStart(dir: string): string;
  /** before the build: carry installed dependencies over from the previous image when its
   *  lockfile is the same; returns what was reused, for the build log */
  reuseDependencies?(previousImage: string, dir: string): Promise<string | null>;
}

const REUSED_MARKER = 'node_modules/.cellhost-reused';

const has = (dir: string, file: string) => fs.existsSync(path.join(dir, file));

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export const RUNTIME_DEFS: Record<RuntimeName, RuntimeDef> = {
  node: {
    name: 'node',
    toolchain: [
      { bin: 'node', pkg: 'nodejs' },
      { bin: 'npm', pkg: 'npm' },
    ],
    prepare: () => null,
    defaultBuild(dir) {
      if (!has(dir, 'package.json')) return null;
      const locked = has(dir, 'package-lock.json') || has(dir, 'npm-shrinkwrap.json');
      // node_modules carried over from the previous image for the same lockfile: what `npm ci`
      // would produce is already there, so only the marker goes
      if (has(dir, REUSED_MARKER)) return `rm -f ${REUSED_MARKER}`;
      return locked ? 'npm ci' : 'npm install';
    },
    async reuseDependencies(previous, dir) {
      const lock = 'package-lock.json';
      if (has(dir, 'node_modules') || !has(dir, lock) || !has(previous, lock) || !has(previous, 'node_modules')) return null;
      const [a, b] = await Promise.all([fsp.readFile(path.join(previous, lock)), fsp.readFile(path.join(dir, lock))]);
      if (!a.equals(b)) return null;
      await fsp.cp(path.join(previous, 'node_modules'), path.join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      await fsp.writeFile(path.join(dir, REUSED_MARKER), '');
      return 'node_modules (package-lock.json unchanged)';
    },
    defaultStart(dir) {
      const pkg = readJson(path.join(dir, 'package.json'));
      const scripts = (pkg?.scripts ?? {}) as Record<string, string>;
      if (scripts.start) return 'npm start';
      const main = typeof pkg?.main === 'string' ? pkg.main : ['index.js', 'server.js', 'app.js', 'main.js'].find((f) => has(dir, f)) ?? 'index.js';
      return `node ${main}`;
    },
  },
  python: {
    name: 'python',
    toolchain: [{ bin: 'python3', pkg: 'python3 python3-venv' }],
    // the venv sees the host's system packages (Debian's flask, gunicorn, ...); without a
    // requirements file it needs no pip of its own, which saves seconds per build
    prepare(dir) {
      if (has(dir, '.venv/bin/python')) return null;
      const venv = 'python3 -m venv --system-site-packages --without-pip .venv';
      if (!has(dir, 'requirements.txt')) return venv;
      // the venv's own pip costs ~8 s to install: use the host's (Debian's python3-pip) through
      // the venv's python, which installs into the venv; bundle a pip only when the host has none
      return [
        venv,
        `if python3 -c 'import pip' 2>/dev/null; then printf '#!/bin/sh\\nexec "$(dirname "$0")/python" -m pip "$@"\\n' > .venv/bin/pip && chmod +x .venv/bin/pip; else .venv/bin/python -m ensurepip --default-pip >/dev/null; fi`,
      ].join('\n');
    },
    defaultBuild: (dir) => (has(dir, 'requirements.txt') ? 'pip install -r requirements.txt' : null),
    defaultStart(dir) {
      const entry = ['app.py', 'main.py', 'server.py'].find((f) => has(dir, f)) ?? 'app.py';
      return `python ${entry}`;
    },
  },
  go: {
    name: 'go',
    toolchain: [{ bin: 'go', pkg: 'golang-go' }],
    prepare: () => null,
    defaultBuild: () => 'go build -o app .',
    defaultStart: () => './app',
  },
  rust: {
    name: 'rust',
    toolchain: [{ bin: 'cargo', pkg: 'cargo' }],
    prepare: () => null,
    defaultBuild: () => 'cargo build --release',
    defaultStart(dir) {
      let toml = '';
      try {
        toml = fs.readFileSync(path.join(dir, 'Cargo.toml'), 'utf8');
      } catch {
        // no manifest: the build fails first and says so
      }
      const name = /\[package\][^[]*?\bname\s*=\s*"([^"]+)"/.exec(toml)?.[1] ?? 'app';
      return `./target/release/${name}`;
    },
  },
};

/** system dirs, always bound into the sandbox and on its PATH */
const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findBinary(bin: string, dirs: readonly string[] = SEARCH_PATH): string | null {
  for (const dir of dirs) {
    const file = path.join(dir, bin);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this dir
    }
  }
  return null;
}

/**
 * The runtime's binaries that a build or an instance would not find: looked up where the sandbox
 * looks (the toolchain's own dirs, e.g. rustup's default toolchain under ~/.rustup, then the
 * system dirs), so a toolchain installed per user counts as present. `searchPath` replaces the
 * usual homes the toolchain is looked for in (tests).
 */
export function findMissingToolchain(runtime: RuntimeName, searchPath?: readonly string[]): { bin: string; pkg: string }[] {
  const needed = RUNTIME_DEFS[runtime].toolchain;
  const found = findToolchain(runtime, searchPath);
  if (!found.binary) return needed;
  const dirs = [...found.pathDirs, ...SEARCH_PATH];
  return needed.filter((t) => !findBinary(t.bin, dirs));
}

/** throws ERR_RUNTIME_MISSING naming what to install when the runtime's toolchain is absent */
export function checkToolchain(runtime: RuntimeName, searchPath?: readonly string[]): void {
  const missing = findMissingToolchain(runtime, searchPath);
  if (missing.length) {
    throw new CellhostError(
      'ERR_RUNTIME_MISSING',
      `the ${runtime} runtime needs ${missing.map((m) => `"${m.bin}"`).join(' and ')} on the host: install it (apt-get install ${missing.map((m) => m.pkg).join(' ')})`,
    );
  }
}
