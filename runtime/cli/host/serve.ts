import { parseArgs } from 'node:util';
import { CONFIG_FLAGS, loadConfig, redactConfig } from '../../core/config.ts';
import { startServer } from '../../server.ts';
import type { CliIo } from '../io.ts';
import { isServeRunning, writeServePid } from './serve-lock.ts';
import { CellhostError } from '../../core/errors.ts';

export const SERVE_HELP = `cellhost serve [--data DIR] [--http HOST:PORT] [--https HOST:PORT|off] [--admin HOST:PORT] [--domain DOMAIN] [--print-config]
  Runs the platform: the app router (default 0.0.0.0:8080; HTTPS on 0.0.0.0:443 when the domain is a
  public name and cellhost runs as root) and the admin API and UI (default 127.0.0.1:9090).
  Every flag has a CELLHOST_* variable (see the README); flags win.`;

export async function serveCommand(args: string[], io: CliIo, signals: NodeJS.EventEmitter = process): Promise<number> {
  const options = Object.fromEntries(CONFIG_FLAGS.map((f) => [f, { type: 'string' as const }]));
  const { values } = parseArgs({ args, options: { ...options, 'print-config': { type: 'boolean' } }, strict: true });
  const { 'print-config': printConfig, ...flags } = values as Record<string, string | undefined> & { 'print-config'?: boolean };
  const config = loadConfig({ flags, env: io.env, cwd: io.cwd, isTTY: io.isTTY, isRoot: process.getuid?.() === 0 });
  if (printConfig) {
    io.out(JSON.stringify(redactConfig(config), null, 2) + '\n');
    return 0;
  }
  // everything the platform creates is its own unless it says otherwise (images and the sandbox's
  // dirs get explicit modes): a file a future change forgets still starts closed
  process.umask(0o077);
  keepServingWithoutLogReader();
  const running = isServeRunning(config.paths.run);
  if (running) throw new CellhostError('ERR_VALIDATION', `cellhost serve (pid ${running}) already uses ${config.dataDir}: one platform per data dir`);
  const server = await startServer(config, { announce: (line) => io.out(line + '\n') });
  const removePid = writeServePid(config.paths.run);
  io.err(`cellhost: router ${server.routerUrl}${server.httpsUrl ? ` · https ${server.httpsUrl}` : ''} · admin ${server.adminUrl} · data ${config.dataDir}\n`);
  // SIGHUP: the user's certificate and key are read again (after certbot or a manual renewal)
  const reload = () => void server.reloadCertificates();
  signals.on('SIGHUP', reload);
  // a second signal while it stops (Ctrl-C reaches both npm and the platform it runs, and npm
  // passes it on; a parent's death signal comes once per thread of the parent) would end it
  // mid-stop, its apps left running until the next start reclaims them: it is told instead, and
  // SIGKILL still ends it at once
  const again = (signal: string) => io.err(`cellhost: ${signal}: already stopping (SIGKILL ends it at once)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      // added before the first is removed: with no listener at all for a moment, Node gives the
      // signal its default action again, and a second one in the same turn would end the process
      signals.on('SIGTERM', again);
      signals.on('SIGINT', again);
      signals.off('SIGTERM', stop);
      signals.off('SIGINT', stop);
      resolve();
    };
    signals.on('SIGTERM', stop);
    signals.on('SIGINT', stop);
  });
  signals.off('SIGHUP', reload);
  try {
    await server.close();
  } finally {
    signals.off('SIGTERM', again);
    signals.off('SIGINT', again);
  }
  removePid();
  return 0;
}

/**
 * Its log lines go to stdout and stderr. A reader that went away (a pipe to a process that died)
 * makes the next write fail with EPIPE, which would end the platform mid-work, even mid-stop: its
 * apps then run on until the next start reclaims them. The lines are dropped instead; any other
 * failure of the streams still ends it.
 */
function keepServingWithoutLogReader(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
}
