// `cellhost doctor`: what this host enforces and what it lacks, in words a user can act on.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { findMissingToolchain } from '../../builder/runtimes/index.ts';
import { CONFIG_FLAGS, loadConfig } from '../core/config.ts';
import { silentLogger } from '../core/log.ts';
import { RUNTIMES } from '../core/names.ts';
import { setUpIsolation } from '../isolation.ts';
import { createCertificateStore } from '../store/certificates.ts';
import { openStore } from '../store/index.ts';
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
  io.out('HTTPS\n');
  for (const line of httpsLines(config)) io.out(`  ${line}\n`);
  return isolation.report.features.cgroups ? 0 : 1;
}

/** the listener, and every certificate that is not in order, with the reason */
function httpsLines(config: ReturnType<typeof loadConfig>): string[] {
  if (!config.https) return ['off   HTTPS is off (set CELLHOST_HTTPS_ADDR; on by default for a public CELLHOST_DOMAIN as root)'];
  const lines = [`ok    listener ${config.https.host}:${config.https.port}, certificates from ${config.tls ? `${config.tls.cert} and ` : ''}${config.acme.directory}`];
  if (!fs.existsSync(config.paths.db)) return lines;
  const store = openStore(config.paths.db);
  try {
    const certs = createCertificateStore(store.db, () => {
      throw new Error('doctor reads no key');
    }).list();
    const now = Date.now();
    let good = 0;
    for (const c of certs) {
      const expires = c.notAfter ? new Date(c.notAfter).toISOString().slice(0, 10) : null;
      const next = c.nextAttemptAt ? `; next attempt ${new Date(c.nextAttemptAt).toISOString()}` : '';
      if (c.status === 'issued' && c.notAfter !== null && c.notAfter < now) lines.push(`MISS  ${c.name}: expired ${expires}${c.error ? ` (${c.error})` : ''}${next}`);
      else if (c.status === 'issued' && c.error) lines.push(`MISS  ${c.name}: renewal failing, certificate expires ${expires}: ${c.error}${next}`);
      else if (c.status === 'failed') lines.push(`MISS  ${c.name}: no certificate: ${c.error}${next}`);
      else if (c.status === 'pending_dns') lines.push(`MISS  ${c.name}: waiting for DNS${c.dns ? `: ${c.dns.message}` : ''}`);
      else good++;
    }
    lines.push(`ok    ${good} of ${certs.length} certificates in order`);
    return lines;
  } finally {
    store.close();
  }
}
