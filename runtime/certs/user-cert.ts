// A certificate and key the user provides (CELLHOST_TLS_CERT / CELLHOST_TLS_KEY): read at start,
// again on SIGHUP and whenever either file changes. A pair that does not load leaves the one
// already served in place.
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';

export interface UserCertificate {
  context: tls.SecureContext;
  /** the DNS names it covers (wildcards as `*.domain`) */
  names: string[];
  notAfter: number;
}

export function loadUserCertificate(certFile: string, keyFile: string): UserCertificate {
  const cert = fs.readFileSync(certFile, 'utf8');
  const key = fs.readFileSync(keyFile, 'utf8');
  // createSecureContext checks that the key belongs to the certificate
  const context = tls.createSecureContext({ cert, key });
  const leaf = new crypto.X509Certificate(cert);
  const names = (leaf.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (!names.length) {
    const cn = /CN=([^\n,]+)/.exec(leaf.subject)?.[1];
    if (cn) names.push(cn.toLowerCase());
  }
  return { context, names, notAfter: Date.parse(leaf.validTo) };
}

/** calls `onChange` when either file changes (polled: survives editors' and certbot's renames) */
export function watchFiles(files: string[], onChange: () => void, intervalMs = 2000): () => void {
  const listener = (cur: fs.Stats, prev: fs.Stats) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) onChange();
  };
  for (const f of files) fs.watchFile(f, { interval: intervalMs, persistent: false }, listener);
  return () => {
    for (const f of files) fs.unwatchFile(f, listener);
  };
}
