// `cellhost cron add|ls|rm|run|runs|secret NAME ...`
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const CRON_HELP = `cellhost cron add NAME JOB "SCHEDULE" [--path /p] [--method GET|POST|PUT|PATCH|DELETE] [--body TEXT]
                  [--content-type TYPE] [--tz ZONE] [--overlap skip|allow] [--disabled]
cellhost cron ls NAME
cellhost cron rm NAME JOB
cellhost cron run NAME JOB          run it now and print the answer
cellhost cron runs NAME JOB [--limit N]
cellhost cron secret NAME [--rotate]
  A job is an HTTP request to the service on a schedule: 5 fields "min hour day month weekday",
  or 6 with seconds first ("*/10 * * * * *"), or @hourly, @daily...; in --tz (default UTC).
  Each run carries X-Cellhost-Cron: JOB and Authorization: Bearer $CELLHOST_CRON_SECRET.`;

interface Run {
  id: number;
  trigger: string;
  scheduledAt: string | null;
  startedAt: string;
  durationMs: number | null;
  status: string;
  statusCode: number | null;
  error: string | null;
  body: string | null;
}

interface Job {
  name: string;
  schedule: string;
  timeZone: string;
  method: string;
  path: string;
  enabled: boolean;
  overlap: string;
  nextRunAt: string | null;
  lastRun: Run | null;
  lastFailure: Run | null;
}

const outcome = (r: Run | null) => (r ? `${r.status}${r.statusCode ? ` ${r.statusCode}` : ''} ${r.scheduledAt ?? r.startedAt}` : '-');

export async function cronCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, name, ...rest] = args;
  if (!sub || !name) throw new UsageError('cron needs a subcommand and a service name');
  const client = createClient(loadClientSettings(io.env));
  const base = `/api/v1/services/${encodeURIComponent(name)}/cron`;
  const jobPath = (job: string | undefined) => {
    if (!job) throw new UsageError(`cron ${sub} needs a job name`);
    return `${base}/${encodeURIComponent(job)}`;
  };
  switch (sub) {
    case 'add': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          path: { type: 'string' },
          method: { type: 'string' },
          body: { type: 'string' },
          'content-type': { type: 'string' },
          tz: { type: 'string' },
          overlap: { type: 'string' },
          disabled: { type: 'boolean' },
        },
      });
      const [job, schedule, ...extra] = positionals;
      if (!job || !schedule) throw new UsageError('cron add needs a job name and a schedule (quoted: "0 3 * * *")');
      if (extra.length) throw new UsageError(`unexpected "${extra.join(' ')}": quote the schedule, e.g. "*/5 * * * *"`);
      const created = await client.request<Job>('POST', base, {
        name: job,
        schedule,
        ...(values.path !== undefined ? { path: values.path } : {}),
        ...(values.method !== undefined ? { method: values.method.toUpperCase() } : {}),
        ...(values.body !== undefined ? { body: values.body } : {}),
        ...(values['content-type'] !== undefined ? { contentType: values['content-type'] } : {}),
        ...(values.tz !== undefined ? { timeZone: values.tz } : {}),
        ...(values.overlap !== undefined ? { overlap: values.overlap } : {}),
        ...(values.disabled ? { enabled: false } : {}),
      });
      io.out(`Added cron job ${created.name} to ${name}: ${created.method} ${created.path} on "${created.schedule}" (${created.timeZone}); next run ${created.nextRunAt ?? '- (disabled)'}\n`);
      return 0;
    }
    case 'ls': {
      const { jobs } = await client.request<{ jobs: Job[] }>('GET', base);
      if (!jobs.length) {
        io.out(`No cron jobs on ${name}: cellhost cron add ${name} JOB "SCHEDULE" --path /path\n`);
        return 0;
      }
      io.out(
        formatTable([
          ['JOB', 'SCHEDULE', 'TZ', 'REQUEST', 'NEXT', 'LAST', 'LAST FAILURE'],
          ...jobs.map((j) => [j.name, j.schedule, j.timeZone, `${j.method} ${j.path}`, j.enabled ? (j.nextRunAt ?? '-') : 'disabled', outcome(j.lastRun), outcome(j.lastFailure)]),
        ]),
      );
      return 0;
    }
    case 'rm':
      await client.request('DELETE', jobPath(rest[0]));
      io.out(`Removed cron job ${rest[0]} from ${name}\n`);
      return 0;
    case 'run': {
      const run = await client.request<Run>('POST', `${jobPath(rest[0])}/run`);
      io.out(`${rest[0]}: ${run.status}${run.statusCode ? ` (${run.statusCode})` : ''} in ${run.durationMs} ms${run.error ? `: ${run.error}` : ''}\n`);
      if (run.body) io.out(run.body + '\n');
      return run.status === 'ok' ? 0 : 1;
    }
    case 'runs': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { limit: { type: 'string' } } });
      const limit = values.limit ?? '20';
      const { runs } = await client.request<{ runs: Run[] }>('GET', `${jobPath(positionals[0])}/runs?limit=${encodeURIComponent(limit)}`);
      if (!runs.length) {
        io.out('No runs yet\n');
        return 0;
      }
      io.out(
        formatTable([
          ['SCHEDULED', 'STARTED', 'TRIGGER', 'STATUS', 'CODE', 'MS', 'ERROR'],
          ...runs.map((r) => [r.scheduledAt ?? '(by hand)', r.startedAt, r.trigger, r.status, r.statusCode ? String(r.statusCode) : '-', r.durationMs === null ? '-' : String(r.durationMs), r.error ?? '']),
        ]),
      );
      return 0;
    }
    case 'secret': {
      const { values } = parseArgs({ args: rest, options: { rotate: { type: 'boolean' } } });
      const { secret } = await client.request<{ secret: string }>(values.rotate ? 'POST' : 'GET', `/api/v1/services/${encodeURIComponent(name)}/cron-secret`);
      io.out(secret + '\n');
      if (values.rotate) io.err('The old secret no longer works; instances are replaced to get the new CELLHOST_CRON_SECRET.\n');
      return 0;
    }
    default:
      throw new UsageError(`unknown cron subcommand "${sub}"`);
  }
}
