// The control plane's public types, apart from its code: the API and the console read services
// through these without importing what runs them (the pool, the router's table, the sandbox).
import type { InstanceInfo } from '../instances/pool/types.ts';
import type { Service } from '../store/services.ts';
import type { ServiceCreate, ServicePatch } from './service-settings.ts';

export interface ServiceView extends Service {
  url: string;
  instances: InstanceInfo[];
  /** what the memory size buys: CPU cap as % of one core, and the cores the app sees */
  cpu: { percentOfCore: number; cores: number };
}

export interface Services {
  list(): ServiceView[];
  get(name: string): ServiceView;
  create(body: ServiceCreate): ServiceView;
  update(name: string, patch: ServicePatch): ServiceView;
  remove(name: string): Promise<void>;
}
