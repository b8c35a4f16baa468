// Reads what an export needs from the data dir: the services, their live builds, their env.
import fs from 'node:fs';
import { CellhostError } from '../core/errors.ts';
import { parseEdgeStart } from '../../builder/runtimes/index.ts';
import { startCommandFor } from '../control/targets.ts';
import type { EnvStore } from '../store/env.ts';
import type { Store } from '../store/index.ts';
import type { Service } from '../store/services.ts';
import type { ExportItem } from './model.ts';

export interface Collected {
  items: ExportItem[];
  /** with --all: services left out, and why */
  skipped: { service: string; reason: string }[];
}

function itemFor(store: Store, env: EnvStore, service: Service): ExportItem {
  const dep = service.liveDeploymentId ? store.deployments.get(service.liveDeploymentId) : undefined;
  if (!dep?.imageDir) {
    throw new CellhostError('ERR_EXPORT_NO_BUILD', `service "${service.name}" has no live build to export: deploy it first`, { details: { service: service.name } });
  }
  if (!fs.statSync(dep.imageDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new CellhostError('ERR_EXPORT_NO_BUILD', `the live build of "${service.name}" (${dep.id}) is missing from ${dep.imageDir}`, { details: { service: service.name } });
  }
  const startCommand = startCommandFor(service, dep);
  if (parseEdgeStart(startCommand)) {
    // the image would need cellhost's edge host; a container has no such server of its own
    throw new CellhostError('ERR_EXPORT_UNMAPPABLE', `"${service.name}" is served by cellhost's edge host (a fetch-handler module): an exported image cannot run it yet; give it a start command that runs its own server`, { details: { service: service.name } });
  }
  return {
    service,
    deploymentId: dep.id,
    builtAt: dep.finishedAt ?? dep.createdAt,
    imageDir: dep.imageDir,
    startCommand,
    env: env.values(service.name),
    // cellhost has no cron jobs yet; when it does, they are read here
    cronJobs: [],
    ...(dep.systemLayer ? { systemPackages: [...dep.systemLayer.packages.added, ...dep.systemLayer.packages.upgraded.map((u) => ({ name: u.name, version: u.to }))].map((p) => `${p.name} ${p.version}`) } : {}),
  };
}

/** names: every one must exist and have a live build; 'all': every service that has one */
export function collectServices(store: Store, env: EnvStore, names: readonly string[] | 'all'): Collected {
  if (names === 'all') {
    const items: ExportItem[] = [];
    const skipped: Collected['skipped'] = [];
    for (const s of store.services.list()) {
      try {
        items.push(itemFor(store, env, s));
      } catch (err) {
        // with --all, a service that cannot be exported (no build, served by the edge host) is left out and named
        if (!['ERR_EXPORT_NO_BUILD', 'ERR_EXPORT_UNMAPPABLE'].includes((err as CellhostError).code)) throw err;
        skipped.push({ service: s.name, reason: (err as Error).message });
      }
    }
    if (!items.length) throw new CellhostError('ERR_EXPORT_NO_BUILD', 'no service has a live build to export');
    return { items, skipped };
  }
  const items = [...new Set(names)].map((name) => {
    const s = store.services.get(name);
    if (!s) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    return itemFor(store, env, s);
  });
  return { items, skipped: [] };
}
