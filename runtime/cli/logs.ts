// `cellhost logs NAME [-f]`: the service's output and events, then (with -f) the live tail.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings, readSse } from './client.ts';
import { UsageError, type CliIo } from './io.ts';

export const LOGS_HELP = `cellhost logs NAME [-f] [--since 1h] [--until TIME] [-q TEXT] [--json]
  Prints the service's runtime logs and platform events; -f keeps following them live.
  --json prints one JSON object per entry.`;

interface Entry {
  time: string;
  stream: string;
  instanceId: string | null;
  event?: string;
  message: string;
}

export function formatEntry(e: Entry, color: boolean): string {
  const tag = e.stream === 'event' ? `[${e.event}]` : `[${e.instanceId ?? '-'}]`;
  const line = `${e.time} ${tag} ${e.message}`;
  if (!color) return line + '\n';
  if (e.stream === 'event') return `\x1b[36m${line}\x1b[0m\n`;
  if (e.stream === 'stderr') return `\x1b[33m${line}\x1b[0m\n`;
  return line + '\n';
}

export async function logsCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { follow: { type: 'boolean', short: 'f' }, since: { type: 'string' }, until: { type: 'string' }, q: { type: 'string', short: 'q' }, json: { type: 'boolean' } },
  });
  const name = positionals[0];
  if (!name) throw new UsageError('logs needs a service name');
  const client = createClient(loadClientSettings(io.env));
  const print = (e: Entry) => io.out(values.json ? JSON.stringify(e) + '\n' : formatEntry(e, io.isTTY));
  const qs = new URLSearchParams();
  qs.set('since', values.since ?? (values.follow ? '10m' : '1h'));
  if (values.until) qs.set('until', values.until);
  if (values.q) qs.set('q', values.q);
  if (!values.follow) {
    const { entries } = await client.request<{ entries: Entry[] }>('GET', `/api/v1/services/${encodeURIComponent(name)}/logs?${qs}`);
    for (const e of entries) print(e);
    return 0;
  }
  qs.set('follow', '1');
  const res = await client.raw('GET', `/api/v1/services/${encodeURIComponent(name)}/logs?${qs}`, { headers: { accept: 'text/event-stream' } });
  await readSse(res, (event, data) => {
    if (event === 'log') print(JSON.parse(data) as Entry);
  });
  return 0;
}
