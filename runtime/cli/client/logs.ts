// `cellhost logs NAME [-f]`: the service's output and events, then (with -f) the live tail.
// The tail outlives the server: when the stream drops (a restart, a network blip) it connects
// again with a growing pause, resuming after the last entry it printed (Last-Event-ID), so
// nothing is printed twice and nothing written meanwhile is missed.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ApiError, createClient, loadClientSettings, readSse } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';

export const LOGS_HELP = `cellhost logs NAME [-f] [--since 1h] [--until TIME] [-q TEXT] [--json]
  Prints the service's runtime logs and platform events; -f keeps following them live, and
  reconnects by itself when the server restarts. --json prints one JSON object per entry.`;

interface Entry {
  id: number;
  time: string;
  stream: string;
  instanceId: string | null;
  event?: string;
  message: string;
}

/** the pause before each reconnection: doubling from a quarter second to 10 s */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 10_000;

export function formatEntry(e: Entry, color: boolean): string {
  const tag = e.stream === 'event' ? `[${e.event}]` : `[${e.instanceId ?? '-'}]`;
  const line = `${e.time} ${tag} ${e.message}`;
  if (!color) return line + '\n';
  if (e.stream === 'event') return `\x1b[36m${line}\x1b[0m\n`;
  if (e.stream === 'stderr') return `\x1b[33m${line}\x1b[0m\n`;
  return line + '\n';
}

/** worth connecting again: the server is away or failing, not refusing this request */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 0 || err.status >= 500;
  return true; // the stream broke mid-read
}

export async function logsCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', short: 'f' },
      since: { type: 'string' },
      until: { type: 'string' },
      q: { type: 'string', short: 'q' },
      json: { type: 'boolean' },
    },
  });
  const name = positionals[0];
  if (!name) throw new UsageError('logs needs a service name');
  const client = createClient(loadClientSettings(io.env));
  const print = (e: Entry) => io.out(values.json ? JSON.stringify(e) + '\n' : formatEntry(e, io.isTTY));
  const qs = new URLSearchParams();
  qs.set('since', values.since ?? (values.follow ? '10m' : '1h'));
  if (values.until) qs.set('until', values.until);
  if (values.q) qs.set('q', values.q);
  const path = `/api/v1/services/${encodeURIComponent(name)}/logs`;
  if (!values.follow) {
    const { entries } = await client.request<{ entries: Entry[] }>('GET', `${path}?${qs}`);
    for (const e of entries) print(e);
    return 0;
  }
  qs.set('follow', '1');
  const signal = io.signal;
  let lastId: string | undefined;
  let retryMs = FIRST_RETRY_MS;
  let lost = false;
  let connected = false;
  while (!signal?.aborted) {
    try {
      const res = await client.raw('GET', `${path}?${qs}`, { headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }, signal });
      if (lost) io.err(`(reconnected to ${client.settings.url})\n`);
      connected = true;
      lost = false;
      retryMs = FIRST_RETRY_MS;
      await readSse(res, (event, data, id) => {
        if (event !== 'log') return;
        if (id) lastId = id;
        print(JSON.parse(data) as Entry);
      });
    } catch (err) {
      if (signal?.aborted) break;
      // the first connection must work: a wrong name, token or URL is said at once
      if (!connected || !isTransient(err)) throw err;
    }
    if (signal?.aborted) break;
    if (!lost) io.err(`(connection to ${client.settings.url} lost; reconnecting)\n`);
    lost = true;
    await sleep(retryMs, undefined, { signal }).catch(() => {});
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }
  return 0;
}
