// Cold start of the Node hello app through cellhost vs spawning the same app directly:
// spawn (or request) → first 200, median of N each, interleaved so both see the same machine.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../../runtime/instances/launcher.ts';
import { probePort } from '../../runtime/instances/readiness.ts';
import { FIXTURES, requestRouter, startTestServer, waitFor } from '../helpers/server.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const APP = path.join(FIXTURES, 'node-hello');

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

/** the baseline: what a bare spawn of the app costs, with the same clean environment */
async function direct(): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn('node', ['app.js'], { cwd: APP, env: { PATH: '/usr/local/bin:/usr/bin:/bin', PORT: String(port) }, stdio: 'ignore' });
  while (!(await probePort('127.0.0.1', port))) await new Promise((r) => setTimeout(r, 1));
  const status = await get(port);
  const ms = performance.now() - t0;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  if (status !== 200) throw new Error(`direct run answered ${status}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchColdStart(): Promise<{ directMs: number; cellhostMs: number; ratio: number; runs: number; isolation: Record<string, boolean> }> {
  const server = await startTestServer();
  try {
    await server.deploy('bench', APP, { startCommand: 'node app.js', idleTimeoutS: 0.1 });
    const health = await server.api('GET', '/api/v1/health');
    const viaCellhost: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await waitFor(async () => (await server.api('GET', '/api/v1/services/bench')).body.instances.length === 0, { what: 'scale to zero', intervalMs: 10 });
      const t0 = performance.now();
      const r = await requestRouter(server.routerUrl, 'bench.localhost', '/');
      viaCellhost.push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`cellhost answered ${r.status}: ${r.text}`);
      bare.push(await direct());
    }
    const directMs = median(bare);
    const cellhostMs = median(viaCellhost);
    return { directMs, cellhostMs, ratio: cellhostMs / directMs, runs: RUNS, isolation: health.body.isolation.features };
  } finally {
    await server.close();
  }
}
