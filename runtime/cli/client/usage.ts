// `cellhost usage [--from T] [--to T] [--service NAME]`
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { printJson, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

interface Totals {
  requests: number;
  billedMs: number;
  gbSeconds: number;
  coldStarts: number;
  cost: number;
}

/** what GET /api/v1/usage answers, as far as this verb reads it */
interface UsageReport {
  from: string;
  to: string;
  pricePerGbSecond: number;
  /** each service's own numbers and its previews' (listed inside it) */
  services: (Totals & { service: string; previews?: (Totals & { service: string })[] })[];
  total: Totals;
}

export const USAGE_HELP = `cellhost usage [--from TIME] [--to TIME] [--service NAME] [--json]
  Requests, billed compute (ms and GB-s), cold starts and cost per service. TIME is ISO 8601,
  epoch ms or a duration ago (24h, 7d); the default period is this month so far.`;

export async function usageCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: 'string' }, to: { type: 'string' }, service: { type: 'string' }, json: { type: 'boolean' } } });
  const qs = new URLSearchParams(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const report = await createClient(loadClientSettings(io.env)).request<UsageReport>('GET', `/api/v1/usage?${qs}`);
  if (values.json) {
    printJson(io, report);
    return 0;
  }
  io.out(`Usage from ${report.from} to ${report.to} at $${report.pricePerGbSecond} per GB-s\n`);
  const row = (name: string, u: UsageReport['total']) => [name, String(u.requests), String(u.billedMs), u.gbSeconds.toFixed(3), String(u.coldStarts), `$${u.cost.toFixed(6)}`];
  io.out(formatTable([['SERVICE', 'REQUESTS', 'BILLED MS', 'GB-S', 'COLD STARTS', 'COST'], ...report.services.flatMap((u) => [row(u.service, u), ...(u.previews ?? []).map((p) => row(`  preview ${p.service}`, p))]), row('TOTAL', report.total)]));
  return 0;
}
