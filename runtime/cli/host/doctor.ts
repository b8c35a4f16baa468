// `cellhost doctor`: what this host enforces and what it lacks, in words a user can act on.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { findMissingToolchain } from '../../../builder/runtimes/index.ts';
import { CONFIG_FLAGS, loadConfig } from '../../core/config.ts';
import { silentLogger } from '../../core/log.ts';
import { RUNTIMES } from '../../core/names.ts';
import { EXPORT_TOOLS, findMissingExportTools } from '../../export/tools.ts';
import { probeIsolation } from '../../isolation/layer.ts';
import { hostPackageHash, summarizeChanges } from '../../sandbox/dpkg-status.ts';
import { isolationPlan } from '../../server.ts';
import { openDatabaseReadOnly } from '../../store/db.ts';
import { createDeploymentStore } from '../../store/deployments.ts';
import type { CliIo } from '../io.ts';
import { readCertificates } from '../../store/certificate-health.ts';
import { readQueueHealth } from '../../store/queue-health.ts';

export const DOCTOR_HELP = `cellhost doctor [serve flags]
  Checks what "cellhost serve" would enforce on this host when run by the same user (cgroups, by
  making a group and setting a limit in it; sandbox; network namespaces; system layers, by
  mounting an idmapped overlay in a temp dir), which runtimes have their toolchain and which tools
  "cellhost export" needs, and says why anything is missing. Then, from the data dir, each cron
  job's last failure, each service's dead-lettered tasks, the live deployments' system layers
  (the packages each added; those built on an older base than the host's packages now), and the
  HTTPS listener with every certificate not in order (and why).
  Exit code 1 when limits are not enforced.`;

export async function doctorCommand(args: string[], io: CliIo): Promise<number> {
  const options = Object.fromEntries(CONFIG_FLAGS.map((f) => [f, { type: 'string' as const }]));
  const { values } = parseArgs({ args, options });
  const config = loadConfig({ flags: values as Record<string, string | undefined>, env: io.env, cwd: io.cwd, isRoot: process.getuid?.() === 0 });
  // the layers serve would use, probed only: nothing is started or reclaimed (a running platform
  // may own groups under the same prefix)
  const report = await probeIsolation(
    isolationPlan(config, {
      log: silentLogger,
      uidFor: () => {
        throw new Error('doctor starts no app');
      },
    }),
  );
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'MISS');
  io.out('Isolation\n');
  for (const [feature, on] of Object.entries(report.features)) io.out(`  ${mark(on)} ${feature}\n`);
  for (const reason of report.reasons) io.out(`       - ${reason}\n`);
  io.out('Runtimes\n');
  for (const r of RUNTIMES) {
    const missing = findMissingToolchain(r);
    io.out(`  ${mark(!missing.length)} ${r}${missing.length ? ` (install: apt-get install ${missing.map((m) => m.pkg).join(' ')})` : ''}\n`);
  }
  // export is optional: what it lacks is said, and does not fail the check
  const missingExport = findMissingExportTools();
  io.out('Export to Knative (cellhost export)\n');
  for (const t of EXPORT_TOOLS) {
    const missing = missingExport.includes(t);
    io.out(`  ${mark(!missing)} ${t.bin}: ${t.does}${missing ? ` (install: apt-get install ${t.pkg})` : ''}\n`);
  }
  reportQueues(config.paths.db, io);
  reportSystemLayers(config.paths.db, io);
  io.out('HTTPS\n');
  for (const line of httpsLines(config)) io.out(`  ${line}\n`);
  return report.features.cgroups ? 0 : 1;
}

/** the listener, and every certificate that is not in order, with the reason */
function httpsLines(config: ReturnType<typeof loadConfig>): string[] {
  if (!config.https) return ['off  HTTPS is off (set CELLHOST_HTTPS_ADDR; on by default for a public CELLHOST_DOMAIN as root)'];
  const lines = [`ok   listener ${config.https.host}:${config.https.port}, certificates from ${config.tls ? `${config.tls.cert} and ` : ''}${config.acme.directory}`];
  let certs;
  try {
    certs = readCertificates(config.paths.db);
  } catch (err) {
    return [...lines, `MISS cannot read ${config.paths.db}: ${(err as Error).message}`];
  }
  if (!certs) return lines;
  const now = Date.now();
  let good = 0;
  for (const c of certs) {
    const expires = c.notAfter ? new Date(c.notAfter).toISOString().slice(0, 10) : null;
    const next = c.nextAttemptAt ? `; next attempt ${new Date(c.nextAttemptAt).toISOString()}` : '';
    if (c.status === 'issued' && c.notAfter !== null && c.notAfter < now) lines.push(`MISS ${c.name}: expired ${expires}${c.error ? ` (${c.error})` : ''}${next}`);
    else if (c.status === 'issued' && c.error) lines.push(`MISS ${c.name}: renewal failing, certificate expires ${expires}: ${c.error}${next}`);
    else if (c.status === 'failed') lines.push(`MISS ${c.name}: no certificate: ${c.error}${next}`);
    else if (c.status === 'pending_dns') lines.push(`MISS ${c.name}: waiting for DNS${c.dns ? `: ${c.dns.message}` : ''}`);
    else good++;
  }
  lines.push(`ok   ${good} of ${certs.length} certificates in order`);
  return lines;
}

/** live layers, what each added, and which were built before the host's packages last changed */
function reportSystemLayers(dbFile: string, io: CliIo): void {
  io.out('System layers of live deployments\n');
  let db: ReturnType<typeof openDatabaseReadOnly>;
  try {
    db = openDatabaseReadOnly(dbFile);
  } catch (err) {
    io.out(`  MISS cannot read ${dbFile}: ${(err as Error).message}\n`);
    return;
  }
  if (!db) {
    io.out('  (no database of this version in the data dir yet)\n');
    return;
  }
  try {
    const live = createDeploymentStore(db).listLiveWithLayer();
    if (!live.length) io.out('  none\n');
    const base = hostPackageHash();
    for (const d of live) {
      const layer = d.systemLayer!;
      const current = layer.hostBase === base;
      io.out(`  ${current ? 'ok  ' : 'OLD '} ${d.service} (${d.id}): ${summarizeChanges(layer.packages)}\n`);
      if (!current) {
        io.out(`       - built on an older base: the host's packages changed since. Rebuild it: the Rebuild button on its deployment page, or POST /api/v1/deployments/${d.id}/rebuild\n`);
      }
    }
  } finally {
    db.close();
  }
}

/** what failed lately in cron jobs and task queues (not the host's fault: no effect on the exit code) */
function reportQueues(dbFile: string, io: CliIo): void {
  let health;
  try {
    health = readQueueHealth(dbFile);
  } catch (err) {
    io.out(`Cron and tasks\n  MISS cannot read ${dbFile}: ${(err as Error).message}\n`);
    return;
  }
  if (!health) return;
  const at = (ms: number | null) => (ms === null ? 'a run by hand' : `the run for ${new Date(ms).toISOString()}`);
  io.out(`Cron and tasks (${dbFile})\n`);
  if (!health.cronFailures.length) io.out('  ok   no cron job has failed\n');
  for (const f of health.cronFailures) {
    const what = `${f.status}${f.statusCode ? ` (${f.statusCode})` : ''}${f.error ? `: ${f.error}` : ''}`;
    io.out(`  ${f.recovered ? 'ok  ' : 'FAIL'} cron ${f.service}/${f.job}: last failure ${at(f.scheduledAt)}, ${what}${f.recovered ? ' (it ran fine since)' : ''}\n`);
  }
  if (!health.deadTasks.length) io.out('  ok   no dead-lettered tasks\n');
  for (const d of health.deadTasks) {
    io.out(`  FAIL tasks ${d.service}: ${d.count} dead-lettered${d.lastError ? `, last: ${d.lastError}` : ''} (cellhost tasks ls ${d.service} --status dead; cellhost tasks retry ID)\n`);
  }
}
