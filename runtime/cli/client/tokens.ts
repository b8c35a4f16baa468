// `cellhost tokens ls|create|revoke`: API tokens. A new token's secret is printed once.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { formatAgo, formatTime } from '../format.ts';
import { printJson, UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const TOKENS_HELP = `cellhost tokens ls [--json]
cellhost tokens create LABEL [--json]
cellhost tokens revoke TOKEN
  API tokens for the CLI, scripts and the console. create prints the secret once: keep it.
  revoke takes the token's id or its label (when one token has it); the last token cannot be revoked.`;

interface Token {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export async function tokensCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const [sub, ...rest] = positionals;
  const client = createClient(loadClientSettings(io.env));
  switch (sub) {
    case 'ls':
    case 'list': {
      const { tokens } = await client.request<{ tokens: Token[] }>('GET', '/api/v1/tokens');
      if (values.json) printJson(io, tokens);
      else io.out(formatTable([['ID', 'LABEL', 'CREATED', 'LAST USED'], ...tokens.map((t) => [t.id, t.name, formatTime(t.createdAt), t.lastUsedAt ? formatAgo(t.lastUsedAt) : 'never'])]));
      return 0;
    }
    case 'create': {
      const label = rest.join(' ').trim();
      if (!label) throw new UsageError('tokens create needs a label, such as "ci" or "laptop"');
      const created = await client.request<Token & { token: string }>('POST', '/api/v1/tokens', { name: label });
      if (values.json) printJson(io, created);
      else io.out(`Created token ${created.id} (${created.name}). Its secret, shown this once:\n${created.token}\n`);
      return 0;
    }
    case 'revoke':
    case 'rm': {
      const which = rest.join(' ').trim();
      if (!which) throw new UsageError('tokens revoke needs a token id or label');
      const { tokens } = await client.request<{ tokens: Token[] }>('GET', '/api/v1/tokens');
      const byId = tokens.find((t) => t.id === which);
      const byName = tokens.filter((t) => t.name === which);
      if (!byId && byName.length > 1) throw new UsageError(`${byName.length} tokens are labelled "${which}": revoke one by its id (${byName.map((t) => t.id).join(', ')})`);
      const token = byId ?? byName[0];
      if (!token) throw new UsageError(`no token with the id or label "${which}" (see cellhost tokens ls)`);
      await client.request('DELETE', `/api/v1/tokens/${encodeURIComponent(token.id)}`);
      io.out(`Revoked token ${token.id} (${token.name}): it no longer works, and console sessions logged in with it have ended\n`);
      return 0;
    }
    default:
      throw new UsageError(sub ? `unknown tokens subcommand "${sub}"` : 'tokens needs a subcommand: ls, create or revoke');
  }
}
