// `cellhost VERB ...`: one verb per file, each returns its exit code. The table below is the
// only list of verbs: it dispatches, and the usage text, `cellhost help VERB` and the shell
// completion (`cellhost completion bash|zsh`) are all generated from it. A verb's help starts
// with its usage lines (`cellhost VERB ...`), which the completion reads; see completion.ts.
import { describeError } from '../core/errors.ts';
import { BACKUP_HELP, backupCommand, RESTORE_HELP, restoreCommand } from './backup.ts';
import { ApiError } from './client.ts';
import { bashCompletion, zshCompletion, type VerbDoc } from './completion.ts';
import { DELETE_HELP, deleteCommand } from './delete.ts';
import { CRON_HELP, cronCommand } from './cron.ts';
import { TASKS_HELP, tasksCommand } from './tasks.ts';
import { DEPLOY_HELP, deployCommand } from './deploy.ts';
import { UsageError, type CliIo } from './io.ts';
import { DOCTOR_HELP, doctorCommand } from './doctor.ts';
import { DOMAINS_HELP, domainsCommand } from './domains.ts';
import { ENV_HELP, envCommand } from './env.ts';
import { EXPORT_HELP, exportCommand } from './export.ts';
import { IMPORT_HELP, importCommand } from './import.ts';
import { KEYS_HELP, keysCommand } from './keys.ts';
import { OPEN_HELP, openCommand } from './open.ts';
import { SET_HELP, setCommand } from './set.ts';
import { STATUS_HELP, statusCommand } from './status.ts';
import { TOKENS_HELP, tokensCommand } from './tokens.ts';
import { USAGE_HELP, usageCommand } from './usage.ts';
import { LOGS_HELP, logsCommand } from './logs.ts';
import { SERVE_HELP, serveCommand } from './serve.ts';
import { DEPLOYMENTS_HELP, deploymentsCommand, loginCommand, rollbackCommand, SERVICES_HELP, servicesCommand, versionCommand } from './simple-verbs.ts';

type Verb = (args: string[], io: CliIo) => Promise<number>;

interface VerbEntry {
  run: Verb;
  help: string;
  /** one line for the verb list (and the shells' completion menus) */
  summary: string;
}

const COMPLETION_HELP = `cellhost completion bash|zsh
  Prints the shell completion script. bash: source <(cellhost completion bash), or save it as
  /etc/bash_completion.d/cellhost. zsh: source <(cellhost completion zsh) after compinit.`;

const HELP_HELP = `cellhost help [VERB]
  Lists the verbs, or explains one.`;

const VERBS: Record<string, VerbEntry> = {
  serve: { run: serveCommand, help: SERVE_HELP, summary: 'run the platform' },
  deploy: { run: deployCommand, help: DEPLOY_HELP, summary: 'build and deploy a directory or git repo' },
  doctor: { run: doctorCommand, help: DOCTOR_HELP, summary: 'check what this host enforces and which runtimes it has' },
  services: { run: servicesCommand, help: SERVICES_HELP, summary: 'list services' },
  status: { run: statusCommand, help: STATUS_HELP, summary: "a service's live deployment, instances, last cold start and last error" },
  set: { run: setCommand, help: SET_HELP, summary: "show or change a service's settings (memory, scaling, timeouts, port, commands)" },
  open: { run: openCommand, help: OPEN_HELP, summary: "print a service's URL and open it in a browser" },
  delete: { run: deleteCommand, help: DELETE_HELP, summary: 'delete a service' },
  logs: { run: logsCommand, help: LOGS_HELP, summary: 'runtime logs and events of a service (-f to follow)' },
  env: { run: envCommand, help: ENV_HELP, summary: "list, set, unset or import a service's environment variables" },
  deployments: { run: deploymentsCommand, help: DEPLOYMENTS_HELP, summary: "a service's deployments" },
  cron: { run: cronCommand, help: CRON_HELP, summary: 'HTTP requests to a service on a schedule: add, ls, rm, run' },
  domains: { run: domainsCommand, help: DOMAINS_HELP, summary: "add, list or remove a service's custom domains (and see their certificates)" },
  tasks: { run: tasksCommand, help: TASKS_HELP, summary: "a service's async task queue: ls, show, retry, token" },
  rollback: { run: rollbackCommand, help: 'cellhost rollback NAME [DEPLOYMENT]\n  Makes DEPLOYMENT (default: the one before the live one) live again.', summary: 'make an earlier deployment live' },
  usage: { run: usageCommand, help: USAGE_HELP, summary: 'requests, billed compute and cost per service' },
  tokens: { run: tokensCommand, help: TOKENS_HELP, summary: 'list, create or revoke API tokens' },
  keys: { run: keysCommand, help: KEYS_HELP, summary: 'rotate the master key that encrypts env values and private keys (server stopped)' },
  export: { run: exportCommand, help: EXPORT_HELP, summary: 'images and Knative manifests of services, to run them on Kubernetes (on the host)' },
  import: { run: importCommand, help: IMPORT_HELP, summary: 'create services from exported Knative manifests' },
  backup: { run: backupCommand, help: BACKUP_HELP, summary: 'write the data dir (store, images, optionally the key) to one file, while serving' },
  restore: { run: restoreCommand, help: RESTORE_HELP, summary: 'restore a backup into a new, empty data dir' },
  login: { run: loginCommand, help: 'cellhost login [--url URL] --token TOKEN\n  Checks the token and saves URL and token for the other verbs.', summary: 'save the API URL and token' },
  completion: { run: (args, io) => completionCommand(args, io), help: COMPLETION_HELP, summary: 'print the bash or zsh completion script' },
  help: { run: (args, io) => helpCommand(args, io), help: HELP_HELP, summary: 'list the verbs, or explain one' },
  version: { run: versionCommand, help: 'cellhost version', summary: 'print the version' },
};

export const VERB_NAMES = Object.keys(VERBS);

function verbDocs(): VerbDoc[] {
  return Object.entries(VERBS).map(([name, v]) => ({ name, summary: v.summary, help: v.help }));
}

export function usageText(): string {
  const width = Math.max(...VERB_NAMES.map((n) => n.length));
  const list = Object.entries(VERBS)
    .map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}\n`)
    .join('');
  return `Usage: cellhost <verb> [options]

Verbs:
${list}
Client verbs read CELLHOST_URL (default http://127.0.0.1:9090) and CELLHOST_TOKEN,
or what "cellhost login" saved. "cellhost help VERB" explains a verb.
`;
}

async function helpCommand(args: string[], io: CliIo): Promise<number> {
  const [verb, ...extra] = args;
  if (!verb) {
    io.out(usageText());
    return 0;
  }
  const entry = VERBS[verb];
  if (!entry || extra.length) throw new UsageError(`no verb "${[verb, ...extra].join(' ')}": the verbs are ${VERB_NAMES.join(', ')}`);
  io.out(entry.help + '\n');
  return 0;
}

async function completionCommand(args: string[], io: CliIo): Promise<number> {
  const [shell, ...extra] = args;
  if (extra.length) throw new UsageError('completion takes one shell');
  if (shell === 'bash') io.out(bashCompletion(verbDocs()));
  else if (shell === 'zsh') io.out(zshCompletion(verbDocs()));
  else throw new UsageError(shell ? `no completion for "${shell}": bash or zsh` : 'completion needs a shell: bash or zsh');
  return 0;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...args] = argv;
  if (!verb || verb === '--help' || verb === '-h') {
    io.out(usageText());
    return verb ? 0 : 2;
  }
  if (verb === '--version') return versionCommand([], io);
  const entry = VERBS[verb];
  if (!entry) {
    io.err(`cellhost: unknown verb "${verb}"\n\n${usageText()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(entry.help + '\n');
    return 0;
  }
  try {
    return await entry.run(args, io);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`cellhost ${verb}: ${describeError(err)}\n\n${entry.help}\n`);
      return 2;
    }
    if (err instanceof ApiError) {
      io.err(`cellhost ${verb}: ${err.message} (${err.code})\n`);
      return 1;
    }
    const coded = err as { code?: string; message?: string };
    io.err(`cellhost ${verb}: ${describeError(err)}${coded.code?.startsWith('ERR_') ? ` (${coded.code})` : ''}\n`);
    return 1;
  }
}
