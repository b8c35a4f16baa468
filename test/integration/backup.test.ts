// Backups and restores: a platform with services, env, usage and tokens is backed up while it
// serves a load, restored into a new data dir, started, and every service answers with its env;
// a truncated or altered backup is refused with nothing written.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../runtime/cli/index.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let source: TestServer;
let work: string;
let ciToken: string;
const cleanups: (() => Promise<void> | void)[] = [];

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, { env: { HOME: work, ...env }, cwd: work, out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false });
  return { code, out, err };
}

/** the CLI as its own process (`cellhost VERB` from source) */
function runCliProcess(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'runtime/main.ts'), ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: work }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** nothing of a refused restore is left: not the target, not the unpacking dir beside it */
function expectNothingWritten(target: string) {
  expect(fs.existsSync(target)).toBe(false);
  expect(fs.readdirSync(path.dirname(target)).filter((n) => n.includes('.restore-'))).toEqual([]);
}

beforeAll(async () => {
  work = tempDir('cellhost-backup-');
  // the restored data dirs are made in here: the services' uids must be able to pass through it
  // to their images, or the restored platform runs its apps unsandboxed (as it says it does)
  fs.chmodSync(work, 0o711);
  source = await startTestServer();
  await source.deploy('alpha', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
  await source.api('PUT', '/api/v1/services/alpha/env', { vars: { GREETING: 'alpha from the backup' } });
  await source.deploy('beta', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', memoryMb: 256 });
  // a second build: beta has an image to roll back to
  const second = await source.deploy('beta', path.join(FIXTURES, 'node-hello'));
  expect(second.status).toBe('live');
  await source.api('PUT', '/api/v1/services/beta/env/GREETING', { value: 'beta from the backup' });
  ciToken = (await source.api('POST', '/api/v1/tokens', { name: 'ci' })).body.token;
  for (const s of ['alpha', 'beta']) expect((await source.app(s)).json.env).toBe(`${s} from the backup`);
  // usage reaches the store once a second
  await waitFor(async () => (await source.api('GET', '/api/v1/usage')).body.services.some((u: { service: string; requests: number }) => u.service === 'alpha' && u.requests > 0), { what: 'usage to be stored' });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await source?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('cellhost backup and restore', () => {
  let backupFile: string;
  let manifestNote = '';

  it('backs up while the platform serves a load, and restores into a new data dir that serves every service with its env', async () => {
    backupFile = path.join(work, 'platform.tar.gz');
    // a bounded load until the backup is done: requests to both services, and token writes to the
    // store; the backup runs as its own process, as it would beside a serving platform
    let done = false;
    let served = 0;
    let written = 0;
    const requests = (async () => {
      for (let i = 0; i < 20_000 && !done; i++) if ((await source.app(i % 2 ? 'alpha' : 'beta')).status === 200) served++;
    })();
    const writes = (async () => {
      for (let i = 0; i < 2000 && !done; i++) if ((await source.api('POST', '/api/v1/tokens', { name: `load-${i}` })).status === 201) written++;
    })();
    await waitFor(() => served > 20 && written > 2, { what: 'the load to run' });
    const before = { served, written };
    const r = await runCliProcess(['backup', backupFile, '--data', source.dataDir, '--include-key']).finally(() => (done = true));
    await Promise.all([requests, writes]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(served).toBeGreaterThan(before.served);
    expect(written).toBeGreaterThan(before.written);
    expect(r.out).toMatch(/^Backed up .* \(\d+(\.\d)? (KB|MB), [\d.]+ s\): 2 services, 3 deployments, 3 images, 2 env values, \d+ tokens/);
    const tokensInBackup = Number(/(\d+) tokens/.exec(r.out)![1]);
    expect(tokensInBackup).toBeGreaterThanOrEqual(2 + before.written);
    expect(fs.statSync(backupFile).mode & 0o777).toBe(0o600);

    // restored elsewhere and started (the source stopped first: one platform's instances at a time)
    await source.stop();
    const target = path.join(work, 'restored');
    const restored = await cli(['restore', backupFile, '--data', target]);
    expect(restored.err).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.out).toContain(`into ${target}: 2 services, 3 deployments, 3 images, 2 env values`);
    expect(fs.statSync(path.join(target, 'master.key')).mode & 0o777).toBe(0o600);
    const copy = await startTestServer({ dataDir: target });
    cleanups.push(() => copy.close());
    // in CI the host can sandbox: the restored platform must, too
    if (process.env.CI === 'true') expect((await copy.api('GET', '/api/v1/health')).body.isolation.features.sandbox).toBe(true);
    for (const s of ['alpha', 'beta']) {
      const res = await copy.app(s);
      expect(res.status, s).toBe(200);
      expect(res.json.env, s).toBe(`${s} from the backup`);
    }
    // usage and tokens came along; the rollback image too
    const usage = (await copy.api('GET', '/api/v1/usage')).body;
    expect(usage.services.find((u: { service: string }) => u.service === 'alpha').requests).toBeGreaterThan(0);
    const services = await fetch(copy.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer ${ciToken}` } });
    expect(services.status).toBe(200);
    const rollback = await runCli(['rollback', 'beta'], { env: { HOME: work, CELLHOST_URL: copy.adminUrl, CELLHOST_TOKEN: TOKEN }, cwd: work, out: () => {}, err: () => {}, isTTY: false });
    expect(rollback).toBe(0);
    expect((await copy.app('beta')).json.env).toBe('beta from the backup');
  });

  it('without --include-key the backup says the key is needed, and the restored platform refuses to start without it', async () => {
    source = await source.restart();
    const file = path.join(work, 'no-key.tar.gz');
    const r = await cli(['backup', file, '--data', source.dataDir]);
    expect(r.code).toBe(0);
    manifestNote = r.out;
    expect(r.out).toContain('the master key is NOT in this backup: env values are encrypted with it');
    await source.stop();
    const target = path.join(work, 'restored-no-key');
    const restored = await cli(['restore', file, '--data', target]);
    expect(restored.code).toBe(0);
    expect(restored.out).toContain(`copy the old master.key into ${target}`);
    expect(fs.existsSync(path.join(target, 'master.key'))).toBe(false);
    await expect(startTestServer({ dataDir: target, ownsDataDir: true })).rejects.toMatchObject({ code: 'ERR_KEY_INVALID' });
    // with the old key beside it, it starts and reads the env
    fs.copyFileSync(path.join(source.dataDir, 'master.key'), path.join(target, 'master.key'));
    const withKey = await startTestServer({ dataDir: target, ownsDataDir: true });
    cleanups.push(() => withKey.close());
    expect((await withKey.app('alpha')).json.env).toBe('alpha from the backup');
  });

  it('a truncated backup is refused with a clear error and nothing written', async () => {
    expect(manifestNote).not.toBe('');
    const bytes = fs.readFileSync(backupFile);
    const truncated = path.join(work, 'truncated.tar.gz');
    for (const length of [Math.floor(bytes.length / 2), bytes.length - 10, 100]) {
      fs.writeFileSync(truncated, bytes.subarray(0, length));
      const target = path.join(work, `from-truncated-${length}`);
      const r = await cli(['restore', truncated, '--data', target]);
      expect(r.code, String(length)).toBe(1);
      expect(r.err, String(length)).toMatch(/ERR_BACKUP_INVALID/);
      expect(r.err, String(length)).toMatch(/truncated/);
      expectNothingWritten(target);
    }
  });

  it('an altered backup (one byte of an image changed, the gzip made whole again) is refused with nothing written', async () => {
    const tarBytes = zlib.gunzipSync(fs.readFileSync(backupFile));
    const at = tarBytes.indexOf(Buffer.from('randomBytes(6)'));
    expect(at).toBeGreaterThan(0);
    tarBytes[at] = 'R'.charCodeAt(0);
    const altered = path.join(work, 'altered.tar.gz');
    fs.writeFileSync(altered, zlib.gzipSync(tarBytes));
    const target = path.join(work, 'from-altered');
    const r = await cli(['restore', altered, '--data', target]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the content of "images\/d-[0-9a-f]+\/app\.js" does not match its checksum.*ERR_BACKUP_INVALID/);
    expectNothingWritten(target);

    // not a backup at all
    const other = path.join(work, 'other.tar.gz');
    fs.writeFileSync(other, zlib.gzipSync(Buffer.from('just some text')));
    const notBackup = await cli(['restore', other, '--data', target]);
    expect(notBackup.code).toBe(1);
    expect(notBackup.err).toContain('ERR_BACKUP_INVALID');
    expectNothingWritten(target);
  });

  it('restores only into a new or empty data dir', async () => {
    const r = await cli(['restore', backupFile, '--data', source.dataDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is not empty .*restore only into a new or empty data dir/);
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    expect((await cli(['restore', backupFile, '--data', empty])).code).toBe(0);
    expect(fs.existsSync(path.join(empty, 'cellhost.db'))).toBe(true);
    expect((await cli(['restore', backupFile])).code).toBe(2);
  });
});
