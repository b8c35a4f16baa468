// An instance's death is in its service's log before a visitor is told of it: the router answers
// a dropped request with what the lease's diagnose() found (an OOM kill, read from the cgroup),
// and the log must already say the same, once. Here the pool runs a real app (direct launcher)
// whose launcher reports an OOM kill while the spawned process is still alive, as a sandbox's
// outer process outlives the app the kernel killed by a moment.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirectLauncher, type Launcher } from '../../../runtime/instances/launcher.ts';
import { createPool, type Pool, type PoolEvent } from '../../../runtime/instances/pool/index.ts';
import { FIXTURES, tempDir, waitFor } from '../../helpers/server.ts';

let pool: Pool | null = null;
let runDir: string | null = null;

afterEach(async () => {
  await pool?.close(2000);
  pool = null;
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  runDir = null;
});

describe('death report', () => {
  it('an OOM found by diagnose() is logged before diagnose() returns, and only once', async () => {
    runDir = tempDir('cellhost-death-');
    const imageDir = path.join(runDir, 'image');
    fs.cpSync(path.join(FIXTURES, 'node-hello'), imageDir, { recursive: true });
    const direct = createDirectLauncher({ runDir });
    let oomKilled = false;
    const launcher: Launcher = {
      ...direct,
      async prepare(spec) {
        const launch = await direct.prepare(spec);
        return { ...launch, diagnose: async () => (oomKilled ? { code: 'ERR_APP_OOM', message: `the app ran out of memory (limit ${spec.memoryMb} MB) and was killed` } : null) };
      },
    };
    const events: PoolEvent[] = [];
    pool = createPool({ launcher, startTimeoutMs: 15_000, queueLimit: 10, queueTimeoutMs: 10_000, freezeAfterMs: 0, onEvent: (e) => events.push(e) });
    pool.setTarget('svc', {
      generation: 'g1',
      spec: { service: 'svc', deploymentId: 'd1', imageDir, runtime: 'node', command: 'node app.js', port: 8080, memoryMb: 128, env: {} },
      concurrency: 1,
      maxInstances: 1,
      minInstances: 0,
      idleTimeoutMs: 60_000,
      healthPath: null,
    });
    const lease = await pool.acquire('svc');
    const [inst] = pool.instances('svc');

    oomKilled = true;
    const death = await lease.diagnose();
    const logged = events.filter((e) => e.type === 'oom');
    expect(death?.code).toBe('ERR_APP_OOM');
    expect(logged).toEqual([expect.objectContaining({ type: 'oom', instanceId: lease.instanceId, limitMb: 128 })]);
    lease.release();

    // the process then exits: the pool stops the instance without logging its death again
    process.kill(inst!.pid, 'SIGKILL');
    await waitFor(() => events.some((e) => e.type === 'stopped'), { what: 'the instance stopped' });
    expect(events.filter((e) => e.type === 'oom' || e.type === 'crash').map((e) => e.type)).toEqual(['oom']);
  });
});
