// A bench section that also runs by itself (`node --import tsx test/bench/<section>.ts`): its
// markdown to stdout, what it started removed (also on Ctrl-C), exit 1 when it could not run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCleanups } from './cleanup.ts';

type AppendSection = (out: string[], log: (line: string) => void) => Promise<boolean>;

/** runs `append` when the module at `moduleUrl` is the process's entry point */
export async function runIfMain(moduleUrl: string, append: AppendSection): Promise<void> {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== path.resolve(process.argv[1])) return;
  const log = (line: string) => process.stderr.write(line + '\n');
  process.once('SIGINT', () => void runCleanups(() => {}).finally(() => process.exit(130)));
  const out: string[] = [];
  const ok = await append(out, log);
  await runCleanups((err) => log(`cleanup failed: ${(err as Error).message}`));
  process.stdout.write(out.join('\n') + '\n');
  process.exit(ok ? 0 : 1);
}
