// A pool on real app processes (the direct launcher: no sandbox, no cgroup) serving the
// node-slow fixture, for tests of the pool's own rules. close() stops it and removes its files.
import fs from 'node:fs';
import path from 'node:path';
import { createDirectLauncher, type Launcher } from '../../runtime/instances/launcher.ts';
import { createPool, type Pool, type PoolEvent, type PoolOptions, type Target } from '../../runtime/instances/pool/index.ts';
import { FIXTURES, tempDir } from './server.ts';

export interface TestPool {
  pool: Pool;
  /** every event the pool reported, in order */
  events: PoolEvent[];
  /** a target for service "svc" running the fixture; deployment id `d-<generation>` */
  target(generation: string, fields?: Partial<Omit<Target, 'generation' | 'spec'>>): Target;
  close(graceMs: number): Promise<void>;
}

/** `wrap` may add to what the direct launcher's launches can do (a freezer, a memory reading) */
export function startTestPool(opts: Partial<Omit<PoolOptions, 'launcher' | 'onEvent'>>, wrap: (l: Launcher) => Launcher = (l) => l): TestPool {
  const runDir = tempDir('cellhost-pool-');
  // a copy, as a build would make: in place, the repo's package.json would make app.js a module
  const imageDir = path.join(runDir, 'image');
  fs.cpSync(path.join(FIXTURES, 'node-slow'), imageDir, { recursive: true });
  const events: PoolEvent[] = [];
  const pool = createPool({
    startTimeoutMs: 15_000,
    queueLimit: 1000,
    queueTimeoutMs: 30_000,
    freezeAfterMs: 0,
    ...opts,
    launcher: wrap(createDirectLauncher({ runDir })),
    onEvent: (e) => events.push(e),
  });
  return {
    pool,
    events,
    target: (generation, fields) => ({
      generation,
      spec: { service: 'svc', deploymentId: `d-${generation}`, imageDir, runtime: 'node', command: 'node app.js', port: 8080, memoryMb: 256, env: {} },
      concurrency: 1,
      maxInstances: 1,
      minInstances: 0,
      idleTimeoutMs: 60_000,
      healthPath: null,
      prewarm: false,
      ...fields,
    }),
    async close(graceMs) {
      try {
        await pool.close(graceMs);
      } finally {
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    },
  };
}
