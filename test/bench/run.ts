// `npm run bench`: every benchmark in docs/benchmarks.md in one run, each beside its baseline, printed as one
// markdown table. Needs wrk and nginx on the host (a missing one is named and its row skipped);
// installs nothing; removes every process, temp dir and cgroup it made.
import { benchBurst, prepareGenerator } from './burst.ts';
import { deferCleanup, runCleanups } from './cleanup.ts';
import { benchColdStart, nodeApp, prepareGoApp, preparePythonApp, type ColdApp } from './cold-start.ts';
import { describeHost, readLoadAverage } from './host-info.ts';
import { benchLayerColdStart } from './layer-cold-start.ts';
import { benchIdle } from './idle-footprint.ts';
import { startPlatform, type BenchPlatform } from './platform.ts';
import { benchProxy } from './proxy.ts';
import { renderTable, type BenchResults, type Section } from './report.ts';
import { benchThaw } from './thaw.ts';

// BENCH_ONLY=proxy,cold,layer,burst,thaw,idle,routers,rebuild,https runs just those sections (the others are "not run")
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (name: string) => !ONLY || ONLY.has(name);
// a full run takes ~190 s here (the proxy section alone ~95 s); the rest is margin for slower hosts
const DEADLINE_MS = Number(process.env.BENCH_DEADLINE_MS ?? 480_000);
const started = performance.now();
const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);

const leftovers: string[] = [];
const cleanUp = () => runCleanups((err) => log(`cleanup failed: ${(err as Error).message}`));
// bounded: past the deadline (or on Ctrl-C) everything started is stopped and the run ends
const watchdog = setTimeout(() => {
  log(`deadline of ${DEADLINE_MS / 1000} s passed: stopping`);
  void cleanUp().finally(() => process.exit(2));
}, DEADLINE_MS);
watchdog.unref();
// stopped early (Ctrl-C, or a `timeout`): what was started is removed all the same
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));

async function withPlatform<T>(env: Record<string, string>, fn: (p: BenchPlatform) => Promise<T>): Promise<T> {
  const platform = await startPlatform(env);
  const close = deferCleanup(async () => leftovers.push(...(await platform.close()).leftovers));
  try {
    return await fn(platform);
  } finally {
    await close();
  }
}

let failures = 0;
async function section<T>(name: string, fn: () => Promise<T>): Promise<Section<T>> {
  log(`${name}: start`);
  try {
    const value = await fn();
    log(`${name}: done`);
    return { ok: true, value };
  } catch (err) {
    failures++;
    log(`${name}: failed: ${(err as Error).stack ?? err}`);
    return { ok: false, reason: (err as Error).message.split('\n')[0]! };
  }
}

const host = describeHost();
const loadBefore = readLoadAverage();
let isolation = '';
let isolationReasons: string[] = [];
const results: BenchResults = { proxy: { ok: false, reason: 'not run' }, cold: [], layer: { ok: false, reason: 'not run' }, thaw: { ok: false, reason: 'not run' }, burst: { ok: false, reason: 'not run' }, idle: { ok: false, reason: 'not run' } };

try {
  const prepared = [await preparePythonApp(), await prepareGoApp()];
  for (const app of prepared) if (typeof app !== 'string' && app.cleanup) deferCleanup(app.cleanup);
  const apps: (ColdApp | { name: string; missing: string })[] = [
    nodeApp(),
    ...prepared.map((app, i) => (typeof app === 'string' ? { name: ['python', 'go'][i]!, missing: app } : app)),
  ];

  // freezing off: direct and nginx traffic bypasses the pool, which would see the instance idle
  await withPlatform({ CELLHOST_FREEZE_AFTER_S: '0' }, async (platform) => {
    const health = await platform.api('GET', '/api/v1/health');
    isolation = Object.entries(health.body?.isolation?.features ?? {}).map(([k, v]) => `${k} ${v ? 'on' : 'off'}`).join(', ');
    isolationReasons = health.body?.isolation?.reasons ?? [];
    if (wanted('proxy')) results.proxy = await section('proxy', () => benchProxy(platform, log));
    for (const app of wanted('cold') ? apps : []) {
      results.cold.push({ app: app.name, result: 'missing' in app ? { ok: false, reason: app.missing } : await section(`cold start ${app.name}`, () => benchColdStart(platform, app)) });
    }
    const python = apps.find((a) => a.name === 'python');
    if (wanted('layer')) {
      results.layer = !python || 'missing' in python ? { ok: false, reason: python && 'missing' in python ? python.missing : 'no python app' } : await section('cold start with a system layer', () => benchLayerColdStart(platform, python));
    }
    if (wanted('burst')) {
      const generator = await prepareGenerator();
      if (generator.cleanup) deferCleanup(async () => generator.cleanup!());
      results.burst = await section('burst', () => benchBurst(platform, generator));
    }
  });
  if (wanted('thaw')) results.thaw = await section('thaw', () => withPlatform({ CELLHOST_FREEZE_AFTER_S: '0.2' }, benchThaw));
  if (wanted('idle')) results.idle = await section('idle footprint', () => withPlatform({}, benchIdle));
} finally {
  await cleanUp();
}

const loadAfter = readLoadAverage();
const out = [
  `## cellhost benchmarks — ${host.date}`,
  '',
  `Machine: ${host.cores} cores (\`nproc\`), ${host.cpuModel}, ${host.memoryGb} GB RAM, Linux ${host.kernel}, Node ${host.node}.`,
  `Load average (1/5/15 min) before: ${loadBefore}; after: ${loadAfter}. Isolation: ${isolation || 'unknown'}.`,
  // a degraded platform measures something else: say why, in the table's own words
  ...(isolationReasons.length ? ['', `**Isolation was degraded in this run**: ${isolationReasons.join('; ')}.`] : []),
  '',
  renderTable(results),
  '',
  'Same run, side by side; the platform runs as its own process, the executable users run (`dist/cellhost serve`, built first).',
  'Proxy rows hit one instance of the Node hello app (3538 MB: a CPU cap of two cores, so the cap is not what is measured);',
  'nginx runs one worker with upstream keep-alive. Fixed-rate latency is timed from each request\'s send to the end of its response.',
];
if (leftovers.length) out.push('', `Left on the host after the platforms' clean stop: ${leftovers.join(', ')}`);
if (wanted('routers') && !(await (await import('./router-processes.ts')).appendRouterProcessesSection(out, log))) failures++;
if (wanted('rebuild') && !(await (await import('./rebuild.ts')).appendRebuildSection(out, log))) failures++;
if (wanted('https') && !(await (await import('./https.ts')).appendHttpsSection(out, log))) failures++;
process.stdout.write(out.join('\n') + '\n');
log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
// a benchmark that could not run is in the table; the exit status says so too
process.exit(failures ? 1 : 0);
