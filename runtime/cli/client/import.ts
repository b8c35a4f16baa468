// `cellhost import --from knative FILE|DIR`: creates services from Knative manifests (what
// `cellhost export` wrote) through the API. Everything is read and checked first; no service is
// created unless all can be.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CellhostError } from '../../core/errors.ts';
import { readKnativeManifests } from '../../export/knative-import.ts';
import { ApiError, createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';

export const IMPORT_HELP = `cellhost import --from knative FILE|DIR
  Creates a service for each Knative Service in FILE (or in DIR's *.yaml files, as "cellhost
  export --out DIR" wrote them): its settings, its env from the Secrets it refers to, its domains
  from DomainMappings. Then deploy its source with "cellhost deploy DIR --name NAME". Only Services
  exported by cellhost can be imported: one that just names an image is refused.`;

function readFiles(target: string): { file: string; text: string }[] {
  const st = fs.statSync(target, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`${target} does not exist`);
  if (!st.isDirectory()) return [{ file: target, text: fs.readFileSync(target, 'utf8') }];
  const names = fs.readdirSync(target).filter((n) => /\.ya?ml$/.test(n)).sort();
  if (!names.length) throw new CellhostError('ERR_IMPORT_INVALID', `${target} holds no .yaml files`);
  return names.map((n) => ({ file: path.join(target, n), text: fs.readFileSync(path.join(target, n), 'utf8') }));
}

export async function importCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { from: { type: 'string' } } });
  if (values.from !== 'knative') throw new UsageError(values.from ? `unknown source "${values.from}": the only one is knative` : '--from knative is required');
  if (positionals.length !== 1) throw new UsageError('import takes one FILE or DIR');
  const { services, notes } = readKnativeManifests(readFiles(path.resolve(io.cwd, positionals[0]!)));
  for (const n of notes) io.err(`${n}\n`);

  const client = createClient(loadClientSettings(io.env));
  for (const s of services) {
    try {
      await client.request('GET', `/api/v1/services/${s.body.name}`);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'ERR_SERVICE_NOT_FOUND') continue;
      throw err;
    }
    throw new CellhostError('ERR_SERVICE_EXISTS', `service "${s.body.name}" exists already: nothing was imported (delete it first, or import the others alone)`);
  }
  const created: string[] = [];
  for (const s of services) {
    try {
      await client.request('POST', '/api/v1/services', s.body);
      created.push(s.body.name);
      if (Object.keys(s.env).length) await client.request('PUT', `/api/v1/services/${s.body.name}/env`, { vars: s.env });
    } catch (err) {
      if (created.length) io.err(`created before the failure: ${created.join(', ')}\n`);
      throw err;
    }
    const env = Object.keys(s.env).length;
    io.out(`Created service ${s.body.name} (${s.body.runtime}${env ? `, ${env} env var${env > 1 ? 's' : ''}` : ''}); deploy its source: cellhost deploy DIR --name ${s.body.name}\n`);
  }
  return 0;
}
