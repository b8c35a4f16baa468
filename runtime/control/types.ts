// The control plane's public types, apart from its code: the API and the console read services
// through these without importing what runs them (the pool, the router's table, the sandbox).
import type { InstanceInfo } from '../instances/pool/types.ts';
import type { Manifest } from '../manifest/manifest.ts';
import type { Service } from '../store/services.ts';
import type { ServiceCreate, ServicePatch } from './service-settings.ts';

export interface ServiceView extends Service {
  url: string;
  instances: InstanceInfo[];
  /** what the memory size buys: CPU cap as % of one core, and the cores the app sees */
  cpu: { percentOfCore: number; cores: number };
  /** set when this service is a preview deployment of another's branch */
  preview: PreviewOf | null;
}

export interface PreviewOf {
  parent: string;
  branch: string;
  pullRequest: number | null;
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
}
