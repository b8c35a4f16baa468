// Service verbs: create, change, delete, and keeping the pool's target and the router's table
// in step with the store.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { UidRange } from '../core/config.ts';
import type { Clock } from '../core/clock.ts';
import { cpuForMemory } from '../core/cpu-for-memory.ts';
import { CellhostError, describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Pool } from '../instances/pool/types.ts';
import type { RouteTable } from '../router/route-table.ts';
import type { Store } from '../store/index.ts';
import type { Service } from '../store/services.ts';
import { layerDirOf } from '../sandbox/system-layer.ts';
import { isManifestSetting, parsedManifest, type Manifest } from '../manifest/manifest.ts';
import { createManifestApply } from './manifest-apply.ts';
import { resolveSettings } from './manifest-settings.ts';
import { checkDomainOwners } from './domain-owners.ts';
import { setServiceRoute } from './service-route.ts';
import { clearedSettings, givenSettings, SERVICE_DEFAULTS, settingsForCreate, settingsForPatch } from './service-settings.ts';
import type { TargetSync } from './targets.ts';
import type { PreviewOf, Services, ServiceView } from './types.ts';

export interface ServicesDeps {
  store: Store;
  pool: Pool;
  /** the router's table: each service's entries are written here as it changes */
  routes: RouteTable;
  clock: Clock;
  log: Logger;
  domain: string;
  /** the router's public port, for URLs (omitted when 80); known once it listens */
  publicPort(): number;
  imagesDir: string;
  /** per-service dependency caches live at <cacheDir>/<service> */
  cacheDir: string;
  uidRange: UidRange;
  /** how long a deleted service's in-flight requests may still run */
  stopGraceMs: number;
  /** a deleted service's builds: stop them and wait; then drop their logs */
  stopBuilds(service: string): Promise<void>;
  /** unmounts a deployment's system-layer views before its layer is removed */
  forgetSystemLayer?(deploymentId: string): Promise<void>;
  /** drops the upload a deployment kept for rebuilds */
  removeKeptSource?(deploymentId: string): Promise<void>;
  removeBuildLog(deploymentId: string): Promise<void>;
  /** writes buffered runtime log entries now */
  flushLogs(): void;
  /** keeps the pool running what is live: told when settings change, and while a service is deleted */
  targets: TargetSync;
  /** which service's preview this one is, if it is one */
  previewOf?(service: string): PreviewOf | null;
  /** a service is gone (its instances, files and row): what hangs on it elsewhere can go */
  onRemoved?(service: string): Promise<void>;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
  /** the https:// URL of a platform name once it has a certificate, else null */
  secureUrl?(name: string): string | null;
  /** the hosts a service answers on changed (created, domains changed, deleted) */
  onHostsChanged?(service: string): void;
}

export function createServices(deps: ServicesDeps): Services {
  const { store, pool, routes } = deps;
  const iso = () => new Date(deps.clock.now()).toISOString();
  const setRoute = (s: Service) => setServiceRoute(routes, s);
  const applyManifest = createManifestApply({ store, routes, clock: deps.clock, onEvent: deps.onEvent });

  const urlFor = (name: string) => {
    const port = deps.publicPort();
    return `http://${name}.${deps.domain}${port === 80 ? '' : `:${port}`}`;
  };
  const view = (s: Service): ServiceView => {
    const cpu = cpuForMemory(s.memoryMb, os.availableParallelism());
    return {
      ...s,
      url: deps.secureUrl?.(s.name) ?? urlFor(s.name),
      instances: pool.instances(s.name),
      cpu: { percentOfCore: Number((cpu.quota * 100).toFixed(1)), cores: cpu.cores },
      preview: deps.previewOf?.(s.name) ?? null,
    };
  };

  /** services being deleted: already gone for every verb, their name not yet free */
  const deleting = new Set<string>();

  function mustGet(name: string): Service {
    const s = store.services.get(name);
    if (!s || deleting.has(name)) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    return s;
  }

  const checkDomains = (name: string, domains: string[]) => checkDomainOwners(store, deps.domain, name, domains);

  /** what the live deployment's manifest gives, if it had a valid one */
  function liveManifest(s: Service): Manifest | null {
    return s.liveDeploymentId ? parsedManifest(store.deployments.get(s.liveDeploymentId)) : null;
  }

  for (const s of store.services.list()) setRoute(s);

  return {
    list: () => store.services.list().filter((s) => !deleting.has(s.name)).map(view),
    get: (name) => view(mustGet(name)),
    create(body) {
      if (deleting.has(body.name)) throw new CellhostError('ERR_SERVICE_EXISTS', `a service named "${body.name}" is being deleted: its name is free once that is done`);
      if (store.services.get(body.name)) throw new CellhostError('ERR_SERVICE_EXISTS', `a service named "${body.name}" exists already`);
      const settings = settingsForCreate(body);
      checkDomains(body.name, settings.domains);
      const explicit = givenSettings(body).filter(isManifestSetting);
      const s = store.services.insert(body.name, settings, iso(), deps.uidRange, explicit);
      setRoute(s);
      deps.onEvent?.(s.name, 'service_created', {});
      deps.onHostsChanged?.(s.name);
      return view(s);
    },
    update(name, patch) {
      const current = mustGet(name);
      const cleared = clearedSettings(patch);
      const explicit = [...new Set([...current.explicitSettings, ...givenSettings(patch)])].filter((k) => isManifestSetting(k) && !cleared.includes(k));
      const merged = settingsForPatch(current, patch);
      // cleared settings the manifest never gives are simply back to their defaults
      for (const k of cleared) if (!isManifestSetting(k)) (merged as unknown as Record<string, unknown>)[k] = SERVICE_DEFAULTS[k];
      const settings = resolveSettings(merged, explicit, liveManifest(current));
      if (settings.minInstances > settings.maxInstances) {
        throw new CellhostError('ERR_VALIDATION', 'minInstances cannot exceed maxInstances', { details: { field: 'minInstances' } });
      }
      checkDomains(name, settings.domains);
      const s = store.services.update(name, settings, iso(), explicit);
      setRoute(s);
      deps.targets.sync(name);
      deps.onEvent?.(name, 'service_updated', { fields: Object.keys(patch) });
      if (patch.domains) deps.onHostsChanged?.(name);
      return view(s);
    },
    restore(name, before) {
      const current = mustGet(name);
      const { name: _n, uid: _u, explicitSettings, liveDeploymentId: _l, createdAt: _c, updatedAt: _up, ...settings } = before;
      const s = store.services.update(name, settings, iso(), explicitSettings);
      setRoute(s);
      deps.targets.sync(name);
      if (JSON.stringify(before.domains) !== JSON.stringify(current.domains)) deps.onHostsChanged?.(name);
      return view(s);
    },
    applyManifest(name, manifest) {
      mustGet(name);
      return view(applyManifest(name, manifest));
    },
    async remove(name) {
      const s = mustGet(name);
      // gone for every verb and the router at once; its name and uid stay taken until nothing of
      // it runs and its files are gone, so a new service of the same name starts from nothing
      deleting.add(name);
      deps.targets.withhold(name);
      const failures: string[] = [];
      try {
        routes.drop(name);
        await Promise.all([pool.stopService(name, deps.stopGraceMs), deps.stopBuilds(name)]);
        const attempt = (what: string, p: Promise<unknown>) =>
          p.catch((err) => {
            failures.push(what);
            deps.log.error('service.cleanup_failed', { service: name, what, error: describeError(err) });
          });
        const deployments = store.deployments.listForService(name);
        for (const d of deployments) {
          await attempt(`image ${d.id}`, fs.rm(path.join(deps.imagesDir, d.id), { recursive: true, force: true }));
          const layer = layerDirOf(path.join(deps.imagesDir, d.id));
          await attempt(`system layer ${d.id}`, (deps.forgetSystemLayer?.(d.id) ?? Promise.resolve()).then(() => fs.rm(layer, { recursive: true, force: true })));
          if (deps.removeKeptSource) await attempt(`kept source ${d.id}`, deps.removeKeptSource(d.id));
          await attempt(`build log ${d.id}`, deps.removeBuildLog(d.id));
        }
        await attempt('dependency cache', fs.rm(path.join(deps.cacheDir, name), { recursive: true, force: true }));
        // its last events (instances stopped, build interrupted) are written before its logs go
        deps.flushLogs();
        store.logs.removeService(name);
        store.services.remove(name, iso());
        deps.onHostsChanged?.(name);
        deps.log.info('service.deleted', { service: name, uid: s.uid, images: deployments.length, cleanupFailures: failures });
        await deps.onRemoved?.(name).catch((err: unknown) => deps.log.error('service.cleanup_failed', { service: name, what: 'what depends on it', error: describeError(err) }));
      } finally {
        deleting.delete(name);
        deps.targets.release(name);
        // still there when something above threw: routed again as it was
        const left = store.services.get(name);
        if (left) setRoute(left);
      }
    },
  };
}
