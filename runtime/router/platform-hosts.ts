// Where the platform's own routes on the public router (task intake) are served: only on hosts no
// service can be reached at, the bare base domain and IP addresses. An app's host always goes to
// the app, whatever the path, so no app's own /tasks/ path is ever taken; and a custom domain a
// service claims wins over the platform's routes there too, since the router asks here only when
// no service owns the host.
import net from 'node:net';
import { normalizeHost } from './hosts.ts';

export function isPlatformHost(rawHost: string | undefined, domain: string): boolean {
  if (rawHost === undefined) return false;
  if (rawHost.trim().startsWith('[')) return true; // an IPv6 address
  const host = normalizeHost(rawHost);
  return host !== null && (host === domain || net.isIPv4(host));
}
