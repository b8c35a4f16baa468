// The pool with real app processes (direct launcher): what its pieces do together.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../runtime/core/clock.ts';
import { createDirectLauncher } from '../../../runtime/instances/launcher.ts';
import { createPool, type Pool, type PoolEvent, type Target } from '../../../runtime/instances/pool/index.ts';
import { FIXTURES, tempDir } from '../../helpers/server.ts';

let pool: Pool | null = null;
let runDir: string | null = null;

afterEach(async () => {
  await pool?.close(0);
  pool = null;
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  runDir = null;
});

function setUp(clock?: Clock) {
  runDir = tempDir('cellhost-pool-');
  // a copy, as a build would make: in place, the repo's package.json would make app.js a module
  const imageDir = path.join(runDir, 'image');
  fs.cpSync(path.join(FIXTURES, 'node-slow'), imageDir, { recursive: true });
  const events: PoolEvent[] = [];
  pool = createPool({
    launcher: createDirectLauncher({ runDir }),
    startTimeoutMs: 15_000,
    queueLimit: 100,
    queueTimeoutMs: 30_000,
    scaleOutAfterMs: 0,
    maxParallelStarts: 2,
    freezeAfterMs: 0,
    clock,
    onEvent: (e) => events.push(e),
  });
  const target = (generation: string): Target => ({
    generation,
    spec: { service: 'svc', deploymentId: `d-${generation}`, imageDir, runtime: 'node', command: 'node app.js', port: 8080, memoryMb: 256, env: {} },
    concurrency: 1,
    maxInstances: 2,
    minInstances: 0,
    idleTimeoutMs: 60_000,
    healthPath: null,
  });
  return { pool, events, target };
}

describe('pool', () => {
  it('close() measures its grace for in-flight requests on the injected clock', async () => {
    // each reading of this clock is a second later: a grace of 60 s is over in a few polls
    let now = Date.now();
    const { pool, target } = setUp({ now: () => (now += 1000) });
    pool.setTarget('svc', target('g1'));
    const lease = await pool.acquire('svc');
    const t0 = performance.now();
    await pool.close(60_000);
    expect(performance.now() - t0).toBeLessThan(5_000);
    lease.release();
  });
});
