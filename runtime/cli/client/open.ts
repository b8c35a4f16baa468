// `cellhost open NAME`: prints the service's URL, and opens it in a browser when there is a
// display to open it on (xdg-open); on a server over SSH it only prints.
import { spawn } from 'node:child_process';
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';

export const OPEN_HELP = `cellhost open NAME
  Prints the service's URL and opens it with xdg-open when there is a display (DISPLAY or
  WAYLAND_DISPLAY set); otherwise only prints it.`;

export async function openCommand(args: string[], io: CliIo): Promise<number> {
  const [name, ...extra] = args;
  if (!name || extra.length) throw new UsageError('open needs one service name');
  const { url } = await createClient(loadClientSettings(io.env)).request<{ url: string }>('GET', `/api/v1/services/${encodeURIComponent(name)}`);
  io.out(url + '\n');
  if (!io.env.DISPLAY && !io.env.WAYLAND_DISPLAY) return 0;
  const opened = await new Promise<string | null>((resolve) => {
    const child = spawn('xdg-open', [url], { env: io.env as NodeJS.ProcessEnv, stdio: 'ignore', detached: true });
    child.once('error', (err) => resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'xdg-open is not installed' : err.message));
    child.once('spawn', () => {
      child.unref();
      resolve(null);
    });
  });
  if (opened) io.err(`(not opened: ${opened})\n`);
  return 0;
}
