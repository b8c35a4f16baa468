// cellhost's edge host: the small server an edge service runs on. It is started inside the
// service's sandbox (its uid, cgroup, network namespace, read-only /app) before any request, as
// a standby (--held): it boots, reads and compiles the module and links it to Node's built-ins,
// none of which runs any of the service's code, then waits for a line on stdin; a cold start is
// then the module's evaluation and nothing else. The module exports a Web-standard fetch handler:
//   export default { fetch(request, env, ctx) { ... } }   (Cloudflare Workers' module syntax)
//   export default app                                    (a Hono app: it has app.fetch)
//   export function fetch(request, env, ctx) { ... }      (or `export default function`)
// `env` holds the service's variables; `ctx.waitUntil(promise)` keeps the instance busy (and
// billed) until the promise settles, told to the platform on the control fd.
//
// Plain JavaScript for the host's own node, shipped with the executable: it is never bundled.
//   node --experimental-vm-modules edge-host.mjs --control-fd N [--held] ENTRY
//   node --experimental-vm-modules edge-host.mjs --write-code-cache MODULE  (the build: MODULE.cache)
import fs from 'node:fs';
import http from 'node:http';
import { createRequire, isBuiltin } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const args = process.argv.slice(2);
let controlFd = -1;
let entry = '';
let writeCacheFor = '';
let held = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--control-fd') controlFd = Number(args[++i]);
  else if (args[i] === '--held') held = true;
  else if (args[i] === '--write-code-cache') writeCacheFor = args[++i] ?? '';
  else entry = args[i];
}

// V8's code cache of the module: the import without compiling it. Node 20 has no compile cache
// for ES modules, but vm.SourceTextModule takes V8's cached data (behind
// --experimental-vm-modules, which the platform passes). The build writes it, compiling the
// bundle without running any of it; a cold start then skips the compile (3-4 ms of the ~8 ms
// import of a Hono bundle here). What the build wrote only ever reaches this service's own
// process, which runs the service's code anyway; V8 refuses data of another node or source.
const CODE_CACHE_SUFFIX = '.cache';
// the vm modules' one-time experimental warning is ours, not the service's: it is not printed
const printWarning = process.listeners('warning');
if (printWarning.length) {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w?.name === 'ExperimentalWarning' && /VM Modules/.test(w.message)) return;
    for (const l of printWarning) l.call(process, w);
  });
}

if (writeCacheFor) {
  // the build's last step: a cache that cannot be made costs the cold start its compile, no more
  try {
    if (typeof vm.SourceTextModule !== 'function') throw new Error('node was started without --experimental-vm-modules');
    const source = fs.readFileSync(writeCacheFor, 'utf8');
    // Node 20 loses a module's import() callback when the module comes from cached data (the call
    // fails with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): a bundle that imports at run time (esbuild
    // inlines the import() of a literal path, so this is rare) is imported as usual
    if (/\bimport\s*\(/.test(source)) throw new Error('the module calls import() at run time, which a cached module cannot here');
    // Every function compiled now, not only the top level: V8 otherwise compiles a function at
    // its first call, and a Hono app's first request compiled its router and handlers (1.3 ms
    // against 2.8 ms with the top level only, measured; the cache is 4x larger, its load as
    // quick). The flag is back to V8's default before the cache is written, whose header
    // carries the flags' hash: a cold start's node, started with the default, accepts it.
    let module;
    v8.setFlagsFromString('--no-lazy');
    try {
      module = new vm.SourceTextModule(source, { identifier: pathToFileURL(path.resolve(writeCacheFor)).href });
    } finally {
      v8.setFlagsFromString('--lazy');
    }
    const data = module.createCachedData();
    fs.writeFileSync(writeCacheFor + CODE_CACHE_SUFFIX, data);
    console.log(`edge: code cache of ${writeCacheFor} written (${data.length} bytes)`);
  } catch (err) {
    console.log(`edge: no code cache for ${writeCacheFor}: ${err?.message ?? err}`);
  }
  process.exit(0);
}

/** a line on stdin: the standby waits here until its first request needs it */
function goLine() {
  return new Promise((resolve) => {
    // the platform let go of the standby without using it
    const onEnd = () => process.exit(0);
    const onData = (chunk) => {
      if (!chunk.includes(10)) return;
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      resolve();
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', onEnd);
  });
}

// the service's variables: the names the platform passed, with their values from the environment
const env = Object.freeze(
  Object.fromEntries((process.env.CELLHOST_EDGE_VARS ?? '').split(',').filter(Boolean).map((name) => [name, process.env[name] ?? ''])),
);

/**
 * Node loads its fetch classes (undici, web streams) and its HTTP server's code on their first
 * use, and runs them cold: ~20-40 ms that belong in the standby's boot, not in the first request.
 * This serves a few requests of its own, through the same path as the service's, on a loopback
 * port of its own, with a handler of its own: nothing of the service's runs.
 */
async function warmUp() {
  const own = () => new Response(new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('warm')), c.close()) }), { headers: { 'set-cookie': 'a=b' } });
  const srv = http.createServer((req, res) => void serve(req, res, own));
  await new Promise((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  const ask = (text) =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(text));
      s.on('data', () => {});
      s.on('close', resolve);
      s.on('error', resolve);
    });
  for (let i = 0; i < 3; i++) {
    await ask('GET /warm HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    await ask('POST /warm HTTP/1.1\r\nhost: localhost\r\ncontent-length: 4\r\nconnection: close\r\n\r\nwarm');
  }
  await new Promise((resolve) => srv.close(resolve));
  await Response.json({ warm: true }).text();
}

// a failed warm-up costs the first request its time, nothing else
await warmUp().catch(() => {});

/** how the module was compiled, for the serving line */
let compiled = '';

/**
 * The module through vm.SourceTextModule with its code cache, compiled and, when it imports only
 * Node's built-ins (a bundle), linked: ready to evaluate, and nothing of the service's has run.
 * Null when there is no cache or it cannot be used here: the module is then imported as usual.
 * A module that fails to compile is not reported here but when it is imported (as without a
 * cache), so that a standby reports nothing before it is used.
 */
function compileCached(file) {
  if (typeof vm.SourceTextModule !== 'function') return null;
  let cachedData;
  try {
    cachedData = fs.readFileSync(file + CODE_CACHE_SUFFIX);
  } catch {
    return null;
  }
  const url = pathToFileURL(file).href;
  const requireHere = createRequire(file);
  const resolve = (spec) => (isBuiltin(spec) ? spec : /^(\.{1,2})?\//.test(spec) || spec.startsWith('file:') ? new URL(spec, url).href : pathToFileURL(requireHere.resolve(spec)).href);
  const options = {
    identifier: url,
    initializeImportMeta(meta) {
      meta.url = url;
      meta.filename = file;
      meta.dirname = path.dirname(file);
      meta.resolve = resolve;
    },
    // (for a module compiled without its cache; the build writes none for a module calling import())
    importModuleDynamically: (spec) => import(resolve(spec)),
  };
  let source;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  let m;
  try {
    m = new vm.SourceTextModule(source, { ...options, cachedData });
    compiled = ' (compiled from its code cache)';
  } catch (err) {
    if (err?.code !== 'ERR_VM_MODULE_CACHED_DATA_REJECTED') return null;
    // another node than the build's, or another file: compiled as without one
    try {
      m = new vm.SourceTextModule(source, options);
    } catch {
      return null;
    }
    compiled = ' (its code cache was refused by this node: compiled)';
  }
  // Node 20 does not keep a linked module's dependencies alive: one collected while the standby
  // waits (an idle node collects garbage after ~10 s) crashes the evaluation (SIGSEGV in
  // SyntheticModuleEvaluationStepsCallback, seen under gdb), so they are held here
  const dependencies = [];
  // a built-in's import runs Node's code only; any other module's would run the service's
  const link = () =>
    m.link(async (spec) => {
      const ns = await import(resolve(spec));
      const names = Object.keys(ns);
      const dependency = new vm.SyntheticModule(names, function () {
        for (const n of names) this.setExport(n, ns[n]);
      }, { identifier: spec });
      dependencies.push(dependency);
      return dependency;
    });
  return { module: m, dependencies, linked: m.dependencySpecifiers.every((spec) => isBuiltin(spec)) ? link() : null, link };
}

/** the module's namespace: evaluated from what compileCached() prepared, or imported */
async function load(file, prepared) {
  if (prepared) {
    let linked = false;
    try {
      await (prepared.linked ?? prepared.link());
      linked = true;
    } catch (err) {
      compiled = ` (imported: its code cache could not be used: ${err?.message ?? err})`;
    }
    if (linked) {
      await prepared.module.evaluate();
      return prepared.module.namespace;
    }
  }
  return import(pathToFileURL(file).href);
}

const prepared = entry ? compileCached(entry) : null;
// (a link that fails is reported when the module is loaded, not by the standby)
prepared?.linked?.catch(() => {});

// The server listens from the boot on, so the platform can connect while the module loads (it
// opens a standby's first connection as it tells it to go) and a request's connect is not on
// the cold start's path. What arrives before the handler exists waits for it; readiness is
// told on the control fd once the module has loaded, never read from the port.
let handler = null;
let handlerLoaded = () => {};
const loaded = new Promise((resolve) => (handlerLoaded = resolve));
const server = http.createServer((req, res) => {
  if (handler) void serve(req, res);
  else void loaded.then(() => serve(req, res));
});
server.keepAliveTimeout = 65_000;
await new Promise((resolve) => {
  const failed = (err) => {
    console.error(`the edge host could not listen on port ${process.env.PORT}: ${err?.message ?? err}`);
    process.exit(1);
  };
  server.once('error', failed).listen(Number(process.env.PORT), () => {
    server.off('error', failed);
    resolve();
  });
});
if (held) await goLine();

let mod;
try {
  if (!entry) throw new Error('no module was given');
  mod = await load(entry, prepared);
} catch (err) {
  console.error(`the module ${entry} threw while it was imported: ${err?.stack ?? err}`);
  process.exit(1);
}

function findHandler(m) {
  const d = m.default;
  if (d && typeof d.fetch === 'function') return d.fetch.bind(d);
  if (typeof d === 'function') return d;
  if (typeof m.fetch === 'function') return m.fetch;
  return null;
}

handler = findHandler(mod);
if (!handler) {
  console.error(`the module ${entry} exports no fetch handler: export default { fetch(request, env, ctx) }, export default app (a Hono app), or export function fetch(request, env, ctx)`);
  process.exit(1);
}

// waitUntil: the platform bills the instance and keeps it from being frozen or stopped while any
// is pending; it is told when the first starts and the last settles
let pending = 0;
function tell(line) {
  if (controlFd < 0) return;
  try {
    fs.writeSync(controlFd, line + '\n');
  } catch {
    // the platform is gone: nothing to tell
  }
}
function waitUntil(promise) {
  if (pending++ === 0) tell('busy');
  Promise.resolve(promise)
    .catch((err) => console.error(`a waitUntil promise failed: ${err?.stack ?? err}`))
    .finally(() => {
      if (--pending === 0) tell('idle');
    });
}

function toHeaders(raw) {
  const h = new Headers();
  for (let i = 0; i < raw.length; i += 2) {
    try {
      h.append(raw[i], raw[i + 1]);
    } catch {
      // a header the Fetch API refuses (it is still seen by the router's log)
    }
  }
  return h;
}

async function serve(req, res, fetchHandler = handler) {
  const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http';
  const url = `${proto}://${req.headers.host ?? 'localhost'}${req.url}`;
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new Error('the client went away'));
  });
  const init = { method: req.method, headers: toHeaders(req.rawHeaders), signal: abort.signal };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    init.body = Readable.toWeb(req);
    init.duplex = 'half';
  }
  let response;
  try {
    response = await fetchHandler(new Request(url, init), env, { waitUntil, passThroughOnException() {} });
  } catch (err) {
    console.error(`the fetch handler threw: ${err?.stack ?? err}`);
    return fail(res, 'the fetch handler threw: see the service log');
  }
  if (!(response instanceof Response)) {
    console.error(`the fetch handler returned ${Object.prototype.toString.call(response)}, not a Response`);
    return fail(res, 'the fetch handler did not return a Response');
  }
  const headers = {};
  for (const [k, v] of response.headers) if (k !== 'set-cookie') headers[k] = v;
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers['set-cookie'] = cookies;
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!response.body || req.method === 'HEAD') return res.end();
  try {
    for await (const chunk of response.body) {
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      if (res.destroyed) break;
    }
    res.end();
  } catch (err) {
    console.error(`the response body failed: ${err?.stack ?? err}`);
    res.destroy();
  }
}

function fail(res, message) {
  if (res.headersSent) return res.destroy();
  res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(message + '\n');
}

handlerLoaded();
tell('ready');
console.log(`edge: ${entry} serving on ${process.env.PORT}${compiled}`);
