// Frozen warm instances: idle instances are frozen (no CPU, memory kept, not billed), thawed on
// the next request with their state intact, and stopped at the idle timeout.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, instancePids, isAlive, startTestServer, waitFor, type TestServer } from '../helpers/server.ts';

const ready = process.getuid?.() === 0 && fs.existsSync('/sys/fs/cgroup/freezer');
if (!ready && process.env.CI === 'true') throw new Error('freeze tests need root and the cgroup freezer in CI');

/** connections the app's listening sockets hold, not yet accepted, seen from its network namespace */
function acceptQueue(pid: number): number {
  const out = execFileSync('nsenter', ['-t', String(pid), '-n', 'ss', '-Hltn'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).reduce((n, line) => n + Number(line.trim().split(/\s+/)[1]), 0);
}

let server: TestServer;
describe.skipIf(!ready)('frozen warm instances', () => {
  beforeAll(async () => {
    server = await startTestServer({ env: { CELLHOST_FREEZE_AFTER_S: '0.3' } });
    await server.deploy('counter', path.join(FIXTURES, 'node-cpu'), { startCommand: 'node app.js', idleTimeoutS: 3, buildCommand: 'true' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('freezes an idle instance, thaws it in a few ms with its memory intact, and bills no frozen time', async () => {
    const first = await server.app('counter', '/alloc?mb=5');
    expect(first.json.heldMb).toBe(5);
    const inst = await waitFor(async () => (await server.api('GET', '/api/v1/services/counter')).body.instances.find((i: any) => i.frozen));
    const state = `/sys/fs/cgroup/freezer/${server.cgroupPrefix}/${inst.id}/freezer.state`;
    await waitFor(() => fs.readFileSync(state, 'utf8').trim() === 'FROZEN', { what: 'the cgroup frozen' });
    // a frozen process is in the refrigerator: stopped (D/T-like) and using no CPU
    const ticks = () => fs.readFileSync(`/proc/${inst.pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b, 0);
    const cpu0 = ticks();
    const billedBefore = (await server.api('GET', '/api/v1/usage?from=1h')).body.total.billedMs;
    await new Promise((r) => setTimeout(r, 800));
    expect((await server.api('GET', '/api/v1/usage?from=1h')).body.total.billedMs).toBe(billedBefore);
    expect(ticks()).toBe(cpu0);
    // the connection for the next request is open already: it waits in the frozen app's accept
    // queue (a listening socket's Recv-Q), handshake done by the kernel
    await waitFor(() => acceptQueue(inst.pid) >= 1, { what: 'a connection waiting in the frozen app\'s accept queue' });
    const t0 = performance.now();
    const again = await server.app('counter', '/alloc?mb=1');
    const thawMs = performance.now() - t0;
    expect(again.json.heldMb).toBe(6);
    expect(thawMs).toBeLessThan(100);
    const events = (await server.api('GET', '/api/v1/services/counter/logs?stream=event')).body.entries.map((e: any) => e.event);
    expect(events).toEqual(expect.arrayContaining(['frozen', 'thawed']));
  });

  it('a frozen instance of a service without prewarming still stops at the idle timeout, leaving no process', async () => {
    // with prewarming (the default) the last instance is kept frozen at its idle timeout instead
    expect((await server.api('PATCH', '/api/v1/services/counter', { prewarm: false })).status).toBe(200);
    expect((await server.app('counter', '/')).status).toBe(200);
    const [pid] = await instancePids(server, 'counter');
    await waitFor(async () => (await server.api('GET', '/api/v1/services/counter')).body.instances.some((i: any) => i.frozen));
    await waitFor(() => !isAlive(pid!), { timeoutMs: 8000, what: 'frozen instance stopped at idle timeout' });
  });
});
