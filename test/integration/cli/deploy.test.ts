// The CLI verbs against a real server, run in-process with captured output.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, type TestServer } from '../../helpers/server.ts';

let server: TestServer;
let home: string;
beforeAll(async () => {
  server = await startTestServer();
  home = tempDir('cellhost-cli-home-');
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: home, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN, ...env },
    cwd: FIXTURES,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
  });
  return { code, out, err };
}

describe('cellhost deploy', () => {
  it('creates the service, streams the build, prints the URL; the app answers', async () => {
    const r = await cli(['deploy', 'node-hello', '--name', 'hello', '--runtime', 'node', '--start', 'node app.js', '--build', 'echo building $CELLHOST_SERVICE']);
    expect(r.err).toContain('Created service hello');
    expect(r.out).toContain('building hello');
    expect(r.out.trim().split('\n').pop()).toMatch(/^http:\/\/hello\.localhost:\d+$/);
    expect(r.code).toBe(0);
    const res = await server.app('hello');
    expect(res.json.hello).toBe('hello');
  });

  it('infers the runtime and the name from the directory', async () => {
    const r = await cli(['deploy', 'python-hello', '--start', 'python3 app.py']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('Created service python-hello (python)');
    expect((await server.app('python-hello')).json.hello).toBe('python');
  });

  it('a failing build exits 1 with the reason', async () => {
    const r = await cli(['deploy', 'node-hello', '--name', 'hello', '--build', 'echo broken >&2; exit 9']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('broken');
    expect(r.err).toMatch(/failed: .*exit code 9.*ERR_BUILD_FAILED/);
  });

  it('rollback makes the previous deployment live', async () => {
    await cli(['deploy', 'node-hello', '--name', 'hello', '--build', '']);
    const { body } = await server.api('GET', '/api/v1/services/hello/deployments');
    const live = body.deployments.find((d: any) => d.status === 'live');
    const previous = body.deployments.find((d: any) => d.status === 'superseded');
    const r = await cli(['rollback', 'hello']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(previous.id);
    expect((await server.api('GET', '/api/v1/services/hello')).body.liveDeploymentId).toBe(previous.id);
    expect(live.id).not.toBe(previous.id);
  });

  it('services lists them; bad input gives usage errors and exit 2', async () => {
    const r = await cli(['services']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^NAME\s+RUNTIME/);
    expect(r.out).toContain('python-hello');
    expect((await cli(['frobnicate'])).code).toBe(2);
    const missing = await cli(['deploy', 'no-such-dir']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('is not a directory');
  });

  it('login saves the settings with mode 0600; a wrong token is refused', async () => {
    const bad = await cli(['login', '--url', server.adminUrl, '--token', 'wrong'], { CELLHOST_TOKEN: '' });
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('ERR_AUTH_INVALID');
    const ok = await cli(['login', '--url', server.adminUrl, '--token', TOKEN], { CELLHOST_TOKEN: '' });
    expect(ok.code).toBe(0);
    const file = path.join(home, '.config/cellhost/client.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const viaFile = await cli(['services'], { CELLHOST_URL: '', CELLHOST_TOKEN: '' });
    expect(viaFile.code).toBe(0);
  });

  it('an unreachable server is named plainly', async () => {
    const r = await cli(['services'], { CELLHOST_URL: 'http://127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot reach cellhost at http://127.0.0.1:1');
  });
});
