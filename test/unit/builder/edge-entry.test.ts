// Which entries the edge host serves, and how the build bundles them.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { edgeBundleCommand, isFetchHandlerSource, parseEdgeStart, RUNTIME_DEFS } from '../../../builder/runtimes/index.ts';
import { tempDir } from '../../helpers/server.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function source(files: Record<string, string>): string {
  const dir = tempDir('cellhost-edge-entry-');
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('fetch-handler entries', () => {
  it('tells a fetch handler from an app with a server of its own', () => {
    expect(isFetchHandlerSource('export default { fetch(req, env, ctx) { return new Response("x") } }')).toBe(true);
    expect(isFetchHandlerSource("import { Hono } from 'hono'; const app = new Hono(); export default app;")).toBe(true);
    expect(isFetchHandlerSource('export async function fetch(request) { return new Response("x") }')).toBe(true);
    expect(isFetchHandlerSource("const http = require('http'); http.createServer(h).listen(process.env.PORT)")).toBe(false);
    expect(isFetchHandlerSource("import { serve } from '@hono/node-server'; serve({ fetch: app.fetch }); export default app;")).toBe(false);
    expect(isFetchHandlerSource("const app = express(); app.listen(3000); export default app;")).toBe(false);
  });

  it('reads cellhost-edge MODULE, relative to the app and never outside it', () => {
    expect(parseEdgeStart('cellhost-edge .cellhost/edge.mjs')).toEqual({ entry: '.cellhost/edge.mjs' });
    expect(parseEdgeStart('  cellhost-edge ./dist/worker.js ')).toEqual({ entry: 'dist/worker.js' });
    expect(parseEdgeStart('node app.js')).toBeNull();
    expect(parseEdgeStart('cellhost-edge ../secret.mjs')).toBeNull();
    expect(parseEdgeStart('cellhost-edge /etc/passwd')).toBeNull();
    expect(parseEdgeStart('cellhost-edge a.mjs; rm -rf /')).toBeNull();
  });

  it('the bundle step names the entry, and quotes it for the shell', () => {
    expect(edgeBundleCommand('src/index.ts')).toMatch(/^"\$CELLHOST_TOOLS\/esbuild" src\/index\.ts --bundle --platform=node --format=esm .*--outfile=\.cellhost\/edge\.mjs/);
    expect(edgeBundleCommand("it's.ts")).toContain(`'it'\\''s.ts'`);
  });

  it('node: bundled only when the entry is a fetch handler and nothing else starts the app', async () => {
    const handler = 'export default { fetch: () => new Response("x") }';
    expect(await RUNTIME_DEFS.node.finish!(source({ 'index.mjs': handler }), { startCommand: null })).toContain('esbuild" index.mjs');
    expect(await RUNTIME_DEFS.node.finish!(source({ 'index.mjs': handler }), { startCommand: 'node index.mjs' })).toBeNull();
    expect(await RUNTIME_DEFS.node.finish!(source({ 'index.mjs': handler, 'package.json': '{"scripts":{"start":"node x"}}' }), { startCommand: null })).toBeNull();
    expect(await RUNTIME_DEFS.node.finish!(source({ 'index.js': "require('http').createServer().listen(1)" }), { startCommand: null })).toBeNull();
  });

  it('edge: the entry from package.json, else the usual names; a source with none fails its build saying so', async () => {
    expect(await RUNTIME_DEFS.edge.finish!(source({ 'package.json': '{"main":"./dist/w.js"}', 'dist/w.js': 'x' }), { startCommand: null })).toContain('esbuild" dist/w.js');
    expect(await RUNTIME_DEFS.edge.finish!(source({ 'src/index.ts': 'x', 'index.js': 'y' }), { startCommand: null })).toContain('esbuild" src/index.ts');
    expect(await RUNTIME_DEFS.edge.finish!(source({ 'README.md': 'x' }), { startCommand: null })).toMatch(/no module to serve.*exit 1/);
    const built = source({ 'index.mjs': 'x', '.cellhost/edge.mjs': 'y' });
    expect((await RUNTIME_DEFS.edge.defaultStart(built)).command).toBe('cellhost-edge .cellhost/edge.mjs');
    expect((await RUNTIME_DEFS.edge.defaultStart(source({ 'worker.mjs': 'x' }))).command).toBe('cellhost-edge worker.mjs');
  });
});
