// `cellhost tasks ls|show|retry|token|settings ...`
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const TASKS_HELP = `cellhost tasks ls NAME [--status queued|running|done|dead] [--limit N]
cellhost tasks show ID
cellhost tasks retry ID               send a dead-lettered task again (same id)
cellhost tasks token NAME [--rotate]  the token to send tasks with, and how
cellhost tasks settings NAME [--workers N] [--max-attempts N] [--min-backoff-ms N] [--max-backoff-ms N]
  A task is a request sent to the router at /tasks/NAME/PATH with the token: it is stored and
  answered 202 with an id at once, then delivered to the app as PATH, retried until a 2xx.`;

interface Task {
  id: string;
  method: string;
  path: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  bodyBytes: number;
  createdAt: string;
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  finishedAt: string | null;
}

interface Queue {
  workers: number;
  maxAttempts: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  counts: { queued: number; running: number; done: number; dead: number };
  oldestPendingAgeS: number | null;
}

const describeQueue = (name: string, q: Queue) =>
  `${name}: ${q.counts.queued} queued, ${q.counts.running} running, ${q.counts.done} done, ${q.counts.dead} dead` +
  `${q.oldestPendingAgeS !== null ? `; oldest pending ${q.oldestPendingAgeS} s` : ''} · ${q.workers} workers, ${q.maxAttempts} attempts, backoff ${q.minBackoffMs}–${q.maxBackoffMs} ms\n`;

export async function tasksCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, arg, ...rest] = args;
  if (!sub || !arg) throw new UsageError('tasks needs a subcommand and a service name or task id');
  const client = createClient(loadClientSettings(io.env));
  const service = `/api/v1/services/${encodeURIComponent(arg)}`;
  switch (sub) {
    case 'ls': {
      const { values } = parseArgs({ args: rest, options: { status: { type: 'string' }, limit: { type: 'string' } } });
      const query = new URLSearchParams({ limit: values.limit ?? '50', ...(values.status ? { status: values.status } : {}) });
      const [queue, { tasks }] = await Promise.all([client.request<Queue>('GET', `${service}/task-queue`), client.request<{ tasks: Task[] }>('GET', `${service}/tasks?${query}`)]);
      io.out(describeQueue(arg, queue));
      if (tasks.length) {
        io.out(
          formatTable([
            ['ID', 'STATUS', 'ATTEMPTS', 'LAST', 'REQUEST', 'CREATED'],
            ...tasks.map((t) => [t.id, t.status, `${t.attempts}/${t.maxAttempts}`, t.lastStatusCode ? String(t.lastStatusCode) : '-', `${t.method} ${t.path}`, t.createdAt]),
          ]),
        );
      }
      return 0;
    }
    case 'show': {
      const t = await client.request<Task>('GET', `/api/v1/tasks/${encodeURIComponent(arg)}`);
      const rows: [string, string][] = [
        ['id', t.id],
        ['request', `${t.method} ${t.path} (${t.bodyBytes} bytes)`],
        ['status', t.status],
        ['attempts', `${t.attempts} of ${t.maxAttempts}`],
        ['last status', t.lastStatusCode === null ? '-' : String(t.lastStatusCode)],
        ['last error', t.lastError ?? '-'],
        ['created', t.createdAt],
        ['last attempt', t.lastAttemptAt ?? '-'],
        ['next attempt', t.nextAttemptAt ?? '-'],
        ['finished', t.finishedAt ?? '-'],
      ];
      io.out(rows.map(([k, v]) => `${k.padEnd(13)}${v}`).join('\n') + '\n');
      return 0;
    }
    case 'retry': {
      const t = await client.request<Task>('POST', `/api/v1/tasks/${encodeURIComponent(arg)}/retry`);
      io.out(`Task ${t.id} queued again (a new round of ${t.maxAttempts} attempts)\n`);
      return 0;
    }
    case 'token': {
      const { values } = parseArgs({ args: rest, options: { rotate: { type: 'boolean' } } });
      const [{ token }, svc] = await Promise.all([
        client.request<{ token: string }>(values.rotate ? 'POST' : 'GET', `${service}/task-token`),
        client.request<{ url: string }>('GET', service),
      ]);
      // tasks go to the platform's own host: the service's URL without the service's label
      const url = new URL(svc.url);
      url.hostname = url.hostname.slice(arg.length + 1);
      io.out(token + '\n');
      io.err(`Send a task:\n  curl -X POST ${url.origin}/tasks/${arg}/PATH -H "Authorization: Bearer ${token}" -d '...'\n`);
      if (values.rotate) io.err('The old token no longer works (tasks it sent are still delivered).\n');
      return 0;
    }
    case 'settings': {
      const { values } = parseArgs({
        args: rest,
        options: { workers: { type: 'string' }, 'max-attempts': { type: 'string' }, 'min-backoff-ms': { type: 'string' }, 'max-backoff-ms': { type: 'string' } },
      });
      const num = (v: string | undefined, flag: string) => {
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} takes a whole number`);
        return Number(v);
      };
      const patch = Object.fromEntries(
        Object.entries({
          workers: num(values.workers, 'workers'),
          maxAttempts: num(values['max-attempts'], 'max-attempts'),
          minBackoffMs: num(values['min-backoff-ms'], 'min-backoff-ms'),
          maxBackoffMs: num(values['max-backoff-ms'], 'max-backoff-ms'),
        }).filter(([, v]) => v !== undefined),
      );
      const queue = Object.keys(patch).length ? await client.request<Queue>('PATCH', `${service}/task-queue`, patch) : await client.request<Queue>('GET', `${service}/task-queue`);
      io.out(describeQueue(arg, queue));
      return 0;
    }
    default:
      throw new UsageError(`unknown tasks subcommand "${sub}"`);
  }
}
