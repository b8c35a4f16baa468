// `cellhost deploy` in a directory with a cellhost.toml: no flags needed (the name and the runtime
// come from the manifest), the manifest is checked before anything is uploaded, flags win.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, type TestServer } from '../../helpers/server.ts';

const APP = path.join(FIXTURES, 'node-manifest');
const MANIFEST = fs.readFileSync(path.join(APP, 'cellhost.toml'), 'utf8');

let server: TestServer;
let home: string;
let work: string;
beforeAll(async () => {
  server = await startTestServer();
  home = tempDir('cellhost-cli-home-');
  work = tempDir('cellhost-cli-manifest-');
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

/** the fixture app in `work/<dir>`, with this manifest */
function app(dir: string, manifest: string): string {
  const to = path.join(work, dir);
  fs.mkdirSync(to, { recursive: true });
  for (const f of ['app.js', 'package.json']) fs.copyFileSync(path.join(APP, f), path.join(to, f));
  fs.writeFileSync(path.join(to, 'cellhost.toml'), manifest);
  return to;
}

async function cli(args: string[], cwd = work) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: home, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN },
    cwd,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
  });
  return { code, out: out.replace(/\x1b\[[0-9;]*m/g, ''), err };
}

describe('cellhost deploy with a manifest', () => {
  it('no flags: the service is named and its runtime chosen by the manifest, which the server applies', async () => {
    const dir = app('checkout', MANIFEST.replace('[env]\nrequired = ["GREETING"]\n', ''));
    const r = await cli(['deploy'], dir);
    expect(r.err).toContain('Created service manifest-app (node, from cellhost.toml)');
    expect(r.err).toContain('Using cellhost.toml');
    expect(r.out).toContain('port = 3000 (cellhost.toml line 6)');
    expect(r.out.trim().split('\n').pop()).toMatch(/^http:\/\/manifest-app\.localhost:\d+$/);
    expect(r.code, r.err).toBe(0);
    const service = (await server.api('GET', '/api/v1/services/manifest-app')).body;
    // nothing was set explicitly: a later change of the manifest, the runtime included, applies
    expect(service).toMatchObject({ runtime: 'node', port: 3000, memoryMb: 256, explicitSettings: [] });
    expect((await server.app('manifest-app')).json).toMatchObject({ argv: ['3000'], memoryMb: '256' });
  });

  it('a required variable missing: exit 1 naming it; set it and the same deploy goes live', async () => {
    const dir = app('checkout', MANIFEST);
    const failed = await cli(['deploy', dir]);
    expect(failed.code).toBe(1);
    expect(failed.err).toMatch(/failed: cellhost\.toml line \d+ requires the variable GREETING, which service "manifest-app" does not have.*\(ERR_ENV_REQUIRED\)/);
    expect((await cli(['env', 'set', 'manifest-app', 'GREETING=from the cli'])).code).toBe(0);
    const ok = await cli(['deploy', dir]);
    expect(ok.code, ok.err).toBe(0);
    expect((await server.app('manifest-app')).json.greeting).toBe('from the cli');
  });

  it('an invalid manifest is refused before the upload, with its lines and keys', async () => {
    const before = (await server.api('GET', '/api/v1/services/manifest-app/deployments')).body.deployments.length;
    const dir = app('broken', MANIFEST.replace('port = 3000', 'port = "3000"').replace('memory = "256MB"', 'memroy = 256'));
    const r = await cli(['deploy', dir, '--name', 'manifest-app']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(dir, 'cellhost.toml')} is not valid; nothing was uploaded:`);
    expect(r.err).toContain('cellhost.toml line 6: port: expected a port number from 1 to 65535, got a string ("3000")');
    expect(r.err).toContain('cellhost.toml line 7: memroy: unknown key (did you mean "memory"?)');
    expect((await server.api('GET', '/api/v1/services/manifest-app/deployments')).body.deployments.length).toBe(before);
  });

  it('a flag is an explicit setting: it wins over the manifest, and the build log says so', async () => {
    const r = await cli(['deploy', path.join(work, 'checkout'), '--memory', '512']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('memory = 256 MB (cellhost.toml line 7) is not applied: memoryMb was set to 512 MB through the API or CLI, which wins');
    expect((await server.api('GET', '/api/v1/services/manifest-app')).body).toMatchObject({ memoryMb: 512, explicitSettings: ['memoryMb'] });
    expect((await server.app('manifest-app')).json.memoryMb).toBe('512');
  });
});
