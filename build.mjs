#!/usr/bin/env node
// `npm run build`: dist/cellhost, one executable that runs from any directory with no
// node_modules beside it. esbuild bundle → Node SEA blob (native addons as assets) → a copy of
// this node binary, stripped, with the blob injected by postject. dist/cellhost.js is the same
// bundle, runnable with plain node (it then loads the addons from node_modules) for debugging.
//
//   node build.mjs [--entry FILE]     (--entry: another entry point, for experiments)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const dist = path.join(root, 'dist');
const work = path.join(dist, '.build');
const bundleFile = path.join(dist, 'cellhost.js');
const exeFile = path.join(dist, 'cellhost');
const nativeModule = path.join(root, 'runtime', 'core', 'native.ts');

// The addons embedded as SEA assets, "<name>.node" → the file. runtime/core/native.ts keeps the
// same name → package table and extracts them at run time.
const NATIVE_ADDON_PACKAGES = { better_sqlite3: 'better-sqlite3', pty: 'node-pty' };
// Node's SEA fuse: postject flips its trailing 0 to 1 so node knows a blob is injected.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

class BuildError extends Error {}

async function step(label, fn) {
  const started = performance.now();
  process.stderr.write(`build: ${label} ...`);
  try {
    const result = await fn();
    process.stderr.write(` ${formatMs(performance.now() - started)}\n`);
    return result;
  } catch (err) {
    process.stderr.write(' FAILED\n');
    const detail = err instanceof BuildError ? err.message : err?.stack ?? String(err);
    throw new BuildError(`${label} failed: ${detail}`);
  }
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function formatBytes(n) {
  return `${(n / 1024 / 1024).toFixed(1)} MiB (${n} bytes)`;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw new BuildError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    throw new BuildError(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}${out ? `:\n${out}` : ''}`);
  }
  return r;
}

// Files edge services need inside their sandbox, embedded as assets under these names
// (runtime/sandbox/edge-tools.ts writes them out): the edge host, run as is by the host's node,
// and esbuild's binary, which bundles a fetch-handler module at build time. The executable cannot
// run esbuild through its JavaScript API, which looks for the binary in node_modules.
function edgeAssets() {
  const host = path.join(root, 'runtime', 'edge', 'edge-host.mjs');
  const pkg = `@esbuild/${process.platform}-${process.arch}`;
  const esbuild = path.join(path.dirname(require.resolve(`${pkg}/package.json`, { paths: [root] })), 'bin', 'esbuild');
  for (const f of [host, esbuild]) if (!fs.existsSync(f)) throw new BuildError(`${f} is missing: run npm ci`);
  return { 'edge-host.mjs': host, esbuild };
}

function addonFile(name) {
  const main = require.resolve(NATIVE_ADDON_PACKAGES[name], { paths: [root] });
  const file = path.join(path.dirname(main), '..', 'build', 'Release', `${name}.node`);
  if (!fs.existsSync(file)) throw new BuildError(`${file} is missing: run npm ci (it compiles the addon)`);
  return file;
}

/**
 * What the SEA cannot do, rewritten at bundle time.
 * - Native loaders go to runtime/core/native.ts: node-pty's `loadNativeModule` searches build
 *   dirs next to its own file, and `bindings` (better-sqlite3's loader when no `nativeBinding`
 *   is given) walks the stack to find its caller's package; neither exists in a SEA.
 * - Dynamic imports of built-ins become requires (see below).
 */
const seaCompatPlugin = {
  name: 'cellhost-sea-compat',
  setup(build) {
    const loader = JSON.stringify(nativeModule);
    build.onLoad({ filter: /[\\/]node_modules[\\/]node-pty[\\/]lib[\\/]utils\.js$/ }, () => ({
      resolveDir: root,
      loader: 'js',
      contents: `
const { loadNativeAddon } = require(${loader});
exports.assign = function assign(target, ...sources) {
  sources.forEach((source) => Object.keys(source).forEach((key) => { target[key] = source[key]; }));
  return target;
};
// dir only feeds the path of spawn-helper, which node-pty uses on macOS alone.
exports.loadNativeModule = function loadNativeModule(name) {
  return { dir: '.', module: loadNativeAddon(name) };
};
`,
    }));
    // A SEA built with a code cache has no dynamic-import callback: `await import('node:fs')`
    // throws there ("A dynamic import callback was not specified"). Route dynamic imports of
    // built-ins through a tiny CommonJS module, which esbuild turns into a plain require.
    build.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      if (args.kind !== 'dynamic-import' || !isBuiltin(args.path)) return undefined;
      return { path: args.path, namespace: 'cellhost-builtin' };
    });
    build.onLoad({ filter: /.*/, namespace: 'cellhost-builtin' }, (args) => ({
      loader: 'js',
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
    }));
    // optional packages a dependency probes for inside try/catch at load time and is not
    // installed (debug, under acme-client, looks for supports-color): a module that throws as a
    // missing one would, so the SEA never calls require() for it (its require warns on stderr
    // about any module that is not built in)
    build.onResolve({ filter: /^supports-color$/ }, (args) => ({ path: args.path, namespace: 'cellhost-absent' }));
    build.onLoad({ filter: /.*/, namespace: 'cellhost-absent' }, (args) => ({
      loader: 'js',
      contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}'`)}), { code: 'MODULE_NOT_FOUND' });`,
    }));
    build.onLoad({ filter: /[\\/]node_modules[\\/]bindings[\\/]bindings\.js$/ }, () => ({
      resolveDir: root,
      loader: 'js',
      contents: `
const { loadNativeAddon } = require(${loader});
module.exports = function bindings(opts) {
  const file = typeof opts === 'string' ? opts : opts.bindings;
  return loadNativeAddon(file.replace(/\\.node$/, ''));
};
`,
    }));
  },
};

async function bundle(entry) {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile: bundleFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx',
    // no keepNames: nothing reads function names, and its __name() wrappers cost ~4 % of the
    // router's CPU per request (a closure created per request is renamed each time)
    keepNames: false,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [seaCompatPlugin],
    // jsonc-parser's main entry is a UMD module that loads its parts through a require esbuild
    // cannot follow: its ES module build bundles whole
    alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
    // The source is ESM; CommonJS output has no import.meta, so give it the bundle's own
    // location (in the SEA, __filename is the executable).
    define: {
      'import.meta.url': '__cellhost_import_meta_url',
      'import.meta.filename': '__filename',
      'import.meta.dirname': '__dirname',
    },
    banner: { js: 'var __cellhost_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  });
  for (const w of result.warnings) {
    const at = w.location ? `${w.location.file}:${w.location.line}: ` : '';
    process.stderr.write(`\n  warning: ${at}${w.text}`);
  }
  if (result.warnings.length > 0) process.stderr.write('\n ');
}

async function bundleOrExplain(entry) {
  try {
    await bundle(entry);
  } catch (err) {
    // esbuild's own message lists each error with file and line.
    throw new BuildError(err?.errors?.length ? err.message : String(err?.stack ?? err));
  }
}

// built-ins of newer Nodes that a dependency only probes for inside try/catch (undici's
// runtime-features): absent on Node 20, which the probe expects
const PROBED_BUILTINS = new Set(['node:sqlite']);

function checkBundleIsSelfContained() {
  // A require() esbuild could not resolve statically would look in node_modules at run time,
  // which the SEA cannot do: its require only knows built-in modules.
  // JSDoc lines (` * @param {import('x').T}`, `/** @type {import('x')} */`) are comments, not code: leave them out
  const text = fs
    .readFileSync(bundleFile, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
    .join('\n');
  const offenders = new Set();
  for (const m of text.matchAll(/\brequire\(\s*(["'])([^"']+)\1\s*\)/g)) {
    if (!isBuiltin(m[2]) && !PROBED_BUILTINS.has(m[2])) offenders.add(m[2]);
  }
  if (offenders.size > 0) {
    throw new BuildError(`the bundle still requires non-built-in modules at run time: ${[...offenders].join(', ')}`);
  }
  // and the code-cached SEA cannot run import() at all (see seaCompatPlugin)
  const dynamicImports = [...text.matchAll(/\bimport\(\s*(["'])([^"']+)\1\s*\)/g)].map((m) => m[2]);
  if (dynamicImports.length > 0) {
    throw new BuildError(`the bundle still has dynamic import() of: ${dynamicImports.join(', ')}`);
  }
}

async function assembleExecutable(exe, blob, strip) {
  await step(`copy ${process.execPath}`, () => {
    fs.rmSync(exe, { force: true });
    fs.copyFileSync(process.execPath, exe);
    fs.chmodSync(exe, 0o755);
  });
  // Before injecting: strip rewrites the ELF layout, and a blob injected first does not survive it.
  if (strip) await step('strip', () => run(strip, [exe]));
  await step('inject the blob (postject)', () => injectBlob(exe, blob));
  await step('check the executable runs', () => {
    const r = run(exe, ['version'], { cwd: work, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } });
    if (!r.stdout.trim()) throw new BuildError('`cellhost version` printed nothing');
  });
}

async function injectBlob(exe, blob) {
  const { inject } = require('postject');
  // postject's ELF parser (LIEF) warns once per note section it cannot name; node's binary has
  // ~256 notes and the result runs fine, so count those lines instead of printing each.
  const warn = console.warn;
  let noteWarnings = 0;
  console.warn = (...args) => {
    if (/Can't find string offset for section name '\.note/.test(String(args[0]))) noteWarnings += 1;
    else warn(...args);
  };
  try {
    await inject(exe, 'NODE_SEA_BLOB', blob, { sentinelFuse: SEA_FUSE });
  } finally {
    console.warn = warn;
  }
  if (noteWarnings > 0) process.stderr.write(` (${noteWarnings} harmless LIEF warnings about unnamed .note sections)`);
}

/**
 * The executable embeds the node that builds it, so it is built only with a Node that package.json's
 * `engines` names (the majors the router's use of Node's internal HTTP parser is tested on).
 * Reads the simple form used there: comparator sets (>=, >, <=, <, =) joined by ||.
 */
function checkNodeVersion() {
  const range = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines?.node;
  if (!range) return;
  const parse = (v) => v.replace(/^v/, '').split('.').map((n) => Number(n) || 0);
  const cmp = (a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0);
  const have = parse(process.version);
  const ok = range.split('||').some((set) =>
    set.trim().split(/\s+/).every((c) => {
      const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+){0,2})$/.exec(c);
      if (!m) throw new BuildError(`package.json engines.node: cannot read "${c}"`);
      const d = cmp(have, parse(m[2]));
      return { '>=': d >= 0, '<=': d <= 0, '>': d > 0, '<': d < 0, '=': d === 0, undefined: d === 0 }[m[1]];
    }),
  );
  if (!ok) throw new BuildError(`node ${process.version} is not a version package.json's engines allow ("${range}"): build with one that is`);
}

async function main() {
  checkNodeVersion();
  const { values } = parseArgs({ options: { entry: { type: 'string' } } });
  const entry = path.resolve(root, values.entry ?? 'runtime/main.ts');
  if (!fs.existsSync(entry)) throw new BuildError(`entry point ${path.relative(root, entry)} does not exist`);
  const started = performance.now();
  fs.rmSync(path.join(dist, 'build-info.json'), { force: true });
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });

  await step(`bundle ${path.relative(root, entry)} → dist/cellhost.js`, async () => {
    await bundleOrExplain(entry);
    // The repo's package.json says "type": "module"; this one makes `node dist/cellhost.js` read CommonJS.
    fs.writeFileSync(path.join(dist, 'package.json'), '{ "type": "commonjs" }\n');
    checkBundleIsSelfContained();
  });

  const blobFile = path.join(work, 'sea-prep.blob');
  const seaConfigFile = path.join(work, 'sea-config.json');
  const seaConfig = {
    main: bundleFile,
    output: blobFile,
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    assets: { ...Object.fromEntries(Object.keys(NATIVE_ADDON_PACKAGES).map((n) => [`${n}.node`, addonFile(n)])), ...edgeAssets() },
  };
  await step('SEA blob (bundle, native addons, edge host and esbuild)', () => {
    fs.writeFileSync(seaConfigFile, JSON.stringify(seaConfig, null, 2));
    run(process.execPath, ['--experimental-sea-config', seaConfigFile], { cwd: work });
    if (!fs.existsSync(blobFile)) throw new BuildError(`node wrote no blob at ${blobFile}`);
  });

  const stagedExe = path.join(work, 'cellhost');
  const blob = fs.readFileSync(blobFile);
  const strip = findOnPath('strip');
  if (!strip) process.stderr.write('build: strip not found on PATH; the executable keeps its symbols (~+12 MB)\n');
  try {
    await assembleExecutable(stagedExe, blob, strip);
  } catch (err) {
    if (!strip) throw err;
    // Measured here: stripping works before injection (and segfaults after). Should some other
    // binutils break the blob anyway, an unstripped executable is still a correct one.
    process.stderr.write(`build: the stripped executable failed (${err.message}); trying again without strip\n`);
    await assembleExecutable(stagedExe, blob, undefined);
  }

  fs.chmodSync(stagedExe, 0o755);
  // rename, not copy: a dist/cellhost that is running cannot be overwritten in place (ETXTBSY).
  fs.renameSync(stagedExe, exeFile);
  fs.rmSync(work, { recursive: true, force: true });
  // Lets a test tell a current build of the real entry from an experiment or another node.
  const info = { entry: path.relative(root, entry), node: process.version, builtAt: new Date().toISOString() };
  fs.writeFileSync(path.join(dist, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);

  const size = fs.statSync(exeFile).size;
  const total = performance.now() - started;
  process.stdout.write(`built dist/cellhost: ${formatBytes(size)} in ${formatMs(total)}\n`);
}

function findOnPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this PATH entry
    }
  }
  return undefined;
}

main().catch((err) => {
  process.stderr.write(`\nbuild failed: ${err instanceof BuildError ? err.message : err?.stack ?? err}\n`);
  process.exit(1);
});
