// ARI's pieces: a certificate's identifier (RFC 9773's own example: a CA key identifier
// 69:88:5B:... and serial 0x87654321, made here with openssl), the CA's answer, and when to ask again.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certId, DEFAULT_RECHECK_MS, pickInWindow, readRenewalInfo, recheckDelay } from '../../../runtime/certs/renewal-info.ts';
import { tempDir } from '../../helpers/server.ts';

const MIN = 60_000;

describe('renewal information (ARI)', () => {
  let dir: string;
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const read = (file: string) => fs.readFileSync(path.join(dir, file), 'utf8');

  beforeAll(() => {
    dir = tempDir('cellhost-ari-unit-');
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ari-ca', '-addext', 'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4');
    openssl('req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf.test');
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'authorityKeyIdentifier=keyid\n');
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x87654321', '-days', '1', '-out', 'leaf.pem', '-extfile', 'ext.cnf');
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x7f01', '-days', '1', '-out', 'low.pem', '-extfile', 'ext.cnf');
    openssl('req', '-x509', ...ec, '-keyout', 'bare.key', '-out', 'bare.pem', '-days', '2', '-subj', '/CN=bare', '-addext', 'authorityKeyIdentifier=none', '-addext', 'subjectKeyIdentifier=none');
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names a certificate as RFC 9773's example does: key identifier, a dot, the serial's DER octets", () => {
    expect(certId(read('leaf.pem'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
    // a serial whose first bit is clear has no leading zero octet
    expect(certId(read('low.pem'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.fwE');
    // no Authority Key Identifier: nothing to ask about
    expect(certId(read('bare.pem'))).toBeNull();
  });

  it("reads the CA's window and its explanation, and refuses an answer without a window", () => {
    const now = Date.UTC(2026, 0, 1);
    const info = readRenewalInfo({ suggestedWindow: { start: '2026-01-10T00:00:00Z', end: '2026-01-12T00:00:00Z' }, explanationURL: 'https://ca.example/why' }, '21600', now);
    expect(info).toEqual({ window: { start: Date.UTC(2026, 0, 10), end: Date.UTC(2026, 0, 12) }, recheckMs: 6 * 60 * MIN, explanationUrl: 'https://ca.example/why' });
    expect(() => readRenewalInfo({}, undefined, now)).toThrow(/no valid suggestedWindow/);
    expect(() => readRenewalInfo({ suggestedWindow: { start: '2026-01-12T00:00:00Z', end: '2026-01-10T00:00:00Z' } }, undefined, now)).toThrow(/no valid suggestedWindow/);
    expect(() => readRenewalInfo(null, undefined, now)).toThrow(/no valid suggestedWindow/);
  });

  it('asks again when Retry-After says, kept between a minute and a day', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(recheckDelay('3600', now)).toBe(60 * MIN);
    expect(recheckDelay('5', now)).toBe(MIN);
    expect(recheckDelay('999999', now)).toBe(24 * 60 * MIN);
    expect(recheckDelay(new Date(now + 2 * 60 * MIN).toUTCString(), now)).toBe(2 * 60 * MIN);
    expect(recheckDelay('soon', now)).toBe(DEFAULT_RECHECK_MS);
    expect(recheckDelay(undefined, now)).toBe(DEFAULT_RECHECK_MS);
  });

  it('picks a moment inside the window', () => {
    const w = { start: 1000, end: 2000 };
    expect(pickInWindow(w, () => 0)).toBe(1000);
    expect(pickInWindow(w, () => 0.999999)).toBe(1999);
    expect(pickInWindow(w, () => 0.5)).toBe(1500);
  });
});
