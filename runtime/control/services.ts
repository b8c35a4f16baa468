// Service verbs: create, change, delete, and keeping the pool's target in step with the
// store. Routing reads an in-memory host table rebuilt on every change.
import fs from 'node:fs/promises';
import os from 'node:os';
import { cpuForMemory } from '../sandbox/cgroups/cpu.ts';
import { allocateUid, type UidRange } from '../sandbox/uids.ts';
import path from 'node:path';
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { InstanceInfo, Pool } from '../instances/pool.ts';
import type { Route } from '../router/proxy.ts';
import { serviceLabel } from '../router/hosts.ts';
import type { Store } from '../store/index.ts';
import type { Service } from '../store/services.ts';
import { settingsForCreate, settingsForPatch, type ServiceCreate, type ServicePatch } from './service-settings.ts';
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
  uidRange: UidRange;
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
  update(name: string, patch: ServicePatch): ServiceView;
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

  function mustGet(name: string): Service {
    const s = store.services.get(name);
    if (!s) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
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

  function sync(name: string, standby = true): void {
    const s = store.services.get(name);
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
    list: () => store.services.list().map(view),
    get: (name) => view(mustGet(name)),
    create(body) {
      if (store.services.get(body.name)) throw new CellhostError('ERR_SERVICE_EXISTS', `a service named "${body.name}" exists already`);
      const settings = settingsForCreate(body);
      checkDomains(body.name, settings.domains);
      const s = store.db.transaction(() => store.services.insert(body.name, settings, iso(), allocateUid(store.services.uids(), deps.uidRange)))();
      setRoute(s);
      deps.onEvent?.(s.name, 'service_created', {});
      deps.onHostsChanged?.(s.name);
      return view(s);
    },
    update(name, patch) {
      const current = mustGet(name);
      const settings = settingsForPatch(current, patch);
      if (settings.minInstances > settings.maxInstances) {
        throw new CellhostError('ERR_VALIDATION', 'minInstances cannot exceed maxInstances', { details: { field: 'minInstances' } });
      }
      checkDomains(name, settings.domains);
      const s = store.services.update(name, settings, iso());
      setRoute(s);
      sync(name);
      deps.onEvent?.(name, 'service_updated', { fields: Object.keys(patch) });
      if (patch.domains) deps.onHostsChanged?.(name);
      return view(s);
    },
    async remove(name) {
      mustGet(name);
      const deployments = store.deployments.listForService(name);
      store.services.remove(name);
      store.logs.removeService(name);
      dropRoute(name);
      deps.onHostsChanged?.(name);
      pool.setTarget(name, null);
      for (const d of deployments) await fs.rm(path.join(deps.imagesDir, d.id), { recursive: true, force: true });
      deps.log.info('service.deleted', { service: name, images: deployments.length });
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
