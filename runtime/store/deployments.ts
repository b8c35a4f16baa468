// The deployments table: one row per build of a service's source.
import type { RuntimeName } from '../core/names.ts';
import type { Db } from './db.ts';

/** what a build's system layer holds (the layer itself is beside the image: <image>.layer) */
export interface SystemLayerRecord {
  /** the first id of the service's block: the layer's files are owned by ids from it */
  uidBase: number;
  /** sha256 of the host's dpkg status when the layer was built: another hash now means an older base */
  hostBase: string;
  /** packages the layer installed, upgraded and removed relative to the host's */
  packages: {
    added: { name: string; version: string }[];
    upgraded: { name: string; from: string; to: string }[];
    removed: { name: string; version: string }[];
  };
  /** disk space the layer takes */
  bytes: number;
}

export type DeploymentStatus = 'queued' | 'building' | 'ready' | 'live' | 'superseded' | 'failed' | 'interrupted';

/**
 * The app manifest a deployment's source had: the file as it was, and what it gave (null when it
 * was not valid), stored as JSON. What it gave is the manifest module's to read (parsedManifest):
 * the store keeps it without knowing its shape.
 */
export interface DeploymentManifest {
  file: string;
  text: string;
  parsed: unknown;
}

export interface Deployment {
  id: string;
  service: string;
  seq: number;
  status: DeploymentStatus;
  /** where the code came from: "upload:tar.gz", "upload:zip", "git:<url>#<ref>", "git-push:<branch>@<commit>", "webhook:<forge>:<branch>@<commit>" */
  source: string;
  errorCode: string | null;
  error: string | null;
  imageDir: string | null;
  /** the runtime the image was built and looked at for */
  runtime: RuntimeName | null;
  /** the runtime's default start command for this image, worked out once after its build */
  defaultStart: string | null;
  manifest: DeploymentManifest | null;
  /** its system layer, when its build installed system packages */
  systemLayer: SystemLayerRecord | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

interface Row {
  id: string;
  service: string;
  seq: number;
  status: string;
  source: string;
  error_code: string | null;
  error: string | null;
  image_dir: string | null;
  runtime: string | null;
  default_start: string | null;
  manifest: string | null;
  system_layer: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

const fromRow = (r: Row): Deployment => ({
  id: r.id,
  service: r.service,
  seq: r.seq,
  status: r.status as DeploymentStatus,
  source: r.source,
  errorCode: r.error_code,
  error: r.error,
  imageDir: r.image_dir,
  runtime: r.runtime as RuntimeName | null,
  defaultStart: r.default_start,
  manifest: r.manifest ? (JSON.parse(r.manifest) as DeploymentManifest) : null,
  systemLayer: r.system_layer ? (JSON.parse(r.system_layer) as SystemLayerRecord) : null,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export interface DeploymentPatch {
  status?: DeploymentStatus;
  errorCode?: string | null;
  error?: string | null;
  imageDir?: string | null;
  runtime?: RuntimeName | null;
  defaultStart?: string | null;
  manifest?: DeploymentManifest | null;
  systemLayer?: SystemLayerRecord | null;
  startedAt?: string | null;
  finishedAt?: string | null;
}

export interface DeploymentStore {
  create(d: { id: string; service: string; source: string; now: string }): Deployment;
  get(id: string): Deployment | undefined;
  listForService(service: string, opts?: { limit?: number; beforeSeq?: number }): Deployment[];
  listByStatus(statuses: DeploymentStatus[]): Deployment[];
  update(id: string, patch: DeploymentPatch): Deployment;
  /** every service's live deployment that has a system layer */
  listLiveWithLayer(): Deployment[];
}

export function createDeploymentStore(db: Db): DeploymentStore {
  const q = {
    nextSeq: db.prepare<[string], { seq: number }>('SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM deployments WHERE service = ?'),
    insert: db.prepare(
      `INSERT INTO deployments (id, service, seq, status, source, created_at) VALUES (@id, @service, @seq, 'queued', @source, @now)`,
    ),
    get: db.prepare<[string], Row>('SELECT * FROM deployments WHERE id = ?'),
    list: db.prepare<[string, number, number], Row>(
      'SELECT * FROM deployments WHERE service = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
    ),
  };
  const get = (id: string) => {
    const r = q.get.get(id);
    return r ? fromRow(r) : undefined;
  };
  const columns: Record<keyof DeploymentPatch, string> = {
    status: 'status',
    errorCode: 'error_code',
    error: 'error',
    imageDir: 'image_dir',
    runtime: 'runtime',
    defaultStart: 'default_start',
    manifest: 'manifest',
    systemLayer: 'system_layer',
    startedAt: 'started_at',
    finishedAt: 'finished_at',
  };
  return {
    create: db.transaction(({ id, service, source, now }: { id: string; service: string; source: string; now: string }) => {
      const seq = q.nextSeq.get(service)!.seq;
      q.insert.run({ id, service, seq, source, now });
      return get(id)!;
    }),
    get,
    listForService(service, opts = {}) {
      return q.list.all(service, opts.beforeSeq ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 1000).map(fromRow);
    },
    listLiveWithLayer() {
      return db
        .prepare<[], Row>('SELECT d.* FROM deployments d JOIN services s ON s.live_deployment_id = d.id WHERE d.system_layer IS NOT NULL ORDER BY d.service')
        .all()
        .map(fromRow);
    },
    listByStatus(statuses) {
      const marks = statuses.map(() => '?').join(', ');
      return db.prepare<string[], Row>(`SELECT * FROM deployments WHERE status IN (${marks}) ORDER BY created_at`).all(...statuses).map(fromRow);
    },
    update(id, patch) {
      const sets = Object.keys(patch).map((k) => `${columns[k as keyof DeploymentPatch]} = @${k}`);
      const params: Record<string, unknown> = { ...patch, id };
      if (patch.manifest !== undefined) params.manifest = patch.manifest && JSON.stringify(patch.manifest);
      if (patch.systemLayer !== undefined) params.systemLayer = patch.systemLayer && JSON.stringify(patch.systemLayer);
      if (sets.length) db.prepare(`UPDATE deployments SET ${sets.join(', ')} WHERE id = @id`).run(params);
      return get(id)!;
    },
  };
}
