// `cellhost git-remote NAME`: the commands that add a service's git remote (push to deploy), with
// the two ways to give git the API token: this CLI as git's credential helper (the token stays in
// the CLI's login, never in .git/config), or the token in the remote's URL.
// `cellhost git-remote --credential get` is that helper: git's credential protocol, answered with
// the token the other verbs use.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';

export const GIT_REMOTE_HELP = `cellhost git-remote NAME [--remote REMOTE]
  Prints the commands that add NAME's git remote (REMOTE, default "cellhost") to the repository
  in the current directory. "git push REMOTE <deploy branch>" then builds and deploys the pushed
  commit, with the build's output in the push's output; other branches deploy previews when the
  service has them on. git is given the API token as its password (any user name).
cellhost git-remote --credential get
  git's credential helper: prints the API token of "cellhost login" (or CELLHOST_TOKEN).`;

export async function gitRemoteCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { remote: { type: 'string' }, credential: { type: 'boolean' } } });
  const settings = loadClientSettings(io.env);
  if (values.credential) {
    // git asks "get", "store" or "erase"; only a get is answered
    if (positionals[0] === 'get') {
      if (!settings.token) throw new UsageError('no API token: run "cellhost login" or set CELLHOST_TOKEN');
      io.out(`username=cellhost\npassword=${settings.token}\n`);
    }
    return 0;
  }
  const name = positionals[0];
  if (!name) throw new UsageError('git-remote needs a service name');
  const service = await createClient(settings).request<{ name: string; deployBranch: string; previews: boolean }>('GET', `/api/v1/services/${encodeURIComponent(name)}`);
  const remote = values.remote ?? 'cellhost';
  const base = new URL(settings.url);
  const url = `${base.origin}/git/${service.name}.git`;
  const withToken = `${base.protocol}//cellhost:<token>@${base.host}/git/${service.name}.git`;
  io.out(
    [
      `# add the remote of ${service.name}:`,
      `git remote add ${remote} ${url}`,
      `# give git the API token through this CLI (nothing stored in .git/config):`,
      `git config credential.${base.origin}.helper '!cellhost git-remote --credential'`,
      `# or, instead, put the token in the remote's URL (kept in plain text in .git/config):`,
      `#   git remote add ${remote} ${withToken}`,
      `# deploy: push the deploy branch${service.previews ? ' (other branches deploy previews)' : ''}`,
      `git push ${remote} ${service.deployBranch}`,
      '',
    ].join('\n'),
  );
  return 0;
}
