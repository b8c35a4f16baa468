// The four runtimes: what each needs on the host, and its default build and start commands
// (used when the service leaves them empty), decided from the files in the source or image.
// Those files were written by the build (or came with the source): they are only ever looked at
// through runtime/sandbox/untrusted-files.ts, never through a link, a FIFO or a device.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { RuntimeName } from '../../runtime/core/names.ts';
import { findToolchain } from '../../runtime/sandbox/toolchains.ts';
import { copyTreeInside, kindInside, readFileInside } from '../../runtime/sandbox/untrusted-files.ts';

/** a default start command, with what could not be read on the way (for the build log) */
export interface StartDefault {
  command: string;
  notes: string[];
}

export interface RuntimeDef {
  name: RuntimeName;
  /** host binaries the runtime needs, with the Debian package that provides each */
  toolchain: { bin: string; pkg: string }[];
  /** commands run before the user's build command (the python venv) */
  prepare(dir: string): Promise<string | null>;
  defaultBuild(dir: string): Promise<string | null>;
  /** worked out once from the built image, and kept with its deployment */
  defaultStart(dir: string): Promise<StartDefault>;
  /** the start command when the image was never looked at for this runtime */
  fallbackStart: string;
  /** before the build: carry installed dependencies over from the previous image when its
   *  lockfile is the same, copying at most `maxBytes`; returns what was reused, for the build log */
  reuseDependencies?(previousImage: string, dir: string, opts: { maxBytes: number }): Promise<string | null>;
}

const REUSED_MARKER = 'node_modules/.cellhost-reused';

/** an entry of any kind is there (not followed, so a link is there whatever it points at) */
const has = async (dir: string, file: string) => (await kindInside(dir, file)) !== null;

async function readJson(dir: string, file: string, notes: string[]): Promise<Record<string, unknown> | null> {
  const read = await readFileInside(dir, file);
  if (!read.ok) {
    if (!read.missing) notes.push(read.reason);
    return null;
  }
  try {
    const value: unknown = JSON.parse(read.data.toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // said below
  }
  notes.push(`${file} is not a JSON object: not used`);
  return null;
}

/** a word for a shell command line: as is when plain, else single-quoted */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function firstPresent(dir: string, files: readonly string[]): Promise<string | undefined> {
  for (const f of files) if (await has(dir, f)) return f;
  return undefined;
}

export const RUNTIME_DEFS: Record<RuntimeName, RuntimeDef> = {
  node: {
    name: 'node',
    toolchain: [
      { bin: 'node', pkg: 'nodejs' },
      { bin: 'npm', pkg: 'npm' },
    ],
    prepare: async () => null,
    async defaultBuild(dir) {
      if (!(await has(dir, 'package.json'))) return null;
      const locked = (await has(dir, 'package-lock.json')) || (await has(dir, 'npm-shrinkwrap.json'));
      // node_modules carried over from the previous image for the same lockfile: what `npm ci`
      // would produce is already there, so only the marker goes
      if (await has(dir, REUSED_MARKER)) return `rm -f ${REUSED_MARKER}`;
      return locked ? 'npm ci' : 'npm install';
    },
    async reuseDependencies(previous, dir, opts) {
      const lock = 'package-lock.json';
      if (await has(dir, 'node_modules')) return null;
      // both read as regular files inside their trees: a lockfile that is a link (say to a
      // root-only file) is never read, so reuse cannot tell anyone what such a file holds
      const [a, b] = await Promise.all([readFileInside(previous, lock), readFileInside(dir, lock)]);
      if (!a.ok || !b.ok || !a.data.equals(b.data)) return null;
      const copied = await copyTreeInside(previous, 'node_modules', dir, opts);
      if (!copied) return null;
      await fsp.writeFile(path.join(dir, REUSED_MARKER), '', { flag: 'wx' });
      return 'node_modules (package-lock.json unchanged)';
    },
    async defaultStart(dir) {
      const notes: string[] = [];
      const pkg = await readJson(dir, 'package.json', notes);
      const scripts = pkg?.scripts;
      if (scripts && typeof scripts === 'object' && typeof (scripts as Record<string, unknown>).start === 'string') return { command: 'npm start', notes };
      const main = typeof pkg?.main === 'string' && pkg.main.trim() ? pkg.main.trim() : ((await firstPresent(dir, ['index.js', 'server.js', 'app.js', 'main.js'])) ?? 'index.js');
      return { command: `node ${shellWord(main)}`, notes };
    },
    fallbackStart: 'node index.js',
  },
  python: {
    name: 'python',
    toolchain: [{ bin: 'python3', pkg: 'python3 python3-venv' }],
    // the venv sees the host's system packages (Debian's flask, gunicorn, ...); without a
    // requirements file it needs no pip of its own, which saves seconds per build
    async prepare(dir) {
      if (await has(dir, '.venv/bin/python')) return null;
      const venv = 'python3 -m venv --system-site-packages --without-pip .venv';
      if (!(await has(dir, 'requirements.txt'))) return venv;
      // the venv's own pip costs ~8 s to install: use the host's (Debian's python3-pip) through
      // the venv's python, which installs into the venv; bundle a pip only when the host has none
      return [
        venv,
        `if python3 -c 'import pip' 2>/dev/null; then printf '#!/bin/sh\\nexec "$(dirname "$0")/python" -m pip "$@"\\n' > .venv/bin/pip && chmod +x .venv/bin/pip; else .venv/bin/python -m ensurepip --default-pip >/dev/null; fi`,
      ].join('\n');
    },
    defaultBuild: async (dir) => ((await has(dir, 'requirements.txt')) ? 'pip install -r requirements.txt' : null),
    async defaultStart(dir) {
      const entry = (await firstPresent(dir, ['app.py', 'main.py', 'server.py'])) ?? 'app.py';
      return { command: `python ${entry}`, notes: [] };
    },
    fallbackStart: 'python app.py',
  },
  go: {
    name: 'go',
    toolchain: [{ bin: 'go', pkg: 'golang-go' }],
    prepare: async () => null,
    defaultBuild: async () => 'go build -o app .',
    defaultStart: async () => ({ command: './app', notes: [] }),
    fallbackStart: './app',
  },
  rust: {
    name: 'rust',
    toolchain: [{ bin: 'cargo', pkg: 'cargo' }],
    prepare: async () => null,
    defaultBuild: async () => 'cargo build --release',
    async defaultStart(dir) {
      const notes: string[] = [];
      const read = await readFileInside(dir, 'Cargo.toml');
      // no manifest: the build failed first and said so
      if (!read.ok && !read.missing) notes.push(read.reason);
      const toml = read.ok ? read.data.toString('utf8') : '';
      const name = /\[package\][^[]*?\bname\s*=\s*"([^"]+)"/.exec(toml)?.[1] ?? 'app';
      return { command: `./target/release/${shellWord(name)}`, notes };
    },
    fallbackStart: './target/release/app',
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
