// `cellhost cron` and `cellhost tasks` against a real server, in-process with captured output.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { FIXTURES, requestRouter, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';
import { removeCgroupParents } from '../../helpers/cgroups.ts';

let server: TestServer;
let home: string;
beforeAll(async () => {
  server = await startTestServer();
  home = tempDir('cellhost-cli-home-');
  await server.deploy('q', path.join(FIXTURES, 'node-queue'), { startCommand: 'node app.js' });
}, 60_000);
afterAll(async () => {
  await server?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: home, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN },
    cwd: FIXTURES,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
  });
  return { code, out, err };
}

describe('cellhost cron', () => {
  it('add, ls, run, runs, rm; the secret the app checks', async () => {
    const add = await cli('cron', 'add', 'q', 'nightly', '0 3 * * *', '--path', '/cron', '--tz', 'Europe/Paris');
    expect(add.code).toBe(0);
    expect(add.out).toMatch(/Added cron job nightly to q: GET \/cron on "0 3 \* \* \*" \(Europe\/Paris\); next run 20\d\d-/);
    const bad = await cli('cron', 'add', 'q', 'broken', '0 25 * * *');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/schedule: .*hour.*ERR_VALIDATION/);
    const unquoted = await cli('cron', 'add', 'q', 'x', '0', '3', '*', '*', '*');
    expect(unquoted.code).toBe(2);
    expect(unquoted.err).toContain('quote the schedule');

    const ls = await cli('cron', 'ls', 'q');
    expect(ls.out).toMatch(/^JOB\s+SCHEDULE\s+TZ\s+REQUEST/);
    expect(ls.out).toMatch(/nightly\s+0 3 \* \* \*\s+Europe\/Paris\s+GET \/cron/);

    const run = await cli('cron', 'run', 'q', 'nightly');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^nightly: ok \(200\) in \d+ ms/);
    expect(run.out).toContain('"authorized":true');
    const runs = await cli('cron', 'runs', 'q', 'nightly');
    expect(runs.out).toMatch(/\(by hand\)\s+\S+\s+manual\s+ok\s+200/);

    // a new secret: the app's instances are replaced and check the new one
    const before = (await cli('cron', 'secret', 'q')).out.trim();
    const rotated = await cli('cron', 'secret', 'q', '--rotate');
    expect(rotated.out.trim()).not.toBe(before);
    expect(rotated.out.trim()).toMatch(/^chc_/);
    await waitFor(async () => (await cli('cron', 'run', 'q', 'nightly')).code === 0, { timeoutMs: 15_000, what: 'a run with the new secret' });

    expect((await cli('cron', 'rm', 'q', 'nightly')).code).toBe(0);
    expect((await cli('cron', 'ls', 'q')).out).toContain('No cron jobs on q');
    const gone = await cli('cron', 'run', 'q', 'nightly');
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('ERR_CRON_NOT_FOUND');
  });
});

describe('cellhost tasks', () => {
  it('token, settings, ls, show, retry of a dead task', async () => {
    const tok = await cli('tasks', 'token', 'q');
    const token = tok.out.trim();
    expect(token).toMatch(/^cht_/);
    expect(tok.err).toMatch(/curl -X POST http:\/\/localhost:\d+\/tasks\/q\/PATH -H "Authorization: Bearer cht_/);

    const settings = await cli('tasks', 'settings', 'q', '--max-attempts', '2', '--min-backoff-ms', '100', '--max-backoff-ms', '200', '--workers', '3');
    expect(settings.out).toContain('3 workers, 2 attempts, backoff 100–200 ms');

    const sent = await requestRouter(server.routerUrl, 'localhost', '/tasks/q/fail', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x' });
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await waitFor(async () => (await server.api('GET', `/api/v1/tasks/${id}`)).body.status === 'dead', { timeoutMs: 15_000, what: 'the task dead' });

    const ls = await cli('tasks', 'ls', 'q', '--status', 'dead');
    expect(ls.out).toMatch(/^q: 0 queued, 0 running, \d+ done, 1 dead/);
    expect(ls.out).toMatch(new RegExp(`${id}\\s+dead\\s+2/2\\s+500\\s+POST /fail`));
    const show = await cli('tasks', 'show', id);
    expect(show.out).toMatch(/status\s+dead/);
    expect(show.out).toMatch(/last status\s+500/);
    const retry = await cli('tasks', 'retry', id);
    expect(retry.out).toContain(`Task ${id} queued again`);
    const again = await cli('tasks', 'retry', 'tsk_none');
    expect(again.code).toBe(1);
    expect(again.err).toContain('ERR_TASK_NOT_FOUND');
  });
});

describe('cellhost doctor', () => {
  it("names each cron job's last failure and each service's dead-lettered tasks, from the data dir", async () => {
    expect((await cli('cron', 'add', 'q', 'failing', '0 0 1 1 *', '--path', '/fail')).code).toBe(0);
    expect((await cli('cron', 'run', 'q', 'failing')).code).toBe(1);
    await waitFor(async () => (await server.api('GET', '/api/v1/services/q/tasks?status=dead')).body.tasks.length > 0, { timeoutMs: 15_000, what: 'a dead task' });
    const prefix = `${server.isolation.CELLHOST_CGROUP_PREFIX}-doctor`;
    const r = await cli('doctor', '--data', server.dataDir, '--cgroup-prefix', prefix, '--netns-prefix', 'chqd').finally(() => removeCgroupParents(prefix));
    expect(r.out).toMatch(/Cron and tasks \(.*cellhost\.db\)/);
    expect(r.out).toMatch(/FAIL cron q\/failing: last failure a run by hand, failed \(500\)/);
    expect(r.out).toMatch(/FAIL tasks q: 1 dead-lettered, last: .*500.*cellhost tasks ls q --status dead/);
  }, 60_000);
});
