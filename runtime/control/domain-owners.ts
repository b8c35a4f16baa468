// A custom domain belongs to one service, and never is a platform name (`<service>.<domain>`):
// checked wherever a service's domains change (create, change, the domains verbs, a manifest).
import { CellhostError } from '../core/errors.ts';
import { serviceLabel } from '../router/hosts.ts';
import type { Store } from '../store/index.ts';

/** ERR_DOMAIN_TAKEN for the first of `domains` another service has, or that is a platform name */
export function checkDomainOwners(store: Store, platformDomain: string, service: string, domains: readonly string[]): void {
  for (const d of domains) {
    const owner = store.services.findByDomain(d);
    if (owner && owner.name !== service) {
      throw new CellhostError('ERR_DOMAIN_TAKEN', `domain "${d}" belongs to another service`, { details: { field: 'domains' } });
    }
    if (serviceLabel(d, platformDomain)) {
      throw new CellhostError('ERR_DOMAIN_TAKEN', `domain "${d}" is a platform name (<service>.${platformDomain})`, { details: { field: 'domains' } });
    }
  }
}
