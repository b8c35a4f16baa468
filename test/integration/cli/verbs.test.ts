// The operating verbs against a real server, run in-process with captured output: set, status,
// delete, tokens, open, deployments, --json on every listing, deploy's progress, and logs -f
// surviving a server restart.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import type { CliIo } from '../../../runtime/cli/io.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

let server: TestServer;
let home: string;
beforeAll(async () => {
  // a fixed admin port, so a restarted server is found where the CLI left it
  server = await startTestServer({ env: { CELLHOST_ADMIN_ADDR: `127.0.0.1:${await freePortSync()}` } });
  home = tempDir('cellhost-cli-home-');
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], opts: { env?: Record<string, string>; io?: Partial<CliIo>; cwd?: string } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: home, PATH: process.env.PATH, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN, ...opts.env },
    cwd: opts.cwd ?? FIXTURES,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
    ...opts.io,
  });
  return { code, out, err };
}

describe('cellhost set', () => {
  it('changes settings with short words and durations, and prints the CPU the memory buys', async () => {
    await server.api('POST', '/api/v1/services', { name: 'tuned', runtime: 'node' });
    const r = await cli(['set', 'tuned', 'memory=512', 'min=0', 'max=4', 'concurrency=20', 'idle=5m', 'timeout=1m30s', 'port=3000', 'start=node app.js', 'health=/healthz']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Changed tuned: running instances are replaced after their requests finish; scaling and routing apply now/);
    expect(r.out).toMatch(/memory\s+512 MB \(CPU cap 28\.9 % of a core, 1 core\)/);
    expect(r.out).toMatch(/idle\s+5m\n/);
    expect(r.out).toMatch(/timeout\s+1m30s\n/);
    const { body } = await server.api('GET', '/api/v1/services/tuned');
    expect(body).toMatchObject({ memoryMb: 512, minInstances: 0, maxInstances: 4, concurrency: 20, idleTimeoutS: 300, requestTimeoutS: 90, port: 3000, startCommand: 'node app.js', healthPath: '/healthz' });
    expect(body.cpu).toEqual({ percentOfCore: 28.9, cores: 1 });
  });

  it('without settings prints them; --json gives the service; empty commands go back to the default; GB and API names work', async () => {
    const shown = await cli(['set', 'tuned']);
    expect(shown.code).toBe(0);
    expect(shown.out).not.toContain('Changed');
    expect(shown.out).toMatch(/port\s+3000/);
    const json = await cli(['set', 'tuned', 'start=', 'health=', 'memoryMb=1gb', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ name: 'tuned', startCommand: null, healthPath: null, memoryMb: 1024, cpu: { percentOfCore: 57.9 } });
    // the HTTPS switches: on/off words
    const https = await cli(['set', 'tuned', 'redirect=off', 'hsts=on']);
    expect(https.code, https.err).toBe(0);
    expect(https.out).toMatch(/redirect\s+off\n/);
    expect(https.out).toMatch(/hsts\s+on \(Strict-Transport-Security/);
    expect((await server.api('GET', '/api/v1/services/tuned')).body).toMatchObject({ httpsRedirect: false, hsts: true });
  });

  it('prewarm=false and back; anything but a yes or no is a usage error', async () => {
    const off = await cli(['set', 'tuned', 'prewarm=false']);
    expect(off.code).toBe(0);
    expect(off.out).toMatch(/prewarm\s+false/);
    expect((await server.api('GET', '/api/v1/services/tuned')).body.prewarm).toBe(false);
    expect((await cli(['set', 'tuned', 'prewarm=yes'])).code).toBe(0);
    expect((await server.api('GET', '/api/v1/services/tuned')).body.prewarm).toBe(true);
    const bad = await cli(['set', 'tuned', 'prewarm=maybe']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('prewarm=maybe: true or false');
  });

  it('a bad value is a usage error naming it; a value the API refuses is its message; nothing changes', async () => {
    for (const [arg, message] of [
      ['memory=lots', 'memory=lots: a size in MB'],
      ['idle=soon', 'idle=soon: a duration such as 30s'],
      ['colour=red', 'unknown setting "colour"'],
      ['hsts=maybe', 'hsts=maybe: on or off'],
      ['min', '"min" is not SETTING=VALUE'],
    ]) {
      const r = await cli(['set', 'tuned', arg!]);
      expect(r.code, arg).toBe(2);
      expect(r.err, arg).toContain(message);
    }
    const refused = await cli(['set', 'tuned', 'memory=64']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/memoryMb.*128.*ERR_VALIDATION/);
    const crossed = await cli(['set', 'tuned', 'min=5', 'max=2']);
    expect(crossed.code).toBe(1);
    expect(crossed.err).toContain('minInstances cannot exceed maxInstances');
    expect((await server.api('GET', '/api/v1/services/tuned')).body).toMatchObject({ memoryMb: 1024, minInstances: 0, maxInstances: 4 });
    expect((await cli(['set', 'nope', 'min=1'])).err).toContain('ERR_SERVICE_NOT_FOUND');
  });
});

describe('cellhost status and deployments', () => {
  it('shows the live deployment, the instances and their state, the last cold start; --json has them', async () => {
    const dep = await server.deploy('hello', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
    expect(dep.status).toBe('live');
    expect((await server.app('hello')).status).toBe(200);
    const r = await cli(['status', 'hello']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^live\\s+${dep.id} \\(upload:tar.gz, live since`, 'm'));
    expect(r.out).toMatch(/^cold start\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(.*\): \d+ ms, instance i-/m);
    expect(r.out).toMatch(/^last error\s+none recorded$/m);
    expect(r.out).toContain('Instances: 1');
    expect(r.out).toMatch(/^i-\S+\s+ready\s/m);
    const json = JSON.parse((await cli(['status', 'hello', '--json'])).out);
    expect(json.liveDeployment.id).toBe(dep.id);
    expect(json.instances).toHaveLength(1);
    expect(json.instances[0].state).toBe('ready');
    expect(json.lastColdStart.event).toBe('cold_start');
    expect(json.lastError).toBeNull();
  });

  it('names the last error: an app that exits during its start', async () => {
    await server.deployFailing('crashy', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
    expect((await server.app('crashy')).status).toBe(502);
    const r = await cli(['status', 'crashy']);
    expect(r.out).toMatch(/^last error\s+.*start_failed: .*code 3/m);
    const json = JSON.parse((await cli(['status', 'crashy', '--json'])).out);
    expect(json.lastError.event).toBe('start_failed');
  });

  it('deployments lists them; --json is the list', async () => {
    const r = await cli(['deployments', 'hello']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ID\s+STATUS\s+SOURCE/);
    expect(r.out).toMatch(/d-\S+\s+live\s+upload:tar\.gz/);
    const json = JSON.parse((await cli(['deployments', 'hello', '--json'])).out);
    expect(json[0]).toMatchObject({ service: 'hello', status: 'live' });
  });
});

describe('--json on the listings', () => {
  it('services, env ls, usage and logs print JSON for scripts; services -q prints names', async () => {
    await server.api('PUT', '/api/v1/services/hello/env/GREETING', { value: 'hi' });
    const services = JSON.parse((await cli(['services', '--json'])).out);
    expect(services.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(['hello', 'tuned', 'crashy']));
    expect((await cli(['services', '-q'])).out.split('\n')).toEqual(expect.arrayContaining(['hello', 'tuned', 'crashy']));
    expect(JSON.parse((await cli(['env', 'ls', 'hello', '--json'])).out)).toMatchObject([{ name: 'GREETING' }]);
    expect(JSON.parse((await cli(['env', 'ls', 'hello', '--reveal', '--json'])).out)).toMatchObject([{ name: 'GREETING', value: 'hi' }]);
    const usage = JSON.parse((await cli(['usage', '--json'])).out);
    expect(usage.services.find((s: { service: string }) => s.service === 'hello').requests).toBeGreaterThan(0);
    const lines = (await cli(['logs', 'hello', '--json'])).out.trim().split('\n');
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.some((e) => e.event === 'cold_start')).toBe(true);
    expect(entries.every((e) => typeof e.id === 'number')).toBe(true);
  });
});

describe('cellhost tokens', () => {
  it('create prints the secret once and it works; ls lists it; revoke by label ends it', async () => {
    const created = await cli(['tokens', 'create', 'ci', 'runner']);
    expect(created.code).toBe(0);
    const secret = created.out.trim().split('\n').pop()!;
    expect(secret).toMatch(/^ch_/);
    expect((await cli(['services', '-q'], { env: { CELLHOST_TOKEN: secret } })).code).toBe(0);
    const ls = await cli(['tokens', 'ls']);
    expect(ls.out).toMatch(/^ID\s+LABEL\s+CREATED\s+LAST USED/);
    expect(ls.out).toMatch(/tok_\S+\s+ci runner\s/);
    expect(ls.out).not.toContain(secret);
    const listed = JSON.parse((await cli(['tokens', 'ls', '--json'])).out);
    expect(listed.map((t: { name: string }) => t.name)).toEqual(['admin', 'ci runner']);
    const revoked = await cli(['tokens', 'revoke', 'ci runner']);
    expect(revoked.code).toBe(0);
    const after = await cli(['services'], { env: { CELLHOST_TOKEN: secret } });
    expect(after.code).toBe(1);
    expect(after.err).toContain('ERR_AUTH_INVALID');
    expect((await cli(['tokens', 'revoke', 'nope'])).err).toContain('no token with the id or label "nope"');
    const json = JSON.parse((await cli(['tokens', 'create', 'scripted', '--json'])).out);
    expect(json).toMatchObject({ name: 'scripted', token: expect.stringMatching(/^ch_/) });
    expect((await cli(['tokens', 'revoke', json.id])).code).toBe(0);
  });
});

describe('cellhost open', () => {
  it('prints the URL; with a display it runs xdg-open with it, without one it does not', async () => {
    const bin = tempDir('cellhost-open-');
    const record = path.join(bin, 'opened');
    fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\necho "$@" > ${record}\n`, { mode: 0o755 });
    try {
      const env = { PATH: `${bin}:${process.env.PATH}` };
      const plain = await cli(['open', 'hello'], { env });
      expect(plain.out).toMatch(/^http:\/\/hello\.localhost:\d+\n$/);
      expect(fs.existsSync(record)).toBe(false);
      const shown = await cli(['open', 'hello'], { env: { ...env, DISPLAY: ':99' } });
      expect(shown.code).toBe(0);
      const url = shown.out.trim();
      await waitFor(() => fs.existsSync(record) && fs.readFileSync(record, 'utf8').trim() === url, { what: 'xdg-open to be run' });
      const missing = await cli(['open', 'hello'], { env: { PATH: '/nonexistent', DISPLAY: ':99' } });
      expect(missing.code).toBe(0);
      expect(missing.err).toContain('xdg-open is not installed');
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('cellhost delete', () => {
  it('without a terminal and without --yes it refuses, and the service stays', async () => {
    await server.api('POST', '/api/v1/services', { name: 'doomed', runtime: 'node' });
    const r = await cli(['delete', 'doomed']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('not deleting doomed: there is no terminal to confirm on; pass --yes');
    expect((await server.api('GET', '/api/v1/services/doomed')).status).toBe(200);
  });

  it('on a terminal it asks for the name: a wrong answer keeps it, the name deletes it', async () => {
    const asked: string[] = [];
    const wrong = await cli(['delete', 'doomed'], { io: { prompt: async (q) => (asked.push(q), 'doome') } });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('Not deleted');
    expect(asked[0]).toContain("Type the service's name (doomed)");
    expect((await server.api('GET', '/api/v1/services/doomed')).status).toBe(200);
    const right = await cli(['delete', 'doomed'], { io: { prompt: async () => 'doomed\n' } });
    expect(right.code).toBe(0);
    expect((await server.api('GET', '/api/v1/services/doomed')).status).toBe(404);
  });

  it('--yes deletes without asking, running instances included; an unknown name is said plainly', async () => {
    expect((await server.app('hello')).status).toBe(200);
    const r = await cli(['delete', 'hello', '--yes']);
    expect(r.code).toBe(0);
    expect(r.out).toBe('Deleted hello\n');
    expect((await server.api('GET', '/api/v1/services/hello')).status).toBe(404);
    const unknown = await cli(['delete', 'hello', '--yes']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('ERR_SERVICE_NOT_FOUND');
  });
});

describe('cellhost deploy progress', () => {
  it('on a terminal: a bar redrawn in place with the bytes and the rate', async () => {
    const r = await cli(['deploy', 'node-hello', '--name', 'progress', '--runtime', 'node', '--start', 'node app.js'], { io: { isTTY: true } });
    expect(r.code).toBe(0);
    expect(r.err).toContain('\r\x1b[K');
    expect(r.err).toMatch(/Uploading {2}\[#{24}\] 100 % {2}[\d.]+ (B|KB) \/ [\d.]+ (B|KB) {2}[\d.]+ (B|KB|MB)\/s/);
    expect(r.err).toMatch(/\r\x1b\[KUploaded [\d.]+ (B|KB) in [\d.]+ s \([\d.]+ (B|KB|MB)\/s\)\n/);
    expect(r.err).toMatch(/Packed .*node-hello: [\d.]+ (B|KB) in/);
  });

  it('elsewhere: plain lines, nothing redrawn', async () => {
    const r = await cli(['deploy', 'node-hello', '--name', 'progress']);
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('\r');
    expect(r.err).toMatch(/^Uploaded [\d.]+ (B|KB) in [\d.]+ s \(/m);
  });
});

describe('cellhost logs -f', () => {
  it('reconnects by itself when the server restarts, resuming after the last entry: nothing twice, nothing missed', async () => {
    await server.deploy('tail', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
    expect((await server.app('tail')).status).toBe(200);
    const abort = new AbortController();
    let out = '';
    let err = '';
    const running = runCli(['logs', 'tail', '-f', '--json'], {
      env: { HOME: home, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN },
      cwd: FIXTURES,
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      isTTY: false,
      signal: abort.signal,
    });
    const entries = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: number; event?: string; instanceId: string | null });
    try {
      await waitFor(() => entries().some((e) => e.event === 'cold_start'), { what: 'the first cold start in the tail' });
      const firstInstance = entries().find((e) => e.event === 'cold_start')!.instanceId;
      server = await server.restart();
      await waitFor(() => err.includes('reconnected'), { timeoutMs: 20_000, what: 'the tail to reconnect' });
      expect(err).toContain('connection to');
      expect((await server.app('tail')).status).toBe(200);
      await waitFor(() => entries().some((e) => e.event === 'cold_start' && e.instanceId !== firstInstance), { timeoutMs: 15_000, what: 'the cold start after the restart' });
    } finally {
      abort.abort();
    }
    expect(await running).toBe(0);
    const ids = entries().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    // every entry the server holds from the first one printed on was printed (the shutdown's events too)
    const { body } = await server.api('GET', '/api/v1/services/tail/logs?since=1h&limit=10000');
    const stored = (body.entries as { id: number }[]).map((e) => e.id).filter((id) => id >= ids[0]! && id <= ids.at(-1)!);
    expect(ids).toEqual(stored);
    expect(entries().some((e) => e.event === 'stopped')).toBe(true);
  });
});
