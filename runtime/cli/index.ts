// `cellhost VERB ...`: one verb per file, each returns its exit code.
import { describeError } from '../core/errors.ts';
import { ApiError } from './client.ts';
import { DEPLOY_HELP, deployCommand } from './deploy.ts';
import { UsageError, type CliIo } from './io.ts';
import { DOCTOR_HELP, doctorCommand } from './doctor.ts';
import { ENV_HELP, envCommand } from './env.ts';
import { EXPORT_HELP, exportCommand } from './export.ts';
import { GIT_REMOTE_HELP, gitRemoteCommand } from './git-remote.ts';
import { HOOKS_HELP, hooksCommand } from './hooks.ts';
import { IMPORT_HELP, importCommand } from './import.ts';
import { KEYS_HELP, keysCommand } from './keys.ts';
import { USAGE_HELP, usageCommand } from './usage.ts';
import { LOGS_HELP, logsCommand } from './logs.ts';
import { SERVE_HELP, serveCommand } from './serve.ts';
import { loginCommand, rollbackCommand, servicesCommand, versionCommand } from './simple-verbs.ts';

type Verb = (args: string[], io: CliIo) => Promise<number>;

const VERBS: Record<string, { run: Verb; help: string }> = {
  serve: { run: serveCommand, help: SERVE_HELP },
  deploy: { run: deployCommand, help: DEPLOY_HELP },
  doctor: { run: doctorCommand, help: DOCTOR_HELP },
  services: { run: servicesCommand, help: 'cellhost services\n  Lists services with their URL, live deployment and instances; previews under their service.' },
  logs: { run: logsCommand, help: LOGS_HELP },
  env: { run: envCommand, help: ENV_HELP },
  keys: { run: keysCommand, help: KEYS_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
  import: { run: importCommand, help: IMPORT_HELP },
  usage: { run: usageCommand, help: USAGE_HELP },
  'git-remote': { run: gitRemoteCommand, help: GIT_REMOTE_HELP },
  hooks: { run: hooksCommand, help: HOOKS_HELP },
  rollback: { run: rollbackCommand, help: 'cellhost rollback NAME [DEPLOYMENT]\n  Makes DEPLOYMENT (default: the one before the live one) live again.' },
  login: { run: loginCommand, help: 'cellhost login [--url URL] --token TOKEN\n  Checks the token and saves URL and token for the other verbs.' },
  version: { run: versionCommand, help: 'cellhost version' },
};

export const USAGE = `Usage: cellhost <verb> [options]

Verbs:
  serve      run the platform
  deploy     build and deploy a directory or git repo
  doctor     check what this host enforces and which runtimes it has
  services   list services
  logs       runtime logs and events of a service (-f to follow)
  env        list, set, unset or import a service's environment variables
  usage      requests, billed compute and cost per service
  git-remote the git remote of a service: git push deploys
  hooks      a service's webhook (secret, repository, deliveries), deploy branch, previews
  keys       rotate the master key that encrypts env values (server stopped)
  export     images and Knative manifests of services, to run them on Kubernetes (on the host)
  import     create services from exported Knative manifests
  rollback   make an earlier deployment live
  login      save the API URL and token
  version    print the version

Client verbs read CELLHOST_URL (default http://127.0.0.1:9090) and CELLHOST_TOKEN,
or what "cellhost login" saved. "cellhost <verb> --help" explains a verb.
`;

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...args] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    io.out(USAGE);
    return verb ? 0 : 2;
  }
  if (verb === '--version') return versionCommand([], io);
  const entry = VERBS[verb];
  if (!entry) {
    io.err(`cellhost: unknown verb "${verb}"\n\n${USAGE}`);
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
