// The short verbs: each a request or two and a table.
import { parseArgs } from 'node:util';
import { VERSION } from '../version.ts';
import { createClient, loadClientSettings, saveClientSettings } from './client.ts';
import { UsageError, type CliIo } from './io.ts';

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

export async function servicesCommand(_args: string[], io: CliIo): Promise<number> {
  const client = createClient(loadClientSettings(io.env));
  const { services } = await client.request<{ services: ServiceRow[] }>('GET', '/api/v1/services');
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

export async function versionCommand(_args: string[], io: CliIo): Promise<number> {
  io.out(`cellhost ${VERSION} (node ${process.version})\n`);
  return 0;
}
