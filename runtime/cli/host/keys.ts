// `cellhost keys rotate`: re-encrypt every env value and every stored private key (TLS
// certificates, the ACME account) under a new master key, offline (the
// server holds the key in memory, so it must be stopped). Crash-safe: the new key is written
// beside the old one first, the database switches in one transaction, then the file is renamed.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../core/config.ts';
import { CellhostError } from '../../core/errors.ts';
import { createCertificateStore } from '../../store/certificates.ts';
import { checkMasterKey, createEnvStore } from '../../store/env.ts';
import { openStore } from '../../store/index.ts';
import { generateKey, loadMasterKey, writeKeyFile } from '../../store/secrets.ts';
import { rotateServiceSecrets } from '../../store/service-secrets.ts';
import { createHookStore } from '../../store/hooks.ts';
import { isServeRunning } from './serve-lock.ts';
import { UsageError, type CliIo } from '../io.ts';

export const KEYS_HELP = `cellhost keys rotate [--data DIR]
  Re-encrypts every environment variable, each service's cron secret and task token, and every
  webhook secret and repository credential, and every private key (certificates, ACME account)
  under a new master key. Stop "cellhost serve" first.
  With CELLHOST_MASTER_KEY set, prints the new key: set it before the next start.`;

export async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { data: { type: 'string' } } });
  if (positionals[0] !== 'rotate') throw new UsageError('the only keys subcommand is "rotate"');
  const config = loadConfig({ flags: { data: values.data }, env: io.env, cwd: io.cwd });
  if (!fs.existsSync(config.paths.db)) throw new CellhostError('ERR_VALIDATION', `no cellhost data in ${config.dataDir}`);
  const running = isServeRunning(config.paths.run);
  if (running) throw new CellhostError('ERR_VALIDATION', `cellhost serve (pid ${running}) is using ${config.dataDir}: stop it first`);
  const store = openStore(config.paths.db);
  try {
    const old = loadMasterKey({ fromEnv: config.masterKey, file: config.paths.masterKey, create: false });
    checkMasterKey(store.db, old.key);
    const next = generateKey();
    const pending = `${config.paths.masterKey}.next`;
    if (old.source === 'file') writeKeyFile(pending, next);
    const env = createEnvStore(store.db, () => old.key);
    const hooks = createHookStore(store.db, () => old.key);
    const certs = createCertificateStore(store.db, () => old.key);
    // env values, the platform's own per-service secrets (cron secret, task token), webhook secrets,
    // repository credentials and private keys switch together, with the key check
    const [n, k] = store.db.transaction(() => [hooks.rotateKey(old.key, next) + env.rotate(next) + rotateServiceSecrets(store.db, old.key, next), certs.rotate(next)])();
    const what = `${n} values and ${k} private keys`;
    if (old.source === 'file') {
      fs.renameSync(pending, config.paths.masterKey);
      io.out(`Re-encrypted ${what}; the new key is in ${config.paths.masterKey}\n`);
    } else {
      io.out(`Re-encrypted ${what}. Set this before the next start (the old key no longer works):\nCELLHOST_MASTER_KEY=${next.toString('base64')}\n`);
    }
    return 0;
  } finally {
    store.close();
  }
}
