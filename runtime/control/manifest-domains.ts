// A live deployment's manifest lists the service's custom domains (`domains = [...]`): that list
// becomes the service's, in one change or none. It needs only the store, the route table and
// the certificates' sync, so the deploy pipeline can have it before the services verbs exist
// (as manifest-apply.ts); the pipeline stops a service's builds before the service is deleted,
// so this never routes a service that is going away.
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import { checkDomainName } from '../core/names.ts';
import type { RouteTable } from '../router/route-table.ts';
import type { Store } from '../store/index.ts';
import { checkDomainOwners } from './domain-owners.ts';
import { MAX_DOMAINS } from './domains.ts';
import { setServiceRoute } from './service-route.ts';

export interface ManifestDomainsDeps {
  store: Store;
  routes: RouteTable;
  /** the platform domain (`<service>.<domain>` names are not custom domains) */
  domain: string;
  clock: Clock;
  /** the hosts a service answers on changed: certificates follow */
  onHostsChanged(service: string): void;
  /** the DNS records a user creates for a custom domain of the service (advice for the build log) */
  expectedRecords(service: string): Promise<{ type: string; value: string }[]>;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
}

/**
 * Makes the service's custom domains exactly `names`: the missing ones attached, the others
 * detached (those attached through the API too: with a `domains` key the file is the list). One
 * invalid name, or one another service has, refuses the whole list. Returns lines for the build log.
 */
export type ApplyManifestDomains = (service: string, names: string[]) => Promise<string[]>;

export function createManifestDomains(deps: ManifestDomainsDeps): ApplyManifestDomains {
  return async function applyManifestDomains(service, names) {
    const current = deps.store.services.get(service);
    if (!current) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${service}"`);
    for (const name of names) {
      const invalid = checkDomainName(name);
      if (invalid) throw invalid;
    }
    const wanted = [...new Set(names)];
    if (wanted.length > MAX_DOMAINS) throw new CellhostError('ERR_VALIDATION', `a service has at most ${MAX_DOMAINS} domains`, { details: { field: 'domains' } });
    const added = wanted.filter((d) => !current.domains.includes(d));
    const removed = current.domains.filter((d) => !wanted.includes(d));
    if (!added.length && !removed.length) return [`Domains: ${wanted.length ? wanted.join(', ') : '(none)'}, as before`];
    checkDomainOwners(deps.store, deps.domain, service, wanted);
    const { name: _n, uid: _u, explicitSettings: _e, liveDeploymentId: _l, createdAt: _c, updatedAt: _up, ...settings } = current;
    const s = deps.store.services.update(service, { ...settings, domains: wanted }, new Date(deps.clock.now()).toISOString());
    setServiceRoute(deps.routes, s);
    deps.onHostsChanged(service);
    deps.onEvent?.(service, 'service_updated', { fields: ['domains'], by: 'manifest' });
    const lines: string[] = [];
    if (added.length) {
      lines.push(`Domains attached: ${added.join(', ')}`);
      // the records are advice: a DNS server that does not answer leaves them out, not the change
      const records = await deps.expectedRecords(service).catch(() => []);
      if (records.length) lines.push(`  point each at this host: ${records.map((r) => `${r.type} ${r.value}`).join(' or ')}`);
    }
    if (removed.length) lines.push(`Domains detached (not in the manifest's list): ${removed.join(', ')}`);
    return lines;
  };
}
