// A seconds-field cron job in real time across a SIGTERM restart and a kill -9: every scheduled
// time is recorded exactly once (run, or missed while the platform was down), a time that passed
// during the downtime is run once at start (catch_up), and the app never gets one time twice.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { adminApi, FIXTURES, tempDir, waitFor } from '../helpers/server.ts';
import { seenByApp } from '../helpers/queue-app.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const PERIOD_MS = 3000;
const dataDir = tempDir('cellhost-cron-restart-');
let server: ChildServer | null = null;

afterAll(async () => {
  await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const api = adminApi(() => server!.adminUrl);

const runsOf = async () => (await api('GET', '/api/v1/services/q/cron/tick/runs?limit=200')).body.runs.reverse() as any[];

async function waitForRunsAfter(t: number, n: number) {
  await waitFor(async () => (await runsOf()).filter((r) => r.status === 'ok' && Date.parse(r.startedAt) > t).length >= n, {
    timeoutMs: n * PERIOD_MS + 15_000,
    intervalMs: 200,
    what: `${n} cron runs`,
  });
}

describe('cron across restarts', () => {
  it('runs each scheduled time of a seconds-field schedule exactly once across a SIGTERM restart and a kill -9', async () => {
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    server = await spawnServer(dataDir, ports);
    await api('POST', '/api/v1/services', { name: 'q', runtime: 'node', startCommand: 'node app.js' });
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-queue')));
    const dep = await api('POST', '/api/v1/services/q/deployments', archive, { 'content-type': 'application/gzip' });
    await waitFor(async () => (await api('GET', `/api/v1/deployments/${dep.body.id}`)).body.status === 'live', { timeoutMs: 30_000, what: 'the app live' });
    const created = await api('POST', '/api/v1/services/q/cron', {
      name: 'tick',
      schedule: `*/${PERIOD_MS / 1000} * * * * *`,
      path: '/cron',
      // the catch-up run at start cold-starts the app on a busy machine: the next time must not be
      // skipped for it, so every time outside the downtimes runs
      overlap: 'allow',
    });
    expect(created.status).toBe(201);
    const firstDue = Date.parse(created.body.nextRunAt);

    await waitForRunsAfter(0, 2);
    const downtimes: [number, number][] = [];
    // each downtime lasts at least two and a half periods: two or more times pass while it is down
    const stayDown = (since: number) => new Promise((r) => setTimeout(r, Math.max(0, since + 2.5 * PERIOD_MS - Date.now())));

    // a clean stop and start
    let down = Date.now();
    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    await stayDown(down);
    server = await spawnServer(dataDir, ports);
    downtimes.push([down, Date.now()]);
    await waitForRunsAfter(Date.now(), 2);

    // kill -9 and start
    down = Date.now();
    server.proc.kill('SIGKILL');
    await server.exited;
    await stayDown(down);
    server = await spawnServer(dataDir, ports);
    downtimes.push([down, Date.now()]);
    await waitForRunsAfter(Date.now(), 2);
    const end = Date.now();

    const runs = await runsOf();
    // a downtime ends when the new platform's scheduler starts: its first record, made at its start
    for (const d of downtimes) d[1] = Math.min(...runs.map((r) => Date.parse(r.startedAt)).filter((t) => t > d[0]));
    const show = () => runs.map((r) => `${r.scheduledAt} ${r.trigger} ${r.status} ${r.durationMs}ms started ${r.startedAt}`).join('\n') + `\ndowntimes ${downtimes.map(([a, b]) => `${new Date(a).toISOString()}-${new Date(b).toISOString()}`).join(', ')}`;
    const scheduled = runs.map((r) => Date.parse(r.scheduledAt));
    // exactly one record per scheduled time: none twice, none left out from the first to the last
    expect(new Set(scheduled).size).toBe(scheduled.length);
    const last = Math.max(...scheduled);
    const expected: number[] = [];
    for (let t = firstDue; t <= last; t += PERIOD_MS) expected.push(t);
    expect([...scheduled].sort((a, b) => a - b)).toEqual(expected);

    for (const r of runs) {
      const t = Date.parse(r.scheduledAt);
      const inDowntime = downtimes.some(([a, b]) => t > a && t <= b);
      if (r.status === 'missed') expect(inDowntime, `missed ${r.scheduledAt} outside the downtimes`).toBe(true);
      if (r.trigger === 'catch_up') expect(inDowntime).toBe(true);
      // a run the kill cut is interrupted; everything else ran and the app answered
      if (!inDowntime && r.status !== 'interrupted') expect(r.status, `run for ${r.scheduledAt}`).toBe('ok');
    }
    // each downtime had two or more times in it: the latest ran once at start, the ones before it
    // were recorded as missed (one right at the stop may still have run before the platform went)
    for (const [a, b] of downtimes) {
      const inside = runs.filter((r) => Date.parse(r.scheduledAt) > a && Date.parse(r.scheduledAt) <= b);
      expect(inside.length).toBeGreaterThanOrEqual(2);
      expect(inside.filter((r) => r.trigger === 'catch_up')).toHaveLength(1);
      const latest = inside[inside.length - 1];
      expect([latest.trigger, latest.status], show()).toEqual(['catch_up', 'ok']);
      expect(inside.filter((r) => r.status === 'missed').length).toBeGreaterThanOrEqual(1);
      for (const r of inside.slice(0, -1)) expect(['missed', 'ok', 'interrupted']).toContain(r.status);
    }

    // the app's side: it never got one scheduled time twice, and every run recorded ok reached it
    // (a log line can be lost only with the platform killed while buffering it)
    const got = (await seenByApp(api)).filter((s) => s.cron === 'tick' && s.scheduledAt);
    const times = got.map((s: any) => s.scheduledAt);
    expect(new Set(times).size).toBe(times.length);
    expect(got.every((s: any) => s.authorized)).toBe(true);
    const killAt = downtimes[1]![0];
    for (const r of runs.filter((r) => r.status === 'ok')) {
      if (!times.includes(r.scheduledAt)) expect(Math.abs(Date.parse(r.startedAt) - killAt), `run for ${r.scheduledAt} not seen by the app`).toBeLessThan(2000);
    }
    console.log(
      `cron: ${runs.length} scheduled times in ${((end - firstDue) / 1000).toFixed(0)} s: ${runs.filter((r) => r.status === 'ok').length} ok, ` +
        `${runs.filter((r) => r.trigger === 'catch_up').length} caught up at start, ${runs.filter((r) => r.status === 'missed').length} missed, ` +
        `${runs.filter((r) => r.status === 'interrupted').length} interrupted, longest ${Math.max(...runs.map((r) => r.durationMs ?? 0))} ms; downtimes ${downtimes.map(([a, b]) => `${b - a} ms`).join(', ')}`,
    );

    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 120_000);
});
