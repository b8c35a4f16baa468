// A deployment goes live: the service's settings that were not set explicitly take what its
// manifest gives, or their defaults (the rule is in manifest-settings.ts). The deploy pipeline
// calls it as a build goes live and the services verbs for a promote, so both follow one rule;
// it needs only the store and the route table, so the pipeline can have it before the verbs exist.
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import type { Manifest } from '../manifest/manifest.ts';
import type { RouteTable } from '../router/route-table.ts';
import type { Store } from '../store/index.ts';
import type { Service } from '../store/services.ts';
import { resolveSettings, settingsConflict } from './manifest-settings.ts';
import { setServiceRoute } from './service-route.ts';

export interface ManifestApplyDeps {
  store: Store;
  routes: RouteTable;
  clock: Clock;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
}

/** the service's settings under `manifest`: stored, routed and logged when they changed */
export type ApplyManifest = (name: string, manifest: Manifest | null) => Service;

export function createManifestApply(deps: ManifestApplyDeps): ApplyManifest {
  return function applyManifest(name, manifest) {
    const current = deps.store.services.get(name);
    if (!current) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    const settings = resolveSettings(current, current.explicitSettings, manifest);
    const conflict = settingsConflict(settings, current.explicitSettings, manifest);
    if (conflict) throw new CellhostError('ERR_VALIDATION', conflict, { details: { field: 'minInstances' } });
    const changed = Object.keys(settings).filter((k) => JSON.stringify(settings[k as keyof typeof settings]) !== JSON.stringify(current[k as keyof typeof settings]));
    if (!changed.length) return current;
    const s = deps.store.services.update(name, settings, new Date(deps.clock.now()).toISOString());
    setServiceRoute(deps.routes, s);
    deps.onEvent?.(name, 'service_updated', { fields: changed, by: manifest?.file ?? 'defaults' });
    return s;
  };
}
