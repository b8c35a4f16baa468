// `cellhost domains add|ls|rm NAME DOMAIN`
import { createClient, loadClientSettings } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { formatTable } from './simple-verbs.ts';

export const DOMAINS_HELP = `cellhost domains ls NAME
cellhost domains add NAME DOMAIN
cellhost domains rm NAME DOMAIN
  A service answers on <NAME>.<platform domain> and on the domains added here. "add" prints the
  DNS record to create, then cellhost checks it and orders a certificate (when HTTPS is on);
  "add" again checks the DNS at once. "ls" shows each certificate's state.`;

/** a domain as the API answers it (GET /api/v1/services/{name}/domains), the parts shown here */
interface DomainView {
  domain: string;
  kind: 'platform' | 'custom';
  dnsRecords: { type: string; value: string }[];
  certificate: {
    status: 'pending_dns' | 'validating' | 'issued' | 'failed' | 'none';
    servedBy: { identifier: string; source: string } | null;
    expiresAt: string | null;
    challenge: string | null;
    error: string | null;
    nextAttemptAt: string | null;
    dns: { message: string } | null;
    message: string | null;
  };
}

/** the certificate's state in a few words */
export function describeCertificate(d: DomainView): string {
  const c = d.certificate;
  switch (c.status) {
    case 'issued':
      return `issued, expires ${c.expiresAt?.slice(0, 10) ?? '?'}${c.error ? ` (renewal: ${c.error})` : ''}${c.servedBy && c.servedBy.identifier !== d.domain ? ` (${c.servedBy.identifier})` : ''}`;
    case 'pending_dns':
      return `waiting for DNS${c.dns ? `: ${c.dns.message}` : ''}`;
    case 'validating':
      return `validating (${c.challenge ?? 'ACME'})`;
    case 'failed':
      return `failed: ${c.error ?? 'unknown'}${c.nextAttemptAt ? ` (next try ${c.nextAttemptAt})` : ''}`;
    default:
      return c.message ?? 'no certificate';
  }
}

export async function domainsCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, name, domain] = args;
  if (!sub || !name) throw new UsageError('domains needs a subcommand and a service name');
  const client = createClient(loadClientSettings(io.env));
  const base = `/api/v1/services/${encodeURIComponent(name)}/domains`;
  switch (sub) {
    case 'ls': {
      const { domains } = await client.request<{ domains: DomainView[] }>('GET', base);
      io.out(formatTable([['DOMAIN', 'KIND', 'CERTIFICATE'], ...domains.map((d) => [d.domain, d.kind, describeCertificate(d)])]));
      return 0;
    }
    case 'add': {
      if (!domain) throw new UsageError('domains add needs a DOMAIN');
      let view = await client.request<DomainView>('POST', base, { domain });
      io.out(`${domain} is attached to ${name}. Create this DNS record at your DNS provider (one of):\n`);
      for (const r of view.dnsRecords) io.out(`  ${domain}. ${r.type} ${r.value}\n`);
      // the first DNS check takes a moment: show its outcome when it is there
      const deadline = Date.now() + 5000;
      while (view.certificate.status === 'pending_dns' && !view.certificate.dns && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        view = await client.request<DomainView>('GET', `${base}/${encodeURIComponent(domain)}`);
      }
      io.out(`Certificate: ${describeCertificate(view)}\n`);
      return 0;
    }
    case 'rm': {
      if (!domain) throw new UsageError('domains rm needs a DOMAIN');
      await client.request('DELETE', `${base}/${encodeURIComponent(domain)}`);
      io.out(`Removed ${domain} from ${name}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown domains subcommand "${sub}"`);
  }
}
