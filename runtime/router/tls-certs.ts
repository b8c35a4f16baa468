// Which certificate answers a server name: exact names first, then a wildcard one level up.
// A certificate the user provides wins over one cellhost ordered for the same name.
import type tls from 'node:tls';

export type CertSource = 'user' | 'acme';

export interface CertTable {
  /** serve `context` for `identifier` (a host name, or `*.domain`) */
  put(source: CertSource, identifier: string, context: tls.SecureContext): void;
  remove(source: CertSource, identifier: string): void;
  clear(source: CertSource): void;
  lookup(servername: string): tls.SecureContext | null;
  /** a certificate is served for this host */
  covers(host: string): boolean;
  /** the identifier whose certificate answers this host, and where it comes from */
  match(host: string): { source: CertSource; identifier: string } | null;
}

export function createCertTable(): CertTable {
  const tables: Record<CertSource, Map<string, tls.SecureContext>> = { user: new Map(), acme: new Map() };
  const order: CertSource[] = ['user', 'acme'];

  function match(host: string): { source: CertSource; identifier: string } | null {
    const name = host.toLowerCase();
    const dot = name.indexOf('.');
    const wildcard = dot > 0 ? `*${name.slice(dot)}` : null;
    for (const source of order) {
      const t = tables[source];
      if (t.has(name)) return { source, identifier: name };
      if (wildcard && t.has(wildcard)) return { source, identifier: wildcard };
    }
    return null;
  }

  return {
    put: (source, identifier, context) => void tables[source].set(identifier.toLowerCase(), context),
    remove: (source, identifier) => void tables[source].delete(identifier.toLowerCase()),
    clear: (source) => tables[source].clear(),
    lookup(servername) {
      const m = match(servername);
      return m ? tables[m.source].get(m.identifier)! : null;
    },
    covers: (host) => match(host) !== null,
    match,
  };
}
