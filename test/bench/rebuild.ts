// Rebuild with an unchanged lockfile vs the first build (docs/benchmarks.md, target ≥ 3×):
// the Express app with a package-lock.json made once in a temp dir, so the default build is
// `npm ci`. The first build fills the service's npm cache from the registry; the rebuilds of the
// same source read it. Build time = the deployment's startedAt → finishedAt (unpack and build,
// not the instance start). Beside it, the same `npm ci` straight on the host (empty cache, then
// warm) shows what npm's cache alone can gain here. Runs alone
// (`node --import tsx test/bench/rebuild.ts`) or from run.ts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packDirectory } from '../../builder/sources/index.ts';
import { FIXTURES } from '../helpers/server.ts';
import { deferCleanup } from './cleanup.ts';
import { startPlatform, type BenchPlatform } from './platform.ts';
import { runIfMain } from './standalone.ts';
import { formatMs, formatRatio, median, sleep } from './stats.ts';

const REBUILDS = Math.max(1, Number(process.env.BENCH_REBUILDS ?? 3));
const TARGET = 3;
const run = promisify(execFile);

export interface RebuildResult {
  firstMs: number;
  rebuildMs: number[];
  /** first build ÷ median rebuild */
  ratio: number;
  packages: number;
  /** baseline: `npm ci` of the same source on the host, outside the platform, empty cache then warm */
  hostNpmCi: { coldMs: number; warmMs: number };
  /** what the platform's clean stop left on the host (cgroups, namespaces, run dir) */
  leftovers: string[];
}

/** the Express fixture with a lockfile, in a temp dir the caller removes */
async function prepareSource(): Promise<{ dir: string; remove(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-express-'));
  const remove = deferCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['package.json', 'app.js']) fs.copyFileSync(path.join(FIXTURES, 'node-express', f), path.join(dir, f));
  // a cache of its own: the lockfile is resolved from the registry, the host's npm cache untouched
  await run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', path.join(dir, '.npm-cache')], {
    cwd: dir,
    timeout: 120_000,
  });
  fs.rmSync(path.join(dir, '.npm-cache'), { recursive: true, force: true });
  return { dir, remove: () => void remove() };
}

async function deployAndTime(platform: BenchPlatform, service: string, archive: Uint8Array): Promise<{ ms: number; log: string }> {
  const res = await platform.api('POST', `/api/v1/services/${service}/deployments`, archive, { 'content-type': 'application/gzip' });
  if (res.status !== 202) throw new Error(`deploying ${service}: ${res.status} ${JSON.stringify(res.body)}`);
  const id = res.body.id as string;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const { body } = await platform.api('GET', `/api/v1/deployments/${id}`);
    if (body.status === 'live') {
      const log = (await platform.api('GET', `/api/v1/deployments/${id}/logs`)).body as string;
      return { ms: Date.parse(body.finishedAt) - Date.parse(body.startedAt), log };
    }
    if (!['queued', 'building', 'ready'].includes(body.status)) {
      const log = (await platform.api('GET', `/api/v1/deployments/${id}/logs`)).body as string;
      throw new Error(`deployment ${id} ended ${body.status}: ${JSON.stringify(body.error)}\n${String(log).slice(-2000)}`);
    }
    if (Date.now() > deadline) throw new Error(`deployment ${id} still ${body.status} after 180 s`);
    await sleep(50);
  }
}

/** what npm itself gains from its cache on this host: `npm ci` with an empty cache, then again */
async function timeHostNpmCi(sourceDir: string): Promise<{ coldMs: number; warmMs: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-npmci-'));
  const remove = deferCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    for (const f of ['package.json', 'package-lock.json', 'app.js']) fs.copyFileSync(path.join(sourceDir, f), path.join(dir, f));
    const once = async () => {
      const t0 = performance.now();
      await run('npm', ['ci', '--no-fund', '--cache', path.join(dir, '.npm-cache')], { cwd: dir, timeout: 120_000 });
      return performance.now() - t0;
    };
    const coldMs = await once();
    return { coldMs, warmMs: await once() };
  } finally {
    await remove();
  }
}

export async function benchRebuild(log: (line: string) => void = () => {}): Promise<RebuildResult> {
  const source = await prepareSource();
  const hostNpmCi = await timeHostNpmCi(source.dir);
  log(`rebuild: host npm ci ${formatMs(hostNpmCi.coldMs)} with an empty cache, ${formatMs(hostNpmCi.warmMs)} warm`);
  const platform = await startPlatform();
  const leftovers: string[] = [];
  const close = deferCleanup(async () => leftovers.push(...(await platform.close()).leftovers));
  try {
    const created = await platform.api('POST', '/api/v1/services', { name: 'express', runtime: 'node' });
    if (created.status !== 201) throw new Error(`creating the service: ${created.status} ${JSON.stringify(created.body)}`);
    const archive = new Uint8Array(await packDirectory(source.dir));
    const first = await deployAndTime(platform, 'express', archive);
    if (!first.log.includes('npm ci')) throw new Error('the first build did not run `npm ci`: is the lockfile in the source?');
    const packages = Number(/added (\d+) packages/.exec(first.log.replace(/\x1b\[[0-9;]*m/g, ''))?.[1] ?? NaN);
    log(`rebuild: first build ${formatMs(first.ms)} (${packages} packages from the registry)`);
    const rebuildMs: number[] = [];
    for (let i = 0; i < REBUILDS; i++) {
      const again = await deployAndTime(platform, 'express', archive);
      rebuildMs.push(again.ms);
      log(`rebuild: rebuild ${i + 1} ${formatMs(again.ms)}`);
    }
    return { firstMs: first.ms, rebuildMs, ratio: first.ms / median(rebuildMs), packages, hostNpmCi, leftovers };
  } finally {
    await close();
    source.remove();
  }
}

/** appends the section as markdown to `out` (the result, or why it could not be measured); false when it could not run */
export async function appendRebuildSection(out: string[], log: (line: string) => void = () => {}): Promise<boolean> {
  out.push('', '### Rebuild with an unchanged lockfile (Express, `npm ci`, per-service npm cache)', '');
  try {
    const r = await benchRebuild(log);
    out.push(
      '| what | first build (empty npm cache) | rebuild, same lockfile (warm cache) | speed-up | target | met |',
      '|---|---|---|---|---|---|',
      `| cellhost build, deployment start → ready | ${formatMs(r.firstMs, 0)} (${r.packages} packages) | ${formatMs(median(r.rebuildMs), 0)} (median of ${r.rebuildMs.map((m) => Math.round(m)).join(', ')} ms) | ${formatRatio(r.ratio)} | ≥ ${TARGET}× | ${r.ratio >= TARGET ? 'yes' : '**no**'} |`,
      `| baseline: \`npm ci\` on the host, no platform | ${formatMs(r.hostNpmCi.coldMs, 0)} | ${formatMs(r.hostNpmCi.warmMs, 0)} | ${formatRatio(r.hostNpmCi.coldMs / r.hostNpmCi.warmMs)} | | |`,
    );
    if (r.leftovers.length) out.push('', `Left on the host after the rebuild platform's clean stop: ${r.leftovers.join(', ')}`);
    return true;
  } catch (err) {
    log(`rebuild: failed: ${(err as Error).stack ?? err}`);
    out.push(`failed: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
}

await runIfMain(import.meta.url, appendRebuildSection);
