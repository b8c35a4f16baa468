// `npm run bench`: every benchmark in docs/benchmarks.md in one run, each beside its baseline, printed as one
// markdown table. Needs wrk and nginx on the host (a missing one is named and its row skipped);
// installs nothing; removes every process, temp dir and cgroup it made.
//
// `npm run bench -- --repeat 3` runs everything three times, prints each run's table, then one
// table of every row's figure per run, a target counted as met only when all the runs met it.
import { parseArgs } from 'node:util';
import { reclaimDeadServers } from '../helpers/leftovers.ts';
import { benchBurst, prepareGenerator } from './burst.ts';
import { deferCleanup, runCleanups } from './cleanup.ts';
import { benchColdStarts, nodeApp, prepareGoApp, preparePythonApp, type ColdApp } from './cold-start.ts';
import { describeHost, readLoadAverage } from './host-info.ts';
import { benchLayerColdStart } from './layer-cold-start.ts';
import { benchIdle } from './idle-footprint.ts';
import { startPlatform, type BenchPlatform } from './platform.ts';
import { benchPrewarm, prewarmRows } from './prewarm.ts';
import { benchProxy } from './proxy.ts';
import { buildRows, renderRepeatTable, renderTable, type BenchResults, type Row, type Section } from './report.ts';
import { REBUILD_TARGET, type RebuildRow } from './rebuild.ts';
import { benchThaw } from './thaw.ts';

const { values: args } = parseArgs({ options: { repeat: { type: 'string', default: '1' } }, allowPositionals: false });
const REPEAT = Math.max(1, Math.floor(Number(args.repeat)) || 1);
// BENCH_ONLY=proxy,cold,layer,burst,thaw,idle,prewarm,edge,budget,prewarm-burst,routers,rebuild,https
// runs just those sections (the others are "not run")
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (name: string) => !ONLY || ONLY.has(name);
// a full run takes ~5 min on a quiet 2-core machine; the rest is margin for slower or busier hosts
const DEADLINE_MS = Number(process.env.BENCH_DEADLINE_MS ?? 900_000) * REPEAT;
const started = performance.now();
const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const cleanUp = () => runCleanups((err) => log(`cleanup failed: ${(err as Error).message}`));
// bounded: past the deadline (or on Ctrl-C) everything started is stopped and the run ends
const watchdog = setTimeout(() => {
  log(`deadline of ${DEADLINE_MS / 1000} s passed: stopping`);
  void cleanUp().finally(() => process.exit(2));
}, DEADLINE_MS);
watchdog.unref();
// stopped early (Ctrl-C, or a `timeout`): what was started is removed all the same
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));

// what platforms of a bench or test run that died (stopped twice with Ctrl-C, a crash) left on the
// host goes first: their names are never reused, so nothing else would remove it
await reclaimDeadServers(log);

let failures = 0;

interface Run {
  rows: Row[];
  out: string[];
}

async function runOnce(index: number): Promise<Run> {
  const tag = REPEAT > 1 ? `run ${index + 1} of ${REPEAT}: ` : '';
  const leftovers: string[] = [];

  async function withPlatform<T>(env: Record<string, string>, fn: (p: BenchPlatform) => Promise<T>): Promise<T> {
    const platform = await startPlatform(env);
    const close = deferCleanup(async () => leftovers.push(...(await platform.close()).leftovers));
    try {
      return await fn(platform);
    } finally {
      await close();
    }
  }

  async function section<T>(name: string, fn: () => Promise<T>): Promise<Section<T>> {
    log(`${tag}${name}: start`);
    try {
      const value = await fn();
      log(`${tag}${name}: done`);
      return { ok: true, value };
    } catch (err) {
      failures++;
      log(`${tag}${name}: failed: ${(err as Error).stack ?? err}`);
      return { ok: false, reason: (err as Error).message.split('\n')[0]! };
    }
  }

  const host = describeHost();
  const loadBefore = readLoadAverage();
  let isolation = '';
  let isolationReasons: string[] = [];
  const results: BenchResults = { proxy: { ok: false, reason: 'not run' }, cold: [], layer: { ok: false, reason: 'not run' }, thaw: { ok: false, reason: 'not run' }, burst: { ok: false, reason: 'not run' }, idle: { ok: false, reason: 'not run' } };
  const stepLog = (line: string) => log(tag + line);

  try {
    const prepared = [await preparePythonApp(), await prepareGoApp()];
    for (const app of prepared) if (typeof app !== 'string' && app.cleanup) deferCleanup(app.cleanup);
    const apps: (ColdApp | { name: ColdApp['name']; missing: string })[] = [
      nodeApp(),
      ...prepared.map((app, i) => (typeof app === 'string' ? { name: (['python', 'go'] as const)[i]!, missing: app } : app)),
    ];

    // freezing off: direct and nginx traffic bypasses the pool, which would see the instance idle
    await withPlatform({ CELLHOST_FREEZE_AFTER_S: '0', CELLHOST_PREWARM_MB: '0' }, async (platform) => {
      const health = await platform.api('GET', '/api/v1/health');
      isolation = Object.entries(health.body?.isolation?.features ?? {}).map(([k, v]) => `${k} ${v ? 'on' : 'off'}`).join(', ');
      isolationReasons = health.body?.isolation?.reasons ?? [];
      if (wanted('proxy')) results.proxy = await section('proxy', () => benchProxy(platform, stepLog));
      if (wanted('cold')) {
        const present = apps.filter((a): a is ColdApp => !('missing' in a));
        const measured = await section('cold starts', () => benchColdStarts(platform, present, stepLog));
        for (const app of apps) {
          const r = 'missing' in app ? null : measured.ok ? measured.value.get(app.name) : null;
          results.cold.push({ app: app.name, result: 'missing' in app ? { ok: false, reason: app.missing } : r ? { ok: true, value: r } : { ok: false, reason: measured.ok ? 'not measured' : measured.reason } });
        }
      }
      const python = apps.find((a) => a.name === 'python');
      if (wanted('layer')) {
        results.layer = !python || 'missing' in python ? { ok: false, reason: python && 'missing' in python ? python.missing : 'no python app' } : await section('cold start with a system layer', () => benchLayerColdStart(platform, python));
      }
      if (wanted('burst')) {
        const generator = await prepareGenerator();
        if (generator.cleanup) deferCleanup(async () => generator.cleanup!());
        results.burst = await section('burst', () => benchBurst(platform, generator, stepLog));
      }
    });
    if (wanted('thaw')) results.thaw = await section('thaw', () => withPlatform({ CELLHOST_FREEZE_AFTER_S: '0.2', CELLHOST_PREWARM_MB: '0' }, benchThaw));
    if (wanted('idle')) results.idle = await section('idle footprint', () => withPlatform({}, benchIdle));
    // prewarmed instances and edge services, each on platforms of their own
    if (['prewarm', 'edge', 'budget', 'prewarm-burst'].some(wanted)) {
      log(`${tag}prewarm and edge: start`);
      results.extra = prewarmRows(await benchPrewarm(wanted, stepLog, leftovers));
      failures += results.extra.filter((r) => r.figure.startsWith('failed')).length;
      log(`${tag}prewarm and edge: done`);
    }
  } finally {
    await cleanUp();
  }

  const rows = buildRows(results);
  const loadAfter = readLoadAverage();
  const out = [
    `## cellhost benchmarks — ${host.date}${REPEAT > 1 ? ` (run ${index + 1} of ${REPEAT})` : ''}`,
    '',
    `Machine: ${host.cores} cores (\`nproc\`), ${host.cpuModel}, ${host.memoryGb} GB RAM, Linux ${host.kernel}, Node ${host.node}.`,
    `Load average (1/5/15 min) before: ${loadBefore}; after: ${loadAfter}. Isolation: ${isolation || 'unknown'}.`,
    // a degraded platform measures something else: say why, in the table's own words
    ...(isolationReasons.length ? ['', `**Isolation was degraded in this run**: ${isolationReasons.join('; ')}.`] : []),
    '',
    renderTable(rows),
    '',
    'Same run, side by side; the platform runs as its own process, the executable users run (`dist/cellhost serve`, built first).',
    'Each figure is the median of its rounds with their interquartile range (IQR); a row whose rounds spread wider than its bound',
    'says the machine was too noisy to tell instead of yes or no. Proxy rows hit one instance of the Node hello app (3538 MB: a CPU',
    'cap of two cores, so the cap is not what is measured); nginx runs one worker with upstream keep-alive. Fixed-rate latency is',
    "timed from each request's send to the end of its response.",
  ];
  if (leftovers.length) out.push('', `Left on the host after the platforms' clean stop: ${leftovers.join(', ')}`);
  if (wanted('routers') && !(await (await import('./router-processes.ts')).appendRouterProcessesSection(out, stepLog))) failures++;
  if (wanted('rebuild')) {
    const onRow = (r: RebuildRow) =>
      rows.push({ key: r.key, what: 'rebuild with an unchanged lockfile (Express)', baseline: '', nginx: '—', cellhost: r.figure, comparison: '', target: `≥ ${REBUILD_TARGET}× the first build`, verdict: r.met === null ? { kind: 'n/a' } : r.met ? { kind: 'met' } : { kind: 'not-met' }, figure: r.figure });
    if (!(await (await import('./rebuild.ts')).appendRebuildSection(out, stepLog, onRow))) failures++;
  }
  if (wanted('https') && !(await (await import('./https.ts')).appendHttpsSection(out, stepLog))) failures++;
  return { rows, out };
}

const runs: Run[] = [];
for (let i = 0; i < REPEAT; i++) {
  const run = await runOnce(i);
  runs.push(run);
  // each run's table as soon as it is there: a long repeat cut short keeps what it measured
  process.stdout.write(run.out.join('\n') + '\n\n');
}
if (REPEAT > 1) {
  process.stdout.write(
    [`## Over ${REPEAT} runs`, '', renderRepeatTable(runs.map((r) => r.rows)), '', `A target is met only when each of the ${REPEAT} runs met it; a run too noisy for a row leaves the row undecided.`, ''].join('\n'),
  );
}
log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
// a benchmark that could not run is in the table; the exit status says so too
process.exit(failures ? 1 : 0);
