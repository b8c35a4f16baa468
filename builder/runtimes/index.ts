// The four runtimes: what each needs on the host, and its default build and start commands
// (used when the service leaves them empty), decided from the files in the source or image.
// Those files were written by the build (or came with the source): they are only ever looked at
// through runtime/sandbox/untrusted-files.ts, never through a link, a FIFO or a device.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CellhostError } from '../../runtime/core/errors.ts';
import type { RuntimeName } from '../../runtime/core/names.ts';
import { EDGE_HOST_FILE, EDGE_HOST_NODE } from '../../runtime/sandbox/edge-tools.ts';
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
  /**
   * commands run after the build command (the build runs them too when the service has its own):
   * bundling a fetch-handler module with esbuild. `startCommand`: the service's own, which needs none
   */
  finish?(dir: string, service: { startCommand: string | null }): Promise<string | null>;
  /** the start command when the image was never looked at for this runtime */
  fallbackStart: string;
  /** before the build: carry installed dependencies over from the previous image when its
   *  lockfile is the same, copying at most `maxBytes`; returns what was reused, for the build log */
  reuseDependencies?(previousImage: string, dir: string, opts: { maxBytes: number }): Promise<string | null>;
}

const REUSED_MARKER = 'node_modules/.cellhost-reused';

/** the start command that serves a fetch-handler module with cellhost's edge host */
export const EDGE_START = 'cellhost-edge';
/** where the build bundles a fetch-handler module (one file: its import is the cold start) */
export const EDGE_BUNDLE = '.cellhost/edge.mjs';
/** looked for, in order, when package.json names no entry */
const EDGE_ENTRIES = ['src/index.ts', 'src/index.mts', 'src/index.js', 'src/index.mjs', 'src/worker.ts', 'src/worker.js', 'index.ts', 'index.mts', 'index.mjs', 'index.js', 'worker.ts', 'worker.mjs', 'worker.js'];

/** an entry with no server of its own that exports a fetch handler (Workers' module syntax, a Hono app, a fetch function) */
export function isFetchHandlerSource(code: string): boolean {
  const exportsFetch = /export\s+default\b/.test(code) || /export\s+(async\s+)?function\s+fetch\b/.test(code) || /export\s+(const|let|var)\s+fetch\b/.test(code);
  const listens = /\.listen\s*\(/.test(code) || /\bserve\s*\(\s*\{/.test(code) || /createServer\s*\(/.test(code);
  return exportsFetch && !listens;
}

/**
 * The module an edge service serves: package.json's "module" or "main", else the first of
 * EDGE_ENTRIES. `mustExport`: only when it looks like a fetch handler (a node service whose
 * entry has no server of its own); null when there is none.
 */
async function findEdgeEntry(dir: string, notes: string[], mustExport: boolean): Promise<string | null> {
  const pkg = await readJson(dir, 'package.json', notes);
  const named = [pkg?.module, pkg?.main].find((v): v is string => typeof v === 'string' && v.trim() !== '')?.trim().replace(/^\.\//, '');
  const entry = named && (await has(dir, named)) ? named : await firstPresent(dir, EDGE_ENTRIES);
  if (!entry || entry.split('/').includes('..')) return null;
  if (!mustExport) return entry;
  const read = await readFileInside(dir, entry);
  return read.ok && isFetchHandlerSource(read.data.toString('utf8')) ? entry : null;
}

/**
 * esbuild, shipped with cellhost (CELLHOST_TOOLS is where the build sees it), bundles the module
 * and what it imports into one ES module for node: TypeScript is compiled on the way, and the
 * cold start reads one file. A `require` is defined for CommonJS dependencies that ask for Node's
 * built-ins. Then the edge host compiles the bundle, without running it, into V8's code cache
 * beside it (EDGE_BUNDLE.cache), which spares the cold start the compile.
 */
export function edgeBundleCommand(entry: string): string {
  const banner = 'import{createRequire as __cellhostRequire}from"node:module";const require=__cellhostRequire(import.meta.url);';
  const bundle = ['"$CELLHOST_TOOLS/esbuild"', shellWord(entry), '--bundle', '--platform=node', '--format=esm', '--target=node20', `--outfile=${EDGE_BUNDLE}`, `'--banner:js=${banner}'`, '--log-level=warning'].join(' ');
  return `${bundle} && ${EDGE_HOST_NODE.join(' ')} "$CELLHOST_TOOLS/${EDGE_HOST_FILE}" --write-code-cache ${EDGE_BUNDLE}`;
}

/** `cellhost-edge ENTRY`: the module to serve, relative to the app's dir; null for any other command */
export function parseEdgeStart(command: string): { entry: string } | null {
  const m = /^\s*cellhost-edge\s+(\S+)\s*$/.exec(command);
  if (!m || m[1]!.startsWith('/') || m[1]!.split('/').includes('..')) return null;
  return { entry: m[1]!.replace(/^\.\//, '') };
}

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

async function hasStartScript(dir: string): Promise<boolean> {
  const scripts = (await readJson(dir, 'package.json', []))?.scripts;
  return Boolean(scripts && typeof scripts === 'object' && typeof (scripts as Record<string, unknown>).start === 'string');
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
    async finish(dir, service) {
      // an entry with no server of its own that exports a fetch handler is served by the edge host
      if (service.startCommand || (await hasStartScript(dir))) return null;
      const entry = await findEdgeEntry(dir, [], true);
      return entry ? edgeBundleCommand(entry) : null;
    },
    async defaultStart(dir) {
      const notes: string[] = [];
      const pkg = await readJson(dir, 'package.json', notes);
      const scripts = pkg?.scripts;
      if (scripts && typeof scripts === 'object' && typeof (scripts as Record<string, unknown>).start === 'string') return { command: 'npm start', notes };
      if (await has(dir, EDGE_BUNDLE)) return { command: `${EDGE_START} ${EDGE_BUNDLE}`, notes };
      const main = typeof pkg?.main === 'string' && pkg.main.trim() ? pkg.main.trim() : ((await firstPresent(dir, ['index.js', 'server.js', 'app.js', 'main.js'])) ?? 'index.js');
      return { command: `node ${shellWord(main)}`, notes };
    },
    fallbackStart: 'node index.js',
  },
  edge: {
    name: 'edge',
    toolchain: [
      { bin: 'node', pkg: 'nodejs' },
      { bin: 'npm', pkg: 'npm' },
    ],
    prepare: async () => null,
    defaultBuild: (dir) => RUNTIME_DEFS.node.defaultBuild(dir),
    reuseDependencies: (previous, dir, opts) => RUNTIME_DEFS.node.reuseDependencies!(previous, dir, opts),
    async finish(dir, service) {
      if (service.startCommand) return null;
      const entry = await findEdgeEntry(dir, [], false);
      // said by the build: without a module there is nothing to serve
      return entry ? edgeBundleCommand(entry) : `echo "no module to serve: name it in package.json (main) or add one of ${EDGE_ENTRIES.join(', ')}" >&2; exit 1`;
    },
    async defaultStart(dir) {
      const notes: string[] = [];
      if (await has(dir, EDGE_BUNDLE)) return { command: `${EDGE_START} ${EDGE_BUNDLE}`, notes };
      const entry = await findEdgeEntry(dir, notes, false);
      return { command: `${EDGE_START} ${shellWord(entry ?? 'index.mjs')}`, notes };
    },
    fallbackStart: `${EDGE_START} ${EDGE_BUNDLE}`,
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
