// `cellhost hooks NAME`: the service's webhook (URL and secret to give the forge), the repository
// webhook deploys clone and its credential, and the last deliveries with what each did.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const HOOKS_HELP = `cellhost hooks NAME [--reveal] [--rotate]
            [--repo URL | --no-repo] [--token TOKEN [--user NAME] | --ssh-key FILE [--known-hosts FILE] | --no-credential]
            [--branch BRANCH] [--previews on|off]
  Shows NAME's webhook: the URL and secret to give GitHub, GitLab, Gitea or Forgejo (as the
  "secret" or "secret token"), the repository a push event deploys from, and the last deliveries.
  --reveal shows the secret; --rotate makes a new one (the old one stops working).
  --repo sets the git URL webhook deploys clone (without it: the URL each delivery names);
  --token or --ssh-key store a credential for a private repository (encrypted, never shown).
  --branch sets the deploy branch (default main); --previews on deploys other branches and pull
  requests as preview services.`;

interface Delivery {
  id: number;
  receivedAt: string;
  forge: string | null;
  event: string | null;
  status: number;
  code: string | null;
  action: string;
  detail: string;
}

interface Hook {
  url: string;
  secret: string;
  repository: string | null;
  credential: { kind: string; username?: string } | null;
  deployBranch: string;
  previews: boolean;
  deliveries: Delivery[];
}

export async function hooksCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      reveal: { type: 'boolean' },
      rotate: { type: 'boolean' },
      repo: { type: 'string' },
      'no-repo': { type: 'boolean' },
      token: { type: 'string' },
      user: { type: 'string' },
      'ssh-key': { type: 'string' },
      'known-hosts': { type: 'string' },
      'no-credential': { type: 'boolean' },
      branch: { type: 'string' },
      previews: { type: 'string' },
    },
  });
  const name = positionals[0];
  if (!name) throw new UsageError('hooks needs a service name');
  if (values.previews !== undefined && !['on', 'off'].includes(values.previews)) throw new UsageError('--previews takes on or off');
  if ([values.token, values['ssh-key'], values['no-credential']].filter((v) => v !== undefined).length > 1) {
    throw new UsageError('give one of --token, --ssh-key and --no-credential');
  }
  const client = createClient(loadClientSettings(io.env));
  const base = `/api/v1/services/${encodeURIComponent(name)}`;

  const patch: Record<string, unknown> = {};
  if (values.branch !== undefined) patch.deployBranch = values.branch;
  if (values.previews !== undefined) patch.previews = values.previews === 'on';
  if (Object.keys(patch).length) await client.request('PATCH', base, patch);

  const config: Record<string, unknown> = {};
  if (values.repo !== undefined) config.repository = values.repo;
  if (values['no-repo']) config.repository = null;
  if (values.token !== undefined) config.credential = { token: values.token, ...(values.user ? { username: values.user } : {}) };
  if (values['ssh-key'] !== undefined) {
    const read = (f: string) => fs.readFileSync(path.resolve(io.cwd, f), 'utf8');
    config.credential = { sshKey: read(values['ssh-key']), ...(values['known-hosts'] ? { knownHosts: read(values['known-hosts']) } : {}) };
  }
  if (values['no-credential']) config.credential = null;
  if (Object.keys(config).length) await client.request('PUT', `${base}/hooks`, config);

  let rotated: string | null = null;
  if (values.rotate) rotated = (await client.request<{ secret: string }>('POST', `${base}/hooks/secret`)).secret;
  const hook = await client.request<Hook>('GET', `${base}/hooks${values.reveal ? '?reveal=1' : ''}`);
  const credential = hook.credential ? (hook.credential.kind === 'token' ? `token (user ${hook.credential.username})` : 'SSH deploy key') : 'none';
  io.out(
    [
      `Webhook of ${name}`,
      `  URL          ${hook.url}   (content type application/json; any host of the router no service owns works)`,
      `  secret       ${rotated ?? hook.secret}${rotated ? '   (new: give it to the forge now)' : values.reveal ? '' : '   (--reveal shows it)'}`,
      `  repository   ${hook.repository ?? '(the one each delivery names)'}`,
      `  credential   ${credential}`,
      `  deploys      ${hook.deployBranch}; other branches and pull requests: ${hook.previews ? 'previews' : 'not deployed (--previews on)'}`,
      '',
    ].join('\n'),
  );
  if (!hook.deliveries.length) io.out('No deliveries yet.\n');
  else {
    io.out(
      formatTable([
        ['ID', 'RECEIVED', 'FROM', 'EVENT', 'STATUS', 'ACTION', 'DETAIL'],
        ...hook.deliveries.map((d) => [String(d.id), d.receivedAt, d.forge ?? '?', d.event ?? '-', d.code ? `${d.status} ${d.code}` : String(d.status), d.action, d.detail]),
      ]),
    );
  }
  return 0;
}
