// cellhost's edge host: the small server an edge service runs on. It is started inside the
// service's sandbox (its uid, cgroup, network namespace, read-only /app) before the service's
// code is known to it, as a standby, and waits for the path of the module to import on stdin;
// a cold start is then only the import. The module exports a Web-standard fetch handler:
//   export default { fetch(request, env, ctx) { ... } }   (Cloudflare Workers' module syntax)
//   export default app                                    (a Hono app: it has app.fetch)
//   export function fetch(request, env, ctx) { ... }      (or `export default function`)
// `env` holds the service's variables; `ctx.waitUntil(promise)` keeps the instance busy (and
// billed) until the promise settles, told to the platform on the control fd.
//
// Plain JavaScript for the host's own node, shipped with the executable: it is never bundled.
//   node edge-host.mjs --control-fd N [ENTRY]     (no ENTRY: read it from stdin)
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
let controlFd = -1;
let entry = '';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--control-fd') controlFd = Number(args[++i]);
  else entry = args[i];
}

/** one line from stdin: the standby waits here until its first request needs it */
function readLine() {
  return new Promise((resolve) => {
    let text = '';
    // the platform let go of the standby without using it
    const onEnd = () => process.exit(0);
    const onData = (chunk) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      resolve(text.slice(0, nl).trim());
    };
    process.stdin.setEncoding('utf8');
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
if (!entry) entry = await readLine();

let mod;
try {
  mod = await import(pathToFileURL(entry).href);
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

const handler = findHandler(mod);
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

const server = http.createServer((req, res) => void serve(req, res));
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), () => {
  // readiness, told at once instead of found by polling the port
  tell('ready');
  console.log(`edge: ${entry} serving on ${process.env.PORT}`);
});
