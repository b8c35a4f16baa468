// The soak outside vitest, for long runs and for the figures in the README:
//   node --import tsx test/soak/run.ts [--seconds 600] [--services 20] [--samples]
// Prints progress on stderr and the report as JSON on stdout; exits 1 when the run fails the
// same checks as test/reliability/soak.test.ts.
import { parseArgs } from 'node:util';
import { runSoak } from './soak.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env.SOAK_SECONDS ?? '600' },
    services: { type: 'string', default: '20' },
    samples: { type: 'boolean', default: false },
  },
});

const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds < 70) throw new Error('--seconds must be a number ≥ 70 (a 60 s warm-up, then the run)');
const report = await runSoak({ seconds, services: Number(values.services), log: (l) => process.stderr.write(`soak: ${l}\n`) });
const { samples: _samples, ...rss } = report.rss;
process.stdout.write(JSON.stringify({ ...report, rss: values.samples ? report.rss : rss }, null, 2) + '\n');

const problems = [
  report.failureCount && `${report.failureCount} failed requests or actions`,
  report.deploys.other.length && `${report.deploys.other.length} deploys did not go live`,
  report.rss.growthPct >= 10 && `RSS grew ${report.rss.growthPct} % after the warm-up`,
  report.shutdown.exitCode !== 0 && `exit code ${report.shutdown.exitCode} on SIGTERM`,
  report.shutdown.instancePidsAlive.length && `instances alive after the stop: ${report.shutdown.instancePidsAlive.join(' ')}`,
  Object.values(report.shutdown.leftovers).some((l) => l.length) && `leftovers on the host: ${JSON.stringify(report.shutdown.leftovers)}`,
].filter(Boolean);
if (problems.length) {
  process.stderr.write(`soak: FAILED: ${problems.join('; ')}\n`);
  process.exitCode = 1;
} else {
  process.stderr.write(`soak: passed: ${report.requests} requests in ${report.seconds} s (${report.ratePerS}/s), ${report.thawResets.count} known thaw resets, RSS ${report.rss.warmupKb} → ${report.rss.endKb} kB\n`);
}
