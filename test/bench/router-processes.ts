// Would more router processes help? The router's data path alone (router-worker.ts)
// as 1, 2 (and, on a larger host, up to 4) processes sharing the port, in front of the Node
// hello app on loopback, each under the same wrk load as the proxy row; beside it, wrk straight at
// the app. No platform: this is the upper bound, before what sharing leases across processes
// would cost. Runs alone (`node --import tsx test/bench/router-processes.ts`) or from run.ts.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../helpers/server.ts';
import { freePortSync } from '../helpers/subprocess-server.ts';
import { startChild } from './child.ts';
import { runIfMain } from './standalone.ts';
import { formatMs, formatRate, formatRatio } from './stats.ts';
import { findBinary, runWrk, type WrkResult } from './wrk.ts';

const WORKER = fileURLToPath(new URL('./router-worker.ts', import.meta.url));

export interface RouterProcessesResult {
  direct: WrkResult;
  runs: { processes: number; wrk: WrkResult }[];
}

export async function benchRouterProcesses(log: (line: string) => void = () => {}): Promise<RouterProcessesResult> {
  const wrk = findBinary('wrk');
  if (!wrk) throw new Error('wrk is not installed (apt-get install wrk)');
  const appPort = await freePortSync();
  const app = await startChild(process.execPath, [path.join(FIXTURES, 'node-hello', 'app.js')], { PORT: String(appPort) }, /listening/);
  try {
    const measure = async (url: string) => {
      await runWrk(wrk, url, { durationS: 1 });
      return runWrk(wrk, url);
    };
    log('router processes: wrk direct');
    const direct = await measure(`http://127.0.0.1:${appPort}/`);
    const counts = [...new Set([1, 2, Math.min(4, os.availableParallelism())])].sort((a, b) => a - b);
    const runs: RouterProcessesResult['runs'] = [];
    for (const processes of counts) {
      const port = await freePortSync();
      const router = await startChild(process.execPath, ['--import', 'tsx', WORKER, String(appPort), String(port), String(processes)], {}, /ready/);
      try {
        log(`router processes: wrk through ${processes}`);
        runs.push({ processes, wrk: await measure(`http://127.0.0.1:${port}/`) });
      } finally {
        await router.stop();
      }
    }
    return { direct, runs };
  } finally {
    await app.stop();
  }
}

/** appends the section as markdown to `out`; false when it could not run */
export async function appendRouterProcessesSection(out: string[], log: (line: string) => void = () => {}): Promise<boolean> {
  out.push('', `### Router processes sharing the port (the data path alone, no platform; ${os.availableParallelism()} cores)`, '');
  try {
    const r = await benchRouterProcesses(log);
    const one = r.runs.find((x) => x.processes === 1)!.wrk.requestsPerS;
    out.push(
      `| what | req/s (\`wrk -t1 -c32 -d5s\`) | p50 / p99 | vs one process | vs direct |`,
      '|---|---|---|---|---|',
      `| direct to the Node hello app | ${formatRate(r.direct.requestsPerS)} | ${formatMs(r.direct.p50Ms)} / ${formatMs(r.direct.p99Ms)} | | |`,
      ...r.runs.map(({ processes, wrk }) => `| ${processes} router process${processes > 1 ? 'es' : ''} | ${formatRate(wrk.requestsPerS)}${wrk.errors ? ` (${wrk.errors} errors)` : ''} | ${formatMs(wrk.p50Ms)} / ${formatMs(wrk.p99Ms)} | ${formatRatio(wrk.requestsPerS / one)} | ${formatRatio(wrk.requestsPerS / r.direct.requestsPerS)} |`),
    );
    return true;
  } catch (err) {
    log(`router processes: failed: ${(err as Error).stack ?? err}`);
    out.push(`failed: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
}

await runIfMain(import.meta.url, appendRouterProcessesSection);
