// `cellhost backup FILE` and `cellhost restore FILE --data DIR`: server-side verbs like `keys`,
// run on the host with the data dir. A backup may be taken while the platform serves.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBackup } from '../../backup/create-backup.ts';
import { restoreBackup } from '../../backup/restore-backup.ts';
import { loadConfig } from '../../core/config.ts';
import { VERSION } from '../../version.ts';
import { formatBytes } from '../format.ts';
import { UsageError, type CliIo } from '../io.ts';

export const BACKUP_HELP = `cellhost backup FILE [--data DIR] [--include-key]
  Writes one file (tar.gz) with the store, the live and rollback images, the build logs and a
  manifest with a checksum of each; safe while "cellhost serve" runs. The master key is left
  out unless --include-key is given: without it, the restored platform needs the old master.key
  (or CELLHOST_MASTER_KEY) to read env values. Run it on the host, as the user that runs serve.`;

export const RESTORE_HELP = `cellhost restore FILE --data DIR
  Restores a backup into DIR, which must be new or empty; then "cellhost serve --data DIR". A
  truncated, damaged or altered backup is refused whole, with nothing written.`;

export async function backupCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { data: { type: 'string' }, 'include-key': { type: 'boolean' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('backup needs one file to write');
  const config = loadConfig({ flags: { data: values.data }, env: io.env, cwd: io.cwd });
  const started = Date.now();
  const { manifest, bytes } = await createBackup({
    paths: { dataDir: config.dataDir, db: config.paths.db, images: config.paths.images, logs: config.paths.logs, masterKey: config.paths.masterKey },
    file: path.resolve(io.cwd, file),
    includeKey: values['include-key'] === true,
    masterKeyFromEnv: config.masterKey,
    version: VERSION,
    now: () => new Date().toISOString(),
  });
  const c = manifest.counts;
  io.out(
    `Backed up ${config.dataDir} to ${path.resolve(io.cwd, file)} (${formatBytes(bytes)}, ${((Date.now() - started) / 1000).toFixed(1)} s): ` +
      `${c.services} services, ${c.deployments} deployments, ${c.images} images, ${c.envVars} env values, ${c.tokens} tokens\n` +
      `Note: ${manifest.masterKey.note}\n`,
  );
  return 0;
}

export async function restoreCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { data: { type: 'string' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('restore needs one backup file');
  if (!values.data && !io.env.CELLHOST_DATA) throw new UsageError('restore needs --data DIR: the new data dir to restore into');
  const config = loadConfig({ flags: { data: values.data }, env: io.env, cwd: io.cwd });
  const { manifest, dataDir } = await restoreBackup(path.resolve(io.cwd, file), config.dataDir);
  const c = manifest.counts;
  io.out(`Restored the backup of ${manifest.dataDir} (made ${manifest.createdAt} by cellhost ${manifest.cellhostVersion}) into ${dataDir}: ${c.services} services, ${c.deployments} deployments, ${c.images} images, ${c.envVars} env values, ${c.tokens} tokens\n`);
  if (!manifest.masterKey.included && c.envVars > 0) {
    io.out(`The backup has no master key: before "cellhost serve --data ${dataDir}", copy the old master.key into ${dataDir} (mode 0600) or set CELLHOST_MASTER_KEY, or the env values cannot be read\n`);
  } else {
    io.out(`Start it with: cellhost serve --data ${dataDir}\n`);
  }
  return 0;
}
