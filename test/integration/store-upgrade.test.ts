// Upgrades: a data dir written by the first released schema (test/fixtures/data-v1) opens with
// the current code, every record intact, and serves; a migration failing in the middle leaves
// the data dir as it was; a data dir from a newer version is refused before anything is touched.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../runtime/cli/index.ts';
import { migrate, openDatabase, SCHEMA_VERSION, schemaVersionOf } from '../../runtime/store/db.ts';
import { openStore } from '../../runtime/store/index.ts';
import { MIGRATIONS } from '../../runtime/store/migrations.ts';
import { startTestServer, tempDir, waitFor, type TestServer } from '../helpers/server.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/data-v1', import.meta.url));
const ADMIN_SECRET = 'fixture-admin-token-0123456789';
const CI_SECRET = 'fixture-ci-token-abcdefghijklmn';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** a data dir as the first schema left it: its files, and its database from the dump */
function materializeFixture(): string {
  const dir = tempDir('cellhost-v1-');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['images', 'logs']) fs.cpSync(path.join(FIXTURE, sub), path.join(dir, sub), { recursive: true });
  const db = new Database(path.join(dir, 'cellhost.db'));
  db.exec(fs.readFileSync(path.join(FIXTURE, 'cellhost.sql'), 'utf8').replaceAll('@DATA@', dir));
  db.pragma('journal_mode = WAL');
  db.close();
  return dir;
}

/** everything in the database, in order: schema, rows, version */
function dumpDatabase(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    const out: string[] = [`user_version ${schemaVersionOf(db)}`];
    const objects = db.prepare<[], { type: string; name: string; sql: string | null }>("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all();
    for (const o of objects) {
      out.push(`${o.type} ${o.name}: ${o.sql}`);
      if (o.type === 'table') for (const row of db.prepare(`SELECT * FROM "${o.name}" ORDER BY rowid`).all()) out.push(JSON.stringify(row));
    }
    return out.join('\n');
  } finally {
    db.close();
  }
}

/** path → sha256 of every file in the dir (SQLite's own -wal/-shm aside) */
function snapshotFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, p);
    if (e.isDirectory()) out[rel + '/'] = 'dir';
    else if (!/-(wal|shm)$/.test(rel)) out[rel] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

describe('a data dir from the first released schema', () => {
  it('opens with the current code: every record is there, the new tables empty', () => {
    const dir = materializeFixture();
    const store = openStore(path.join(dir, 'cellhost.db'));
    try {
      expect(schemaVersionOf(store.db)).toBe(SCHEMA_VERSION);
      expect(store.services.list()).toEqual([
        {
          name: 'hello',
          runtime: 'node',
          buildCommand: null,
          startCommand: 'node app.js',
          port: 8080,
          memoryMb: 256,
          plan: 'hobby',
          minInstances: 0,
          maxInstances: 3,
          concurrency: 50,
          idleTimeoutS: 120,
          requestTimeoutS: 30,
          healthPath: '/',
          rootDir: null,
          domains: ['hello.example.com'],
          // HTTPS came later: a redirect once a certificate exists, no HSTS, as for a new service
          httpsRedirect: true,
          hsts: false,
          // git deploys came later: the default branch, no previews
          deployBranch: 'main',
          previews: false,
          // prewarmed instances came later: on, as for a new service
          prewarm: true,
          // settings made before manifests existed: every one not at its default stays explicit
          explicitSettings: ['runtime', 'startCommand', 'memoryMb', 'maxInstances', 'concurrency', 'idleTimeoutS', 'requestTimeoutS', 'healthPath'],
          uid: null,
          subuidBase: null,
          liveDeploymentId: 'd-000000000002',
          createdAt: '2026-11-28T10:00:00.000Z',
          updatedAt: '2026-11-28T10:03:02.500Z',
        },
        {
          name: 'worker',
          runtime: 'python',
          buildCommand: 'pip install -r requirements.txt',
          startCommand: null,
          port: 9000,
          memoryMb: 1024,
          plan: 'pro',
          minInstances: 1,
          maxInstances: 2,
          concurrency: 10,
          idleTimeoutS: 300,
          requestTimeoutS: 900,
          healthPath: null,
          rootDir: 'src',
          domains: [],
          httpsRedirect: true,
          hsts: false,
          deployBranch: 'main',
          previews: false,
          prewarm: true,
          explicitSettings: ['runtime', 'buildCommand', 'port', 'plan', 'minInstances', 'maxInstances', 'concurrency'],
          uid: null,
          subuidBase: null,
          liveDeploymentId: null,
          createdAt: '2026-11-28T10:01:00.000Z',
          updatedAt: '2026-11-28T10:01:00.000Z',
        },
      ]);
      expect(store.deployments.listForService('hello')).toMatchObject([
        { id: 'd-000000000002', seq: 2, status: 'live', source: 'upload:tar.gz', imageDir: path.join(dir, 'images/d-000000000002'), systemLayer: null, startedAt: '2026-11-28T10:03:01.000Z', finishedAt: '2026-11-28T10:03:02.500Z' },
        { id: 'd-000000000001', seq: 1, status: 'superseded', imageDir: path.join(dir, 'images/d-000000000001') },
      ]);
      expect(store.deployments.listForService('worker')).toMatchObject([
        { id: 'd-000000000003', seq: 1, status: 'failed', source: 'git:https://example.com/worker.git#main', errorCode: 'ERR_BUILD_FAILED', error: 'the build command exited with code 1', imageDir: null },
      ]);
      expect(store.tokens.list().map((t) => t.name)).toEqual(['admin', 'ci']);
      expect(store.tokens.verify(ADMIN_SECRET, '2026-12-03T00:00:00.000Z')?.name).toBe('admin');
      expect(store.tokens.verify(CI_SECRET, '2026-12-03T00:00:00.000Z')?.name).toBe('ci');
      for (const table of ['logs', 'env_vars', 'service_minutes', 'meta', 'certificates', 'acme_accounts', 'acme_orders']) expect(store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    } finally {
      store.close();
    }
  });

  it('serves: the live image answers, the token works, rollback to the older image works', async () => {
    const dir = materializeFixture();
    const server: TestServer = await startTestServer({ dataDir: dir, ownsDataDir: false });
    cleanups.push(() => server.stop());
    const api = (method: string, p: string) => fetch(server.adminUrl + p, { method, headers: { authorization: `Bearer ${CI_SECRET}` } });
    const services = (await (await api('GET', '/api/v1/services')).json()) as { services: { name: string }[] };
    expect(services.services.map((s) => s.name)).toEqual(['hello', 'worker']);
    const res = await server.app('hello');
    expect(res.status).toBe(200);
    expect(res.json.hello).toBe('hello');
    expect((await api('POST', '/api/v1/deployments/d-000000000001/promote')).status).toBe(200);
    await waitFor(async () => ((await api('GET', '/api/v1/services/hello')).json() as Promise<{ liveDeploymentId: string }>).then((s) => s.liveDeploymentId === 'd-000000000001'));
    expect((await server.app('hello')).json.hello).toBe('hello');
  });

  it('a migration failing in the middle leaves the data dir as it was', () => {
    const dir = materializeFixture();
    const file = path.join(dir, 'cellhost.db');
    const dbBefore = dumpDatabase(file);
    const filesBefore = snapshotFiles(dir);
    const failing = [...MIGRATIONS.slice(0, 3), 'CREATE TABLE half_done (x INTEGER); INSERT INTO half_done VALUES (1); INSERT INTO no_such_table VALUES (1);', ...MIGRATIONS.slice(3)];
    const db = new Database(file);
    try {
      expect(() => migrate(db, failing)).toThrow(/no such table: no_such_table/);
    } finally {
      db.close();
    }
    expect(dumpDatabase(file)).toBe(dbBefore);
    expect(snapshotFiles(dir)).toEqual(filesBefore);
    // and the real upgrade still runs on it afterwards
    const store = openStore(file);
    expect(schemaVersionOf(store.db)).toBe(SCHEMA_VERSION);
    store.close();
  });

  it('serve refuses a data dir from a newer version with a clear message and changes nothing', async () => {
    const dir = materializeFixture();
    const file = path.join(dir, 'cellhost.db');
    const db = openDatabase(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const before = snapshotFiles(dir);
    const dbBefore = dumpDatabase(file);
    let err = '';
    const code = await runCli(['serve', '--data', dir, '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { env: {}, cwd: dir, out: () => {}, err: (t) => void (err += t), isTTY: false });
    expect(code).toBe(1);
    expect(err).toContain(`was written by a newer cellhost (schema version ${SCHEMA_VERSION + 1}; this one knows up to ${SCHEMA_VERSION})`);
    expect(err).toContain('ERR_DATA_TOO_NEW');
    expect(snapshotFiles(dir)).toEqual(before);
    expect(dumpDatabase(file)).toBe(dbBefore);
    expect(() => openStore(file)).toThrow(/newer cellhost/);
  });
});
