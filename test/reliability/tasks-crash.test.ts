// 1000 async tasks with kill -9 of the platform in the middle (while tasks are being accepted and
// delivered): after a restart on the same data dir, every task that was answered 202 is done, none
// is lost, and the app saw each one (a task cut by the kill again, with the same id and a higher
// attempt number).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { adminApi, FIXTURES, requestRouter, tempDir, waitFor } from '../helpers/server.ts';
import { seenByApp } from '../helpers/queue-app.ts';
import { freePortSync, spawnServer, stopServer, type ChildServer } from '../helpers/subprocess-server.ts';

const TASKS = 1000;
const dataDir = tempDir('cellhost-tasks-crash-');
let server: ChildServer | null = null;

afterAll(async () => {
  await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const api = adminApi(() => server!.adminUrl);

describe('async tasks across kill -9', () => {
  it('delivers every accepted task at least once, none lost, with the same id after the restart', async () => {
    const t0 = Date.now();
    const ports = { http: await freePortSync(), admin: await freePortSync() };
    server = await spawnServer(dataDir, ports);
    await api('POST', '/api/v1/services', { name: 'q', runtime: 'node', startCommand: 'node app.js' });
    // 40 ms of work per task: deliveries fall behind the senders, so the kill finds a backlog and
    // deliveries in flight (and the app's output stays under the log's per-instance line limit)
    await api('PUT', '/api/v1/services/q/env/DELAY_MS', { value: '40' });
    // 4 workers × 40 ms: about 100 deliveries a second, fewer than 20 senders accept even on a
    // loaded machine, so a backlog forms
    await api('PATCH', '/api/v1/services/q/task-queue', { workers: 4, minBackoffMs: 200, maxBackoffMs: 1000 });
    const archive = new Uint8Array(await packDirectory(path.join(FIXTURES, 'node-queue')));
    const dep = await api('POST', '/api/v1/services/q/deployments', archive, { 'content-type': 'application/gzip' });
    await waitFor(async () => (await api('GET', `/api/v1/deployments/${dep.body.id}`)).body.status === 'live', { timeoutMs: 30_000, what: 'the app live' });
    const token = (await api('GET', '/api/v1/services/q/task-token')).body.token as string;

    // senders: each takes the next number, sends it until it is answered 202 (a send the kill cut
    // is sent again: it was not accepted), so exactly TASKS tasks are accepted
    const accepted = new Map<string, number>();
    let next = 0;
    let refusedWhileDown = 0;
    const sender = async () => {
      for (;;) {
        const n = next++;
        if (n >= TASKS) return;
        for (let tries = 0; ; tries++) {
          if (tries > 400) throw new Error(`task ${n} never accepted`);
          const res = await requestRouter(server!.routerUrl, 'localhost', `/tasks/q/work?n=${n}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ n }),
          }).catch(() => null);
          if (res?.status === 202) {
            accepted.set(res.json.id, n);
            break;
          }
          refusedWhileDown++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const sending = Promise.all(Array.from({ length: 20 }, sender));

    // the kill: once a good part is accepted, some delivered, a backlog waiting, deliveries under way
    let last: any = null;
    await waitFor(async () => {
      const q = (last = (await api('GET', '/api/v1/services/q/task-queue')).body);
      return accepted.size >= 400 && q.counts.done >= 50 && q.counts.queued >= 20 && q.counts.running > 0;
    }, {
      timeoutMs: 45_000,
      intervalMs: 20,
      what: 'tasks accepted and delivered before the kill',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${accepted.size} accepted, queue ${JSON.stringify(last?.counts)}`);
    });
    const before = (await api('GET', '/api/v1/services/q/task-queue')).body;
    server.proc.kill('SIGKILL');
    await server.exited;
    const killedAt = Date.now();
    const acceptedAtKill = accepted.size;
    server = await spawnServer(dataDir, ports);
    await sending;
    expect(accepted.size).toBe(TASKS);
    expect(new Set(accepted.values()).size).toBe(TASKS);

    // every accepted task done: read from the platform's task store (the API over it)
    await waitFor(
      async () => {
        const q = (await api('GET', '/api/v1/services/q/task-queue')).body;
        return q.counts.queued === 0 && q.counts.running === 0;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the queue drained after the restart' },
    );
    const stored = new Map<string, any>();
    let cursor: string | null = null;
    do {
      const page: any = (await api('GET', `/api/v1/services/q/tasks?limit=500${cursor ? `&cursor=${cursor}` : ''}`)).body;
      for (const t of page.tasks) stored.set(t.id, t);
      cursor = page.nextCursor;
    } while (cursor);
    const notDone = [...accepted.keys()].filter((id) => stored.get(id)?.status !== 'done');
    expect(notDone, 'accepted tasks not done (lost or stuck)').toEqual([]);

    // the app's side: the deliveries it logged (one JSON line each)
    const deliveries = new Map<string, number[]>();
    for (const seen of await seenByApp(api)) {
      if (!seen.task) continue;
      deliveries.set(seen.task, [...(deliveries.get(seen.task) ?? []), seen.attempt]);
    }
    // a delivery's log line can be lost only with the platform that was buffering it (it writes
    // its log every 100 ms): a task missing from the app's log must have been finished just
    // before the kill
    const unlogged = [...accepted.keys()].filter((id) => !deliveries.has(id));
    for (const id of unlogged) {
      const finished = Date.parse(stored.get(id).finishedAt);
      expect(finished, `task ${id} finished at ${stored.get(id).finishedAt} but the app never logged it`).toBeLessThanOrEqual(killedAt);
      expect(killedAt - finished).toBeLessThan(2000);
    }
    expect(unlogged.length).toBeLessThan(50);
    // a task delivered twice (cut by the kill) came again with the same id and a higher attempt
    const repeated = [...deliveries.entries()].filter(([, attempts]) => attempts.length > 1);
    for (const [id, attempts] of repeated) {
      expect(accepted.has(id)).toBe(true);
      const sorted = [...attempts].sort((a, b) => a - b);
      expect(new Set(sorted).size, `task ${id} attempts ${attempts}`).toBe(sorted.length);
    }
    // the app never fails: a second attempt can only be a delivery the kill cut, sent again after
    // the restart with the same id (it is in the store as done, with its higher attempt logged)
    const retried = [...accepted.keys()].filter((id) => stored.get(id).attempts >= 2);
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.length).toBeLessThanOrEqual(4 + 20);
    for (const id of retried) expect(deliveries.get(id), `task ${id} redelivered`).toContain(stored.get(id).attempts);
    // no task the platform never accepted reached the app under a made-up id
    for (const id of deliveries.keys()) expect(stored.has(id), `delivered ${id} is not in the store`).toBe(true);
    console.log(
      `tasks: ${TASKS} accepted (${acceptedAtKill} before the kill, ${before.counts.done} done then), ${refusedWhileDown} sends refused or cut while down, ` +
        `${retried.length} in flight at the kill and delivered again after the restart (${repeated.length} seen twice by the app), ${unlogged.length} finished in the last moment before the kill without a log line; ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 120_000);
});
