// Service verbs: create, change, delete, and keeping the pool's target in step with the
// store. Routing reads an in-memory host table rebuilt on every change.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { UidRange } from '../core/config.ts';
import { cpuForMemory } from '../sandbox/cgroups/cpu.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError, describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { InstanceInfo, Pool } from '../instances/pool/types.ts';
import type { Route } from '../router/proxy.ts';
import { serviceLabel } from '../router/hosts.ts';
import type { Store } from '../store/index.ts';
import type { Service } from '../store/services.ts';
import { isManifestSetting, type Manifest } from '../manifest/manifest.ts';
import { resolveSettings, settingsConflict } from './manifest-settings.ts';
import { clearedSettings, givenSettings, SERVICE_DEFAULTS, settingsForCreate, settingsForPatch, type ServiceCreate, type ServicePatch } from './service-settings.ts';
import { buildTarget } from './targets.ts';

export interface ServiceView extends Service {
  url: string;
  instances: InstanceInfo[];
  /** what the memory size buys: CPU cap as % of one core, and the cores the app sees */
  cpu: { percentOfCore: number; cores: number };
}

export interface ServicesDeps {
  store: Store;
  pool: Pool;
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
  removeBuildLog(deploymentId: string): Promise<void>;
  /** writes buffered runtime log entries now */
  flushLogs(): void;
  /** the service's variables and a version that changes whenever they do */
  envFor(service: string): { vars: Record<string, string>; version: string };
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
  /** the https:// URL of a platform name once it has a certificate, else null */
  secureUrl?(name: string): string | null;
  /** the hosts a service answers on changed (created, domains changed, deleted) */
  onHostsChanged?(service: string): void;
}

export interface Services {
  list(): ServiceView[];
  get(name: string): ServiceView;
  create(body: ServiceCreate): ServiceView;
  /** changes settings; a setting sent as null is no longer explicit: the live manifest or the default decides it */
  update(name: string, patch: ServicePatch): ServiceView;
  /**
   * a deployment is about to go live: the settings not set explicitly take the values its
   * manifest gives (or their defaults). The pool follows when the live deployment changes.
   */
  applyManifest(name: string, manifest: Manifest | null): ServiceView;
  /** puts back settings read before a change (which of them were explicit too): undoes a change that could not be completed */
  restore(name: string, before: Service): ServiceView;
  remove(name: string): Promise<void>;
  /** the router's lookup: normalized host → route */
  resolve(host: string): Route | null;
  /** recompute what the pool should run for a service (live deployment, settings or env changed) */
  /** make the pool run what is live now; `standby` unless it is the platform's start */
  sync(name: string, standby?: boolean): void;
  syncAll(): void;
}

export function createServices(deps: ServicesDeps): Services {
  const { store, pool } = deps;
  const iso = () => new Date(deps.clock.now()).toISOString();
  // the router's table, changed one service at a time (rebuilding it from the store made each
  // create O(services): 16 ms per create at 1000 services)
  const routes = new Map<string, Route>();
  const customDomains = new Map<string, Route>();

  function setRoute(s: Service): void {
    dropRoute(s.name);
    const route = { service: s.name, requestTimeoutMs: Math.round(s.requestTimeoutS * 1000), httpsRedirect: s.httpsRedirect, hsts: s.hsts };
    routes.set(s.name, route);
    for (const d of s.domains) customDomains.set(d, route);
  }

  function dropRoute(name: string): void {
    const old = routes.get(name);
    if (!old) return;
    routes.delete(name);
    for (const [d, r] of customDomains) if (r === old) customDomains.delete(d);
  }

  const urlFor = (name: string) => {
    const port = deps.publicPort();
    return `http://${name}.${deps.domain}${port === 80 ? '' : `:${port}`}`;
  };
  const view = (s: Service): ServiceView => {
    const cpu = cpuForMemory(s.memoryMb, os.availableParallelism());
    return { ...s, url: deps.secureUrl?.(s.name) ?? urlFor(s.name), instances: pool.instances(s.name), cpu: { percentOfCore: Number((cpu.quota * 100).toFixed(1)), cores: cpu.cores } };
  };

  /** services being deleted: already gone for every verb, their name not yet free */
  const deleting = new Set<string>();

  function mustGet(name: string): Service {
    const s = store.services.get(name);
    if (!s || deleting.has(name)) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    return s;
  }

  function checkDomains(name: string, domains: string[]): void {
    for (const d of domains) {
      const owner = store.services.findByDomain(d);
      if (owner && owner.name !== name) {
        throw new CellhostError('ERR_DOMAIN_TAKEN', `domain "${d}" belongs to another service`, { details: { field: 'domains' } });
      }
      if (serviceLabel(d, deps.domain)) {
        throw new CellhostError('ERR_DOMAIN_TAKEN', `domain "${d}" is a platform name (<service>.${deps.domain})`, { details: { field: 'domains' } });
      }
    }
  }

  /** what the live deployment's manifest gives, if it had a valid one */
  function liveManifest(s: Service): Manifest | null {
    return (s.liveDeploymentId && store.deployments.get(s.liveDeploymentId)?.manifest?.parsed) || null;
  }

  function sync(name: string, standby = true): void {
    const s = deleting.has(name) ? undefined : store.services.get(name);
    const dep = s?.liveDeploymentId ? store.deployments.get(s.liveDeploymentId) : undefined;
    if (!s || !dep?.imageDir) {
      pool.setTarget(name, null);
      return;
    }
    const env = deps.envFor(name);
    pool.setTarget(name, buildTarget(s, dep, env.vars, env.version), { standby });
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
      sync(name);
      deps.onEvent?.(name, 'service_updated', { fields: Object.keys(patch) });
      if (patch.domains) deps.onHostsChanged?.(name);
      return view(s);
    },
    restore(name, before) {
      const current = mustGet(name);
      const { name: _n, uid: _u, explicitSettings, liveDeploymentId: _l, createdAt: _c, updatedAt: _up, ...settings } = before;
      const s = store.services.update(name, settings, iso(), explicitSettings);
      setRoute(s);
      sync(name);
      if (JSON.stringify(before.domains) !== JSON.stringify(current.domains)) deps.onHostsChanged?.(name);
      return view(s);
    },
    applyManifest(name, manifest) {
      const current = mustGet(name);
      const settings = resolveSettings(current, current.explicitSettings, manifest);
      const conflict = settingsConflict(settings, current.explicitSettings, manifest);
      if (conflict) throw new CellhostError('ERR_VALIDATION', conflict, { details: { field: 'minInstances' } });
      const changed = Object.keys(settings).filter((k) => JSON.stringify(settings[k as keyof typeof settings]) !== JSON.stringify(current[k as keyof typeof settings]));
      if (!changed.length) return view(current);
      const s = store.services.update(name, settings, iso());
      setRoute(s);
      deps.onEvent?.(name, 'service_updated', { fields: changed, by: manifest?.file ?? 'defaults' });
      return view(s);
    },
    async remove(name) {
      const s = mustGet(name);
      // gone for every verb and the router at once; its name and uid stay taken until nothing of
      // it runs and its files are gone, so a new service of the same name starts from nothing
      deleting.add(name);
      const failures: string[] = [];
      try {
        dropRoute(name);
        await Promise.all([pool.stopService(name, deps.stopGraceMs), deps.stopBuilds(name)]);
        const attempt = (what: string, p: Promise<unknown>) =>
          p.catch((err) => {
            failures.push(what);
            deps.log.error('service.cleanup_failed', { service: name, what, error: describeError(err) });
          });
        const deployments = store.deployments.listForService(name);
        for (const d of deployments) {
          await attempt(`image ${d.id}`, fs.rm(path.join(deps.imagesDir, d.id), { recursive: true, force: true }));
          await attempt(`build log ${d.id}`, deps.removeBuildLog(d.id));
        }
        await attempt('dependency cache', fs.rm(path.join(deps.cacheDir, name), { recursive: true, force: true }));
        // its last events (instances stopped, build interrupted) are written before its logs go
        deps.flushLogs();
        store.logs.removeService(name);
        store.services.remove(name, iso());
        deps.onHostsChanged?.(name);
        deps.log.info('service.deleted', { service: name, uid: s.uid, images: deployments.length, cleanupFailures: failures });
      } finally {
        deleting.delete(name);
        // still there when something above threw: routed again as it was
        const left = store.services.get(name);
        if (left) setRoute(left);
      }
    },
    resolve(host) {
      const label = serviceLabel(host, deps.domain);
      return (label ? routes.get(label) : customDomains.get(host)) ?? null;
    },
    sync,
    syncAll() {
      for (const s of store.services.list()) sync(s.name, false);
    },
  };
}
