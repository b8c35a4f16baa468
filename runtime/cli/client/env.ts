// `cellhost env ls|set|unset|import NAME ...`
import fs from 'node:fs';
import path from 'node:path';
import { createClient, loadClientSettings } from './client.ts';
import { printJson, UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const ENV_HELP = `cellhost env ls NAME [--reveal] [--json]
cellhost env set NAME KEY=VALUE [KEY=VALUE ...] [--no-previews | --previews]
cellhost env unset NAME KEY [KEY ...]
cellhost env import NAME FILE.env
  Changes apply without a redeploy: new instances get the new values, warm ones are replaced.
  --no-previews keeps the variables from the service's preview deployments (a production
  secret); --previews gives them again. New variables go to previews unless told.`;

/** KEY=VALUE lines; # comments, blank lines, `export `, and single or double quotes */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UsageError(`line ${i + 1} is not KEY=VALUE`);
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    out[m[1]!] = value;
  }
  return out;
}

function parsePairs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`"${p}" is not KEY=VALUE`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

export async function envCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, name, ...rest] = args;
  if (!sub || !name) throw new UsageError('env needs a subcommand and a service name');
  const client = createClient(loadClientSettings(io.env));
  const base = `/api/v1/services/${encodeURIComponent(name)}/env`;
  switch (sub) {
    case 'ls': {
      const reveal = rest.includes('--reveal');
      const { vars } = await client.request<{ vars: { name: string; value: string; size: number; updatedAt: string; preview: boolean }[] }>('GET', `${base}${reveal ? '?reveal=1' : ''}`);
      if (rest.includes('--json')) printJson(io, vars);
      else if (!vars.length) io.out(`Service ${name} has no variables\n`);
      else io.out(formatTable([['NAME', 'SIZE', 'UPDATED', 'PREVIEWS', 'VALUE'], ...vars.map((v) => [v.name, `${v.size} B`, v.updatedAt, v.preview ? 'yes' : 'no', v.value])]));
      return 0;
    }
    case 'set': {
      const flags = rest.filter((a) => a === '--no-previews' || a === '--previews');
      const preview = flags.length ? flags[flags.length - 1] === '--previews' : undefined;
      const vars = parsePairs(rest.filter((a) => a !== '--no-previews' && a !== '--previews'));
      if (!Object.keys(vars).length) throw new UsageError('env set needs KEY=VALUE');
      for (const [k, value] of Object.entries(vars)) await client.request('PUT', `${base}/${encodeURIComponent(k)}`, { value, ...(preview === undefined ? {} : { preview }) });
      io.out(`Set ${Object.keys(vars).join(', ')} on ${name}: new instances use them, warm ones are being replaced\n`);
      return 0;
    }
    case 'unset': {
      if (!rest.length) throw new UsageError('env unset needs at least one KEY');
      for (const k of rest) await client.request('DELETE', `${base}/${encodeURIComponent(k)}`);
      io.out(`Removed ${rest.join(', ')} from ${name}\n`);
      return 0;
    }
    case 'import': {
      const file = rest[0];
      if (!file) throw new UsageError('env import needs a .env file');
      const vars = parseDotenv(fs.readFileSync(path.resolve(io.cwd, file), 'utf8'));
      // one atomic replace of the merged set, so the service restarts once, not per variable
      const { vars: current } = await client.request<{ vars: { name: string; value: string }[] }>('GET', `${base}?reveal=1`);
      const merged: Record<string, string> = Object.fromEntries(current.map((v) => [v.name, v.value]));
      Object.assign(merged, vars);
      await client.request('PUT', base, { vars: merged });
      io.out(`Imported ${Object.keys(vars).length} variables into ${name} (${current.length} were set before)\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown env subcommand "${sub}"`);
  }
}
