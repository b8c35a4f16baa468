// Private keys of certificates and of the ACME account are stored only as ciphertexts under the
// master key, each bound to its row, and `cellhost keys rotate` re-encrypts them with the env values.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { createCertificateStore, type CertificateRecord } from '../../../runtime/store/certificates.ts';
import { checkMasterKey } from '../../../runtime/store/env.ts';
import { openStore } from '../../../runtime/store/index.ts';
import { loadMasterKey } from '../../../runtime/store/secrets.ts';
import { tempDir } from '../../helpers/server.ts';

const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg-not-a-real-key\n-----END PRIVATE KEY-----\n';

function record(name: string): CertificateRecord {
  return { name, service: 'web', status: 'issued', certPem: '-----BEGIN CERTIFICATE-----\n...\n', notBefore: 1, notAfter: 2, challenge: 'http-01', error: null, failures: 0, lastAttemptAt: 1, nextAttemptAt: null, dns: null, updatedAt: 1 };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('certificate store', () => {
  it('keeps private keys encrypted, bound to their row, and rotates them with the master key', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const keyFile = path.join(dataDir, 'master.key');
    const store = openStore(path.join(dataDir, 'cellhost.db'));
    const { key } = loadMasterKey({ file: keyFile, create: true });
    checkMasterKey(store.db, key);
    const certs = createCertificateStore(store.db, () => key);
    certs.saveIssued(record('a.example.com'), KEY_PEM);
    certs.saveIssued(record('b.example.com'), KEY_PEM.replace('not-a-real', 'another'));
    certs.saveAccount('https://ca.example/dir', 'ACCOUNT KEY PEM', 'https://ca.example/acct/1', null, 1);
    expect(certs.key('a.example.com')).toBe(KEY_PEM);
    expect(certs.account('https://ca.example/dir')).toEqual({ keyPem: 'ACCOUNT KEY PEM', url: 'https://ca.example/acct/1' });
    // nothing in the file reads as a key
    const raw = store.db.prepare('SELECT key FROM certificates').all() as { key: Buffer }[];
    for (const r of raw) expect(r.key.toString('latin1')).not.toContain('PRIVATE KEY');
    // a ciphertext moved to another row does not decrypt
    store.db.prepare("UPDATE certificates SET key = (SELECT key FROM certificates WHERE name = 'b.example.com') WHERE name = 'a.example.com'").run();
    expect(() => certs.key('a.example.com')).toThrow(/does not decrypt/);
    certs.saveIssued(record('a.example.com'), KEY_PEM);
    // the state can change without touching the key
    certs.saveState({ ...record('a.example.com'), error: 'renewal failed', failures: 1 });
    expect(certs.get('a.example.com')).toMatchObject({ error: 'renewal failed', failures: 1 });
    expect(certs.key('a.example.com')).toBe(KEY_PEM);
    store.close();

    let out = '';
    const io = { env: {}, cwd: '/', out: (t: string) => void (out += t), err: (t: string) => void (out += t), isTTY: false };
    expect(await runCli(['keys', 'rotate', '--data', dataDir], io)).toBe(0);
    expect(out).toContain('0 values and 3 private keys');
    const reopened = openStore(path.join(dataDir, 'cellhost.db'));
    try {
      const next = loadMasterKey({ file: keyFile, create: false }).key;
      expect(next.equals(key)).toBe(false);
      const rotated = createCertificateStore(reopened.db, () => next);
      expect(rotated.key('a.example.com')).toBe(KEY_PEM);
      expect(rotated.account('https://ca.example/dir')?.keyPem).toBe('ACCOUNT KEY PEM');
      expect(() => createCertificateStore(reopened.db, () => key).key('a.example.com')).toThrow(/does not decrypt/);
    } finally {
      reopened.close();
    }
  });

  it('counts new certificates per registered domain, not renewals or failures', () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const store = openStore(path.join(dataDir, 'cellhost.db'));
    try {
      const certs = createCertificateStore(store.db, () => Buffer.alloc(32));
      const base = { registeredDomain: 'example.com', directory: 'd' };
      certs.recordOrder({ ...base, name: 'a.example.com', renewal: false, outcome: 'issued', at: 100 });
      certs.recordOrder({ ...base, name: 'b.example.com', renewal: false, outcome: 'issued', at: 200 });
      certs.recordOrder({ ...base, name: 'a.example.com', renewal: true, outcome: 'issued', at: 300 });
      certs.recordOrder({ ...base, name: 'c.example.com', renewal: false, outcome: 'failed', at: 400 });
      certs.recordOrder({ ...base, registeredDomain: 'example.org', name: 'x.example.org', renewal: false, outcome: 'issued', at: 500 });
      expect(certs.issuedSince('example.com', 0)).toEqual({ count: 2, oldest: 100 });
      expect(certs.issuedSince('example.com', 150)).toEqual({ count: 1, oldest: 200 });
    } finally {
      store.close();
    }
  });
});
