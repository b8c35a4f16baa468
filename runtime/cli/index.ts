// `cellhost VERB ...`: one verb per file, each returns its exit code. The tables below are the
// only list of verbs: they dispatch, and the usage text, `cellhost help VERB` and the shell
// completion (`cellhost completion bash|zsh`) are all generated from them. A verb's help starts
// with its usage lines (`cellhost VERB ...`), which the completion reads; see completion.ts.
//
// Two kinds of verb, in two folders: host/ holds the verbs that run on the platform's host and
// use its data dir or the host itself (serve, doctor, keys, backup, restore, export); client/
// holds the verbs that talk to a platform's API over HTTP only, from anywhere.
import { describeError } from '../core/errors.ts';
import { VERSION } from '../version.ts';
import { ApiError } from './client/client.ts';
import { DELETE_HELP, deleteCommand } from './client/delete.ts';
import { DEPLOY_HELP, deployCommand } from './client/deploy.ts';
import { DOMAINS_HELP, domainsCommand } from './client/domains.ts';
import { ENV_HELP, envCommand } from './client/env.ts';
import { IMPORT_HELP, importCommand } from './client/import.ts';
import { LOGS_HELP, logsCommand } from './client/logs.ts';
import { OPEN_HELP, openCommand } from './client/open.ts';
import { SET_HELP, setCommand } from './client/set.ts';
import { DEPLOYMENTS_HELP, deploymentsCommand, loginCommand, rollbackCommand, SERVICES_HELP, servicesCommand } from './client/simple-verbs.ts';
import { STATUS_HELP, statusCommand } from './client/status.ts';
import { TOKENS_HELP, tokensCommand } from './client/tokens.ts';
import { USAGE_HELP, usageCommand } from './client/usage.ts';
import { bashCompletion, zshCompletion, type VerbDoc } from './completion.ts';
import { CRON_HELP, cronCommand } from './client/cron.ts';
import { GIT_REMOTE_HELP, gitRemoteCommand } from './client/git-remote.ts';
import { HOOKS_HELP, hooksCommand } from './client/hooks.ts';
import { TASKS_HELP, tasksCommand } from './client/tasks.ts';
import { BACKUP_HELP, backupCommand, RESTORE_HELP, restoreCommand } from './host/backup.ts';
import { DOCTOR_HELP, doctorCommand } from './host/doctor.ts';
import { EXPORT_HELP, exportCommand } from './host/export.ts';
import { KEYS_HELP, keysCommand } from './host/keys.ts';
import { SERVE_HELP, serveCommand } from './host/serve.ts';
import { UsageError, type CliIo } from './io.ts';

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

/** on the platform's host, as the user that runs serve: they use the data dir or the host itself */
const HOST_VERBS: Record<string, VerbEntry> = {
  serve: { run: serveCommand, help: SERVE_HELP, summary: 'run the platform' },
  doctor: { run: doctorCommand, help: DOCTOR_HELP, summary: 'check what this host enforces and which runtimes it has, the live system layers, HTTPS' },
  keys: { run: keysCommand, help: KEYS_HELP, summary: 'rotate the master key that encrypts env values and private keys (server stopped)' },
  export: { run: exportCommand, help: EXPORT_HELP, summary: 'images and Knative manifests of services, to run them on Kubernetes' },
  backup: { run: backupCommand, help: BACKUP_HELP, summary: 'write the data dir (store, images, optionally the key) to one file, while serving' },
  restore: { run: restoreCommand, help: RESTORE_HELP, summary: 'restore a backup into a new, empty data dir' },
};

/** anywhere: they talk to the platform's API over HTTP and nothing else */
const CLIENT_VERBS: Record<string, VerbEntry> = {
  deploy: { run: deployCommand, help: DEPLOY_HELP, summary: 'build and deploy a directory or git repo' },
  services: { run: servicesCommand, help: SERVICES_HELP, summary: 'list services' },
  status: { run: statusCommand, help: STATUS_HELP, summary: "a service's live deployment, instances, last cold start and last error" },
  set: { run: setCommand, help: SET_HELP, summary: "show or change a service's settings (memory, scaling, timeouts, port, commands)" },
  open: { run: openCommand, help: OPEN_HELP, summary: "print a service's URL and open it in a browser" },
  delete: { run: deleteCommand, help: DELETE_HELP, summary: 'delete a service' },
  logs: { run: logsCommand, help: LOGS_HELP, summary: 'runtime logs and events of a service (-f to follow)' },
  env: { run: envCommand, help: ENV_HELP, summary: "list, set, unset or import a service's environment variables" },
  deployments: { run: deploymentsCommand, help: DEPLOYMENTS_HELP, summary: "a service's deployments" },
  'git-remote': { run: gitRemoteCommand, help: GIT_REMOTE_HELP, summary: 'the git remote of a service: git push deploys' },
  hooks: { run: hooksCommand, help: HOOKS_HELP, summary: "a service's webhook (secret, repository, deliveries), deploy branch, previews" },
  cron: { run: cronCommand, help: CRON_HELP, summary: 'HTTP requests to a service on a schedule: add, ls, rm, run' },
  domains: { run: domainsCommand, help: DOMAINS_HELP, summary: "add, list or remove a service's custom domains (and see their certificates)" },
  tasks: { run: tasksCommand, help: TASKS_HELP, summary: "a service's async task queue: ls, show, retry, token" },
  rollback: { run: rollbackCommand, help: 'cellhost rollback NAME [DEPLOYMENT]\n  Makes DEPLOYMENT (default: the one before the live one) live again.', summary: 'make an earlier deployment live' },
  usage: { run: usageCommand, help: USAGE_HELP, summary: 'requests, billed compute and cost per service' },
  tokens: { run: tokensCommand, help: TOKENS_HELP, summary: 'list, create or revoke API tokens' },
  import: { run: importCommand, help: IMPORT_HELP, summary: 'create services from exported Knative manifests' },
  login: { run: loginCommand, help: 'cellhost login [--url URL] --token TOKEN\n  Checks the token and saves URL and token for the other verbs.', summary: 'save the API URL and token' },
};

/** about the command itself */
const CLI_VERBS: Record<string, VerbEntry> = {
  completion: { run: (args, io) => completionCommand(args, io), help: COMPLETION_HELP, summary: 'print the bash or zsh completion script' },
  help: { run: (args, io) => helpCommand(args, io), help: HELP_HELP, summary: 'list the verbs, or explain one' },
  version: { run: versionCommand, help: 'cellhost version', summary: 'print the version' },
};

const GROUPS: [heading: string, verbs: Record<string, VerbEntry>][] = [
  ["On the platform's host (they use its data dir; run them as the user that runs serve):", HOST_VERBS],
  ['Client verbs (over the API, from anywhere):', CLIENT_VERBS],
  ['About cellhost itself:', CLI_VERBS],
];

const VERBS: Record<string, VerbEntry> = { ...HOST_VERBS, ...CLIENT_VERBS, ...CLI_VERBS };

export const VERB_NAMES = Object.keys(VERBS);

function verbDocs(): VerbDoc[] {
  return Object.entries(VERBS).map(([name, v]) => ({ name, summary: v.summary, help: v.help }));
}

export function usageText(): string {
  const width = Math.max(...VERB_NAMES.map((n) => n.length));
  const groups = GROUPS.map(([heading, verbs]) => `${heading}\n${Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}\n`).join('')}`);
  return `Usage: cellhost <verb> [options]

${groups.join('\n')}
Client verbs read CELLHOST_URL (default http://127.0.0.1:9090) and CELLHOST_TOKEN,
or what "cellhost login" saved. "cellhost help VERB" explains a verb.
`;
}

async function versionCommand(_args: string[], io: CliIo): Promise<number> {
  io.out(`cellhost ${VERSION} (node ${process.version})\n`);
  return 0;
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
