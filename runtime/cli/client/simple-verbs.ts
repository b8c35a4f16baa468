// The short verbs: each a request or two and a table.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings, saveClientSettings } from './client.ts';
import { formatTime } from '../format.ts';
import { printJson, UsageError, type CliIo } from '../io.ts';

interface ServiceRow {
  name: string;
  runtime: string;
  url: string;
  memoryMb: number;
  liveDeploymentId: string | null;
  instances: unknown[];
  preview?: { parent: string; branch: string; pullRequest: number | null } | null;
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export const SERVICES_HELP = `cellhost services [--json] [-q]
  Lists services with their URL, memory, live deployment and instances. -q prints only the names.`;

export async function servicesCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } } });
  const client = createClient(loadClientSettings(io.env));
  const { services } = await client.request<{ services: ServiceRow[] }>('GET', '/api/v1/services');
  if (values.json) {
    printJson(io, services);
    return 0;
  }
  if (values.quiet) {
    io.out(services.map((s) => s.name + '\n').join(''));
    return 0;
  }
  if (!services.length) {
    io.out('No services yet: cellhost deploy DIR --name NAME\n');
    return 0;
  }
  const row = (s: ServiceRow, name: string) => [name, s.runtime, `${s.memoryMb} MB`, String(s.instances.length), s.liveDeploymentId ?? '-', s.url];
  // a service's previews right under it, each named with its branch
  const parents = new Set(services.map((s) => s.name));
  const previewsOf = (name: string) => services.filter((s) => s.preview?.parent === name);
  const rows = services
    .filter((s) => !s.preview || !parents.has(s.preview.parent))
    .flatMap((s) => [
      row(s, s.preview ? `${s.name} (preview of ${s.preview.parent})` : s.name),
      ...previewsOf(s.name).map((p) => row(p, `  preview ${p.name} (${p.preview!.branch}${p.preview!.pullRequest ? `, #${p.preview!.pullRequest}` : ''})`)),
    ]);
  io.out(formatTable([['NAME', 'RUNTIME', 'MEMORY', 'INSTANCES', 'LIVE', 'URL'], ...rows]));
  return 0;
}

export const DEPLOYMENTS_HELP = `cellhost deployments NAME [--limit N] [--json]
  A service's deployments, newest first: status, source, when, how long the build took, why it failed.`;

interface DeploymentRow {
  id: string;
  status: string;
  source: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  error?: { code: string; message: string };
}

export async function deploymentsCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, limit: { type: 'string' } } });
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('deployments needs one service name');
  const limit = values.limit ?? '20';
  if (!/^\d+$/.test(limit)) throw new UsageError(`--limit ${limit}: a whole number`);
  const client = createClient(loadClientSettings(io.env));
  const { deployments } = await client.request<{ deployments: DeploymentRow[] }>('GET', `/api/v1/services/${encodeURIComponent(name)}/deployments?limit=${limit}`);
  if (values.json) {
    printJson(io, deployments);
    return 0;
  }
  if (!deployments.length) {
    io.out(`Service ${name} has no deployments yet: cellhost deploy DIR --name ${name}\n`);
    return 0;
  }
  const took = (d: DeploymentRow) => (d.startedAt && d.finishedAt ? `${((Date.parse(d.finishedAt) - Date.parse(d.startedAt)) / 1000).toFixed(1)} s` : '-');
  io.out(
    formatTable([
      ['ID', 'STATUS', 'SOURCE', 'CREATED', 'BUILD', 'ERROR'],
      ...deployments.map((d) => [d.id, d.status, d.source, formatTime(d.createdAt), took(d), d.error ? `${d.error.message} (${d.error.code})` : '']),
    ]),
  );
  return 0;
}

export async function rollbackCommand(args: string[], io: CliIo): Promise<number> {
  const [name, target] = args;
  if (!name) throw new UsageError('rollback needs a service name');
  const client = createClient(loadClientSettings(io.env));
  let id = target;
  if (!id) {
    const { deployments } = await client.request<{ deployments: { id: string; status: string }[] }>('GET', `/api/v1/services/${name}/deployments?limit=200`);
    const liveAt = deployments.findIndex((d) => d.status === 'live');
    const previous = deployments.slice(liveAt + 1).find((d) => d.status === 'superseded');
    if (!previous) throw new UsageError(`service ${name} has no earlier deployment to roll back to`);
    id = previous.id;
  }
  await client.request('POST', `/api/v1/deployments/${id}/promote`);
  io.out(`Service ${name} now serves deployment ${id}\n`);
  return 0;
}

export async function loginCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { url: { type: 'string' }, token: { type: 'string' } } });
  const current = loadClientSettings(io.env);
  const settings = { url: (values.url ?? current.url).replace(/\/+$/, ''), token: values.token ?? io.env.CELLHOST_TOKEN ?? null };
  if (!settings.token) throw new UsageError('login needs --token TOKEN (the admin token printed at first start, or one from POST /api/v1/tokens)');
  await createClient(settings).request('GET', '/api/v1/services');
  const file = saveClientSettings(io.env, settings);
  io.out(`Logged in to ${settings.url}; settings saved in ${file}\n`);
  return 0;
}
