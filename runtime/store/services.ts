// The services table. Rows become `Service` records with the API's camelCase names.
import type { RuntimeName } from '../core/names.ts';
import { allocateUid, type UidRange } from '../sandbox/uids.ts';
import type { Db } from './db.ts';

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
}

export interface Service extends ServiceSettings {
  name: string;
  /** the unprivileged host uid its builds and instances run as */
  uid: number | null;
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
  live_deployment_id: string | null;
  created_at: string;
  updated_at: string;
  uid: number | null;
}

function fromRow(r: Row): Service {
  return {
    name: r.name,
    uid: r.uid,
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
  };
}

export interface ServiceStore {
  list(): Service[];
  get(name: string): Service | undefined;
  /** which service a custom domain belongs to */
  findByDomain(domain: string): Service | undefined;
  insert(name: string, settings: ServiceSettings, now: string, uid: number): Service;
  /** uids in use, for allocating the next */
  uids(): Set<number>;
  /** gives a service without one its uid; returns it */
  assignUid(name: string, range: UidRange): number;
  update(name: string, settings: ServiceSettings, now: string): Service;
  setLive(name: string, deploymentId: string | null, now: string): void;
  remove(name: string): boolean;
}

export function createServiceStore(db: Db): ServiceStore {
  const cols =
    'name, runtime, build_command, start_command, port, memory_mb, plan, min_instances, max_instances, concurrency, idle_timeout_s, request_timeout_s, health_path, root_dir, domains, https_redirect, hsts';
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
    insert: db.prepare(`INSERT INTO services (${cols}, uid, created_at, updated_at) VALUES (${vals}, @uid, @now, @now)`),
    uids: db.prepare<[], { uid: number }>('SELECT uid FROM services WHERE uid IS NOT NULL'),
    update: db.prepare(
      `UPDATE services SET ${cols
        .split(', ')
        .filter((c) => c !== 'name')
        .map((c) => `${c} = @${c}`)
        .join(', ')}, updated_at = @now WHERE name = @name`,
    ),
    setLive: db.prepare('UPDATE services SET live_deployment_id = ?, updated_at = ? WHERE name = ?'),
    remove: db.prepare('DELETE FROM services WHERE name = ?'),
  };
  const get = (name: string) => {
    const r = q.get.get(name);
    return r ? fromRow(r) : undefined;
  };
  return {
    list: () => q.list.all().map(fromRow),
    get,
    findByDomain(domain) {
      const r = q.byDomain.get(domain);
      return r ? fromRow(r) : undefined;
    },
    insert(name, settings, now, uid) {
      q.insert.run({ ...toParams(name, settings), now, uid });
      return get(name)!;
    },
    uids: () => new Set(q.uids.all().map((r) => r.uid)),
    assignUid: db.transaction((name: string, range: UidRange) => {
      const uid = allocateUid(new Set(q.uids.all().map((r) => r.uid)), range);
      db.prepare('UPDATE services SET uid = ? WHERE name = ? AND uid IS NULL').run(uid, name);
      return get(name)!.uid!;
    }),
    update(name, settings, now) {
      q.update.run({ ...toParams(name, settings), now });
      return get(name)!;
    },
    setLive(name, deploymentId, now) {
      q.setLive.run(deploymentId, now, name);
    },
    remove: (name) => q.remove.run(name).changes > 0,
  };
}
