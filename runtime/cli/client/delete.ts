// `cellhost delete NAME`: asks for the name on a terminal, or takes --yes; with neither it
// refuses, so a script cannot delete a service by a slip.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';

export const DELETE_HELP = `cellhost delete NAME [--yes]
  Deletes a service: stops its instances, removes its images, deployments, variables and logs.
  Asks to type the name on a terminal; --yes skips the question (scripts must pass it).`;

export async function deleteCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { yes: { type: 'boolean', short: 'y' } } });
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('delete needs one service name');
  const client = createClient(loadClientSettings(io.env));
  const path = `/api/v1/services/${encodeURIComponent(name)}`;
  // a service that does not exist is said so before any question
  const service = await client.request<{ instances: unknown[]; liveDeploymentId: string | null }>('GET', path);
  if (!values.yes) {
    if (!io.prompt) throw new UsageError(`not deleting ${name}: there is no terminal to confirm on; pass --yes to delete without asking`);
    io.err(`This deletes ${name}: ${service.instances.length} running instance(s) stop, its images, deployments, variables and logs are removed.\n`);
    const answer = (await io.prompt(`Type the service's name (${name}) to delete it: `)).trim();
    if (answer !== name) {
      io.err(`Not deleted: "${answer}" is not "${name}"\n`);
      return 1;
    }
  }
  await client.request('DELETE', path);
  io.out(`Deleted ${name}\n`);
  return 0;
}
