// AES-256-GCM envelopes for env values. The key never enters the database: it comes from
// CELLHOST_MASTER_KEY or a 0600 key file in the data dir. Each value is bound to its service
// and name (additional data), so a ciphertext moved to another row does not decrypt.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CellhostError } from '../core/errors.ts';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

export type MasterKey = Buffer;

export function generateKey(): MasterKey {
  return crypto.randomBytes(32);
}

export function parseKey(text: string, where: string): MasterKey {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    throw new CellhostError('ERR_KEY_INVALID', `${where} must be 32 bytes in base64 (44 characters); generate one with: openssl rand -base64 32`);
  }
  return key;
}

export function encryptValue(key: MasterKey, plaintext: string, aad: string): Buffer {
  const nonce = crypto.randomBytes(NONCE);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), nonce, cipher.getAuthTag(), body]);
}

export function decryptValue(key: MasterKey, blob: Buffer, aad: string): string {
  if (blob.length < 1 + NONCE + TAG || blob[0] !== VERSION) {
    throw new CellhostError('ERR_KEY_INVALID', `the stored value of ${aad.replace('\0', '/')} is not a cellhost ciphertext`);
  }
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(1, 1 + NONCE));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(blob.subarray(1 + NONCE, 1 + NONCE + TAG));
  try {
    return Buffer.concat([decipher.update(blob.subarray(1 + NONCE + TAG)), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new CellhostError('ERR_KEY_INVALID', `the value of ${aad.replace('\0', '/')} does not decrypt: wrong master key, or the ciphertext belongs to another variable`, { cause: err });
  }
}

export const envAad = (service: string, name: string) => `${service}\0${name}`;

const CHECK_AAD = 'cellhost-master-key-check';

/** a value stored in the database that only the right key opens */
export function keyCheckValue(key: MasterKey): string {
  return encryptValue(key, CHECK_AAD, CHECK_AAD).toString('base64');
}

export function verifyKey(key: MasterKey, check: string): boolean {
  try {
    return decryptValue(key, Buffer.from(check, 'base64'), CHECK_AAD) === CHECK_AAD;
  } catch {
    return false;
  }
}

/** the key from the variable, or the key file (created 0600 at first start) */
export function loadMasterKey(opts: { fromEnv?: string; file: string; create: boolean }): { key: MasterKey; source: 'env' | 'file'; created: boolean } {
  if (opts.fromEnv) return { key: parseKey(opts.fromEnv, 'CELLHOST_MASTER_KEY'), source: 'env', created: false };
  if (fs.existsSync(opts.file)) {
    const mode = fs.statSync(opts.file).mode & 0o777;
    if (mode & 0o077) fs.chmodSync(opts.file, 0o600);
    return { key: parseKey(fs.readFileSync(opts.file, 'utf8'), opts.file), source: 'file', created: false };
  }
  if (!opts.create) throw new CellhostError('ERR_KEY_INVALID', `no master key: ${opts.file} is missing and CELLHOST_MASTER_KEY is not set`);
  const key = generateKey();
  writeKeyFile(opts.file, key);
  return { key, source: 'file', created: true };
}

export function writeKeyFile(file: string, key: MasterKey): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, key.toString('base64') + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}
