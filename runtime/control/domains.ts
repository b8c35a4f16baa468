// Custom domains of a service: attach (checked, one owner each), list with the DNS records to
// create and the certificate's state, detach. Membership is the service's `domains` setting, so
// routing follows it as for any other change of the service.
import type { DnsRecord } from '../certs/dns-check.ts';
import type { CertificateView, CertManager } from '../certs/manager.ts';
import { CellhostError } from '../core/errors.ts';
import { checkDomainName } from '../core/names.ts';
import type { Services } from './types.ts';

export interface DomainView {
  domain: string;
  service: string;
  /** platform: `<service>.<domain>`, always there; custom: attached by the user */
  kind: 'platform' | 'custom';
  /** what to create at the DNS provider: an A/AAAA record to this host, or a CNAME to the platform name */
  dnsRecords: DnsRecord[];
  status: CertificateView['status'];
  certificate: CertificateView;
}

export interface DomainsDeps {
  services: Services;
  certs: CertManager;
  domain: string;
  expectedRecords(service: string): Promise<DnsRecord[]>;
}

export interface Domains {
  /** ERR_SERVICE_NOT_FOUND unless the service exists */
  assertService(service: string): void;
  list(service: string): Promise<DomainView[]>;
  /** `created` is false when the service had it already (its DNS is checked again now) */
  add(service: string, domain: string): Promise<{ created: boolean; view: DomainView }>;
  remove(service: string, domain: string): void;
}

/** custom domains a service may have */
export const MAX_DOMAINS = 50;

export function createDomains(deps: DomainsDeps): Domains {
  async function viewOf(service: string, domain: string, kind: DomainView['kind']): Promise<DomainView> {
    const certificate = deps.certs.view(domain);
    return { domain, service, kind, dnsRecords: kind === 'custom' ? await deps.expectedRecords(service) : [], status: certificate.status, certificate };
  }

  return {
    assertService: (service) => void deps.services.get(service),
    async list(service) {
      const s = deps.services.get(service);
      return Promise.all([viewOf(service, `${service}.${deps.domain}`, 'platform'), ...s.domains.map((d) => viewOf(service, d, 'custom'))]);
    },
    async add(service, domain) {
      const s = deps.services.get(service);
      const invalid = checkDomainName(domain);
      if (invalid) throw invalid;
      if (s.domains.includes(domain)) {
        deps.certs.checkNow(domain);
        return { created: false, view: await viewOf(service, domain, 'custom') };
      }
      if (s.domains.length >= MAX_DOMAINS) throw new CellhostError('ERR_VALIDATION', `a service has at most ${MAX_DOMAINS} domains`, { details: { field: 'domain' } });
      // the one-owner rule and the platform names are checked where every change of domains goes
      deps.services.update(service, { domains: [...s.domains, domain] });
      return { created: true, view: await viewOf(service, domain, 'custom') };
    },
    remove(service, domain) {
      const s = deps.services.get(service);
      if (!s.domains.includes(domain)) throw new CellhostError('ERR_DOMAIN_NOT_FOUND', `service "${service}" has no domain "${domain}"`);
      deps.services.update(service, { domains: s.domains.filter((d) => d !== domain) });
    },
  };
}
