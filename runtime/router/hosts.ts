// Host header → service name: `<service>.<base domain>` or a custom domain.

/** lowercased host without port and trailing dot; null when there is none */
export function normalizeHost(header: string | undefined): string | null {
  if (!header) return null;
  let host = header.trim().toLowerCase();
  if (host.startsWith('[')) return null; // an IP literal names no service
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host || null;
}

/** the service label of `<label>.<domain>`, or null for any other host */
export function serviceLabel(host: string, domain: string): string | null {
  const suffix = '.' + domain;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  return label && !label.includes('.') ? label : null;
}
