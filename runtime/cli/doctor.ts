// `cellhost doctor`: what this host enforces and what it lacks, in words a user can act on.
import { parseArgs } from 'node:util';
import { findMissingToolchain } from '../../builder/runtimes/index.ts';
import { CONFIG_FLAGS, loadConfig } from '../core/config.ts';
import { silentLogger } from '../core/log.ts';
import { RUNTIMES } from '../core/names.ts';
import { setUpIsolation } from '../isolation.ts';
import type { CliIo } from './io.ts';

export const DOCTOR_HELP = `cellhost doctor [serve flags]
  Checks what this host can enforce (cgroups, sandbox, network namespaces) and which runtimes
  have their toolchain, and says why anything is missing. Exit code 1 when limits are not enforced.`;

export async function doctorCommand(args: string[], io: CliIo): Promise<number> {
  const options = Object.fromEntries(CONFIG_FLAGS.map((f) => [f, { type: 'string' as const }]));
  const { values } = parseArgs({ args, options });
  const config = loadConfig({ flags: values as Record<string, string | undefined>, env: io.env, cwd: io.cwd, isRoot: process.getuid?.() === 0 });
  // no reclaim and no dispose: a running platform may own groups under the same prefix
  const isolation = await setUpIsolation(config, silentLogger, {
    reclaim: false,
    uidFor: () => {
      throw new Error('doctor starts no app');
    },
  });
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'MISS');
  io.out('Isolation\n');
  for (const [feature, on] of Object.entries(isolation.report.features)) io.out(`  ${mark(on)} ${feature}\n`);
  for (const reason of isolation.report.reasons) io.out(`       - ${reason}\n`);
  io.out('Runtimes\n');
  for (const r of RUNTIMES) {
    const missing = findMissingToolchain(r);
    io.out(`  ${mark(!missing.length)} ${r}${missing.length ? ` (install: apt-get install ${missing.map((m) => m.pkg).join(' ')})` : ''}\n`);
  }
  return isolation.report.features.cgroups ? 0 : 1;
}
