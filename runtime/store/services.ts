// The services table. Rows become `Service` records with the API's camelCase names.
import type { UidRange } from '../core/config.ts';
import type { RuntimeName } from '../core/names.ts';
import type { Db } from './db.ts';
import { createUidStore } from './uids.ts';

export type Plan = 'hobby' | 'pro';

export interface ServiceSettings {
  runtime: RuntimeName;
  buildCommand: string | null;
  startCommand: string | null;
  port: number;
  memoryMb: number;
  plan: Plan;
  minInstances: number;
  maxInstances: number;
  concurrency: number;
  idleTimeoutS: number;
  requestTimeoutS: number;
  healthPath: string | null;
  rootDir: string | null;
  domains: string[];
  /** answer plain HTTP with a 301 to HTTPS for hosts that have a certificate */
  httpsRedirect: boolean;
  /** send Strict-Transport-Security on HTTPS responses */
  hsts: boolean;
  /** pushes and webhooks for this branch deploy the service */
  deployBranch: string;
  /** pushes of other branches (and pull requests) deploy as preview services */
  previews: boolean;
  /** once scaled to zero, keep an instance started and frozen (within the platform's budget) */
  prewarm: boolean;
}

export type SettingName = keyof ServiceSettings;

export interface Service extends ServiceSettings {
  name: string;
  /** settings given through the API (create or change): an app manifest does not change them */
  explicitSettings: SettingName[];
  /** the unprivileged host uid its builds and instances run as */
  uid: number | null;
  /** the first of its block of host ids for system-layer builds (uids.ts), once it has needed one */
  subuidBase: number | null;
  liveDeploymentId: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  name: string;
  runtime: string;
  build_command: string | null;
  start_command: string | null;
  port: number;
  memory_mb: number;
  plan: string;
  min_instances: number;
  max_instances: number;
  concurrency: number;
  idle_timeout_s: number;
  request_timeout_s: number;
  health_path: string | null;
  root_dir: string | null;
  domains: string;
  https_redirect: number;
  hsts: number;
  explicit_settings: string;
  deploy_branch: string;
  previews: number;
  prewarm: number;
  live_deployment_id: string | null;
  created_at: string;
  updated_at: string;
  uid: number | null;
  subuid_base: number | null;
}

function fromRow(r: Row): Service {
  return {
    name: r.name,
    uid: r.uid,
    subuidBase: r.subuid_base,
    runtime: r.runtime as RuntimeName,
    buildCommand: r.build_command,
    startCommand: r.start_command,
    port: r.port,
    memoryMb: r.memory_mb,
    plan: r.plan as Plan,
    minInstances: r.min_instances,
    maxInstances: r.max_instances,
    concurrency: r.concurrency,
    idleTimeoutS: r.idle_timeout_s,
    requestTimeoutS: r.request_timeout_s,
    healthPath: r.health_path,
    rootDir: r.root_dir,
    domains: JSON.parse(r.domains) as string[],
    httpsRedirect: r.https_redirect === 1,
    hsts: r.hsts === 1,
    explicitSettings: JSON.parse(r.explicit_settings) as SettingName[],
    deployBranch: r.deploy_branch,
    previews: r.previews === 1,
    prewarm: r.prewarm !== 0,
    liveDeploymentId: r.live_deployment_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toParams(name: string, s: ServiceSettings) {
  return {
    name,
    runtime: s.runtime,
    build_command: s.buildCommand,
    start_command: s.startCommand,
    port: s.port,
    memory_mb: s.memoryMb,
    plan: s.plan,
    min_instances: s.minInstances,
    max_instances: s.maxInstances,
    concurrency: s.concurrency,
    idle_timeout_s: s.idleTimeoutS,
    request_timeout_s: s.requestTimeoutS,
    health_path: s.healthPath,
    root_dir: s.rootDir,
    domains: JSON.stringify(s.domains),
    https_redirect: s.httpsRedirect ? 1 : 0,
    hsts: s.hsts ? 1 : 0,
    deploy_branch: s.deployBranch,
    previews: s.previews ? 1 : 0,
    prewarm: s.prewarm ? 1 : 0,
  };
}

export interface ServiceStore {
  list(): Service[];
  get(name: string): Service | undefined;
  /** which service a custom domain belongs to */
  findByDomain(domain: string): Service | undefined;
  /** a new service, with a uid of its own (see uids.ts) */
  insert(name: string, settings: ServiceSettings, now: string, range: UidRange, explicit?: readonly SettingName[]): Service;
  /** gives a service without one its uid; returns it */
  assignUid(name: string, range: UidRange, now: string): number;
  /** the service's block of subuids (its base), given on first use */
  assignSubuids(name: string, range: UidRange, now: string): number;
  /** `explicit` replaces the list of explicitly set settings; left out, it stays */
  update(name: string, settings: ServiceSettings, now: string, explicit?: readonly SettingName[]): Service;
  setLive(name: string, deploymentId: string | null, now: string): void;
  /** deletes the service (its deployments and env go with it) and retires its uid and subuids */
  remove(name: string, now: string): boolean;
}

export function createServiceStore(db: Db): ServiceStore {
  const cols =
    'name, runtime, build_command, start_command, port, memory_mb, plan, min_instances, max_instances, concurrency, idle_timeout_s, request_timeout_s, health_path, root_dir, domains, https_redirect, hsts, deploy_branch, previews, prewarm';
  const vals = cols
    .split(', ')
    .map((c) => '@' + c)
    .join(', ');
  const q = {
    list: db.prepare<[], Row>('SELECT * FROM services ORDER BY name'),
    get: db.prepare<[string], Row>('SELECT * FROM services WHERE name = ?'),
    byDomain: db.prepare<[string], Row>(
      'SELECT services.* FROM services, json_each(services.domains) WHERE json_each.value = ? LIMIT 1',
    ),
    insert: db.prepare(`INSERT INTO services (${cols}, explicit_settings, uid, created_at, updated_at) VALUES (${vals}, @explicit, @uid, @now, @now)`),
    update: db.prepare(
      `UPDATE services SET ${cols
        .split(', ')
        .filter((c) => c !== 'name')
        .map((c) => `${c} = @${c}`)
        .join(', ')}, updated_at = @now WHERE name = @name`,
    ),
    setExplicit: db.prepare('UPDATE services SET explicit_settings = ? WHERE name = ?'),
    setLive: db.prepare('UPDATE services SET live_deployment_id = ?, updated_at = ? WHERE name = ?'),
    remove: db.prepare('DELETE FROM services WHERE name = ?'),
  };
  const get = (name: string) => {
    const r = q.get.get(name);
    return r ? fromRow(r) : undefined;
  };
  const uids = createUidStore(db);
  return {
    list: () => q.list.all().map(fromRow),
    get,
    findByDomain(domain) {
      const r = q.byDomain.get(domain);
      return r ? fromRow(r) : undefined;
    },
    insert: db.transaction((name: string, settings: ServiceSettings, now: string, range: UidRange, explicit: readonly SettingName[] = []) => {
      q.insert.run({ ...toParams(name, settings), explicit: JSON.stringify(explicit), now, uid: uids.allocate(range, now) });
      return get(name)!;
    }),
    assignUid: db.transaction((name: string, range: UidRange, now: string) => {
      const uid = uids.allocate(range, now);
      db.prepare('UPDATE services SET uid = ? WHERE name = ? AND uid IS NULL').run(uid, name);
      return get(name)!.uid!;
    }),
    assignSubuids: db.transaction((name: string, range: UidRange, now: string) => {
      const current = get(name);
      if (!current) throw new Error(`no service "${name}"`);
      if (current.subuidBase !== null) return current.subuidBase;
      const base = uids.allocateSubuids(range, now);
      db.prepare('UPDATE services SET subuid_base = ? WHERE name = ? AND subuid_base IS NULL').run(base, name);
      return get(name)!.subuidBase!;
    }),
    update: db.transaction((name: string, settings: ServiceSettings, now: string, explicit?: readonly SettingName[]) => {
      q.update.run({ ...toParams(name, settings), now });
      if (explicit) q.setExplicit.run(JSON.stringify(explicit), name);
      return get(name)!;
    }),
    setLive(name, deploymentId, now) {
      q.setLive.run(deploymentId, now, name);
    },
    remove: db.transaction((name: string, now: string) => {
      const s = get(name);
      if (s?.uid != null) uids.retire(s.uid, name, now);
      if (s?.subuidBase != null) uids.retireSubuids(s.subuidBase, name, now);
      return q.remove.run(name).changes > 0;
    }),
  };
}
