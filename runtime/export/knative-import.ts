// Knative manifests back into cellhost services: the reverse of the export's mapping. Fields
// Knative holds win over the cellhost annotations (they may have been edited on the way); the
// annotations fill in what Knative has no field for. A Service that only names an image cannot
// become a cellhost service: cellhost builds from source.
import YAML from 'yaml';
import { CellhostError } from '../core/errors.ts';
import { serviceCreateSchema, SERVICE_DEFAULTS, type ServiceCreate } from '../control/service-settings.ts';
import { AUTOSCALING, CELLHOST_ANNOTATIONS, DOMAIN_MAPPING_API, KNATIVE_API, RETENTION_MAX_S } from './knative-names.ts';

export interface ImportedService {
  body: ServiceCreate;
  env: Record<string, string>;
  /** where it was read from */
  file: string;
}

interface Doc {
  file: string;
  value: Record<string, any>;
}

const invalid = (file: string, message: string) => new CellhostError('ERR_IMPORT_INVALID', `${file}: ${message}`);

/** a Kubernetes memory quantity (128Mi, 1Gi, 512M, 1073741824) in MB of 2^20 bytes */
export function parseMemoryQuantity(q: unknown): number | null {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? '').trim());
  if (!m) return null;
  const scale: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Math.round((Number(m[1]) * scale[m[2] ?? '']!) / 2 ** 20);
}

/** a Go duration (300s, 5m, 1h30m, 1.5s) in seconds */
export function parseGoDuration(text: unknown): number | null {
  const s = String(text ?? '').trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(s)) return s === '0' ? 0 : null;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const part of s.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(part[1]) * unit[part[2]!]!;
  return total;
}

function int(file: string, what: string, v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw invalid(file, `${what} "${v}" is not a whole number`);
  return n;
}

function secretValues(doc: Doc): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((doc.value.data ?? {}) as Record<string, string>)) out[k] = Buffer.from(String(v), 'base64').toString('utf8');
  for (const [k, v] of Object.entries((doc.value.stringData ?? {}) as Record<string, string>)) out[k] = String(v);
  return out;
}

function envFor(file: string, name: string, container: Record<string, any>, secrets: Map<string, Record<string, string>>): Record<string, string> {
  if (container.envFrom?.length) throw invalid(file, `service "${name}" uses envFrom, which import does not read: list the variables under env`);
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as Record<string, any>[]) {
    if (e.valueFrom === undefined) {
      env[e.name] = String(e.value ?? '');
      continue;
    }
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) throw invalid(file, `env ${e.name} of service "${name}" comes from something other than a Secret, which import does not read`);
    const values = secrets.get(ref.name);
    if (!values) throw invalid(file, `env ${e.name} of service "${name}" comes from Secret "${ref.name}", which is not among the files read (the export writes it to ${name}.env.yaml)`);
    if (!(ref.key in values)) throw invalid(file, `Secret "${ref.name}" has no key ${ref.key} (env ${e.name} of service "${name}")`);
    env[e.name] = values[ref.key]!;
  }
  return env;
}

function serviceFrom(doc: Doc, secrets: Map<string, Record<string, string>>, domains: Map<string, string[]>): ImportedService {
  const { file, value } = doc;
  const name = String(value.metadata?.name ?? '');
  const ann = (value.metadata?.annotations ?? {}) as Record<string, string>;
  const template = value.spec?.template ?? {};
  const tann = (template.metadata?.annotations ?? {}) as Record<string, string>;
  const spec = template.spec ?? {};
  const containers = (spec.containers ?? []) as Record<string, any>[];
  const container = containers[0];
  const runtime = ann[CELLHOST_ANNOTATIONS.runtime];
  if (!runtime) {
    throw new CellhostError(
      'ERR_IMPORT_IMAGE_ONLY',
      `${file}: Knative Service "${name}" runs the image ${container?.image ?? '(none)'} and carries no ${CELLHOST_ANNOTATIONS.runtime} annotation: cellhost builds services from source and does not run images; create it with "cellhost deploy DIR --name ${name}" from its source`,
    );
  }
  if (!container) throw invalid(file, `service "${name}" has no container`);
  if (containers.length > 1) throw invalid(file, `service "${name}" has ${containers.length} containers: a cellhost service runs one`);

  const limits = container.resources?.limits ?? {};
  const memoryMb = limits.memory === undefined ? undefined : parseMemoryQuantity(limits.memory);
  if (memoryMb === null) throw invalid(file, `service "${name}": memory limit "${limits.memory}" is not a quantity such as 512Mi`);

  const timeoutSeconds = int(file, 'timeoutSeconds', spec.timeoutSeconds);
  const exactTimeout = ann[CELLHOST_ANNOTATIONS.requestTimeoutS] !== undefined ? Number(ann[CELLHOST_ANNOTATIONS.requestTimeoutS]) : undefined;
  const requestTimeoutS = exactTimeout !== undefined && (timeoutSeconds === undefined || timeoutSeconds === Math.max(1, Math.ceil(exactTimeout))) ? exactTimeout : timeoutSeconds;

  const retentionText = tann[AUTOSCALING.retention];
  const retention = retentionText === undefined ? undefined : parseGoDuration(retentionText);
  if (retention === null) throw invalid(file, `service "${name}": ${AUTOSCALING.retention} "${retentionText}" is not a duration such as 300s`);
  const exactIdle = ann[CELLHOST_ANNOTATIONS.idleTimeoutS] !== undefined ? Number(ann[CELLHOST_ANNOTATIONS.idleTimeoutS]) : undefined;
  const idleTimeoutS =
    exactIdle !== undefined && (retention === undefined || retention === Math.min(Math.ceil(exactIdle), RETENTION_MAX_S)) ? exactIdle : retention;

  const maxScale = int(file, AUTOSCALING.maxScale, tann[AUTOSCALING.maxScale] ?? tann['autoscaling.knative.dev/maxScale']);
  const concurrency = int(file, 'containerConcurrency', spec.containerConcurrency);
  const body = {
    name,
    runtime,
    buildCommand: ann[CELLHOST_ANNOTATIONS.buildCommand] ?? null,
    startCommand: ann[CELLHOST_ANNOTATIONS.startCommand] ?? null,
    rootDir: ann[CELLHOST_ANNOTATIONS.rootDir] ?? null,
    plan: ann[CELLHOST_ANNOTATIONS.plan] ?? SERVICE_DEFAULTS.plan,
    port: int(file, 'containerPort', container.ports?.[0]?.containerPort),
    memoryMb,
    concurrency: concurrency || undefined,
    minInstances: int(file, AUTOSCALING.minScale, tann[AUTOSCALING.minScale] ?? tann['autoscaling.knative.dev/minScale']),
    // Knative's 0 means no limit; cellhost always has one: its default
    maxInstances: maxScale || undefined,
    requestTimeoutS,
    idleTimeoutS,
    healthPath: container.readinessProbe?.httpGet?.path ?? null,
    domains: domains.get(name) ?? [],
  };
  const parsed = serviceCreateSchema.safeParse(Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(file, `service "${name}": ${issue.path.join('.') || 'settings'}: ${issue.message}`);
  }
  return { body: parsed.data, env: envFor(file, name, container, secrets), file };
}

/** reads every document of every file; returns the services and notes on what was left out */
export function readKnativeManifests(files: readonly { file: string; text: string }[]): { services: ImportedService[]; notes: string[] } {
  const docs: Doc[] = [];
  for (const { file, text } of files) {
    for (const d of YAML.parseAllDocuments(text)) {
      if ('errors' in d && d.errors.length) throw invalid(file, `not YAML: ${d.errors[0]!.message}`);
      const value = d.toJS() as unknown;
      if (value === null || value === undefined) continue;
      if (typeof value !== 'object' || Array.isArray(value)) throw invalid(file, 'a document is not a Kubernetes object');
      docs.push({ file, value: value as Record<string, any> });
    }
  }
  const notes: string[] = [];
  const secrets = new Map<string, Record<string, string>>();
  const domains = new Map<string, string[]>();
  const services: Doc[] = [];
  for (const doc of docs) {
    const { apiVersion, kind, metadata } = doc.value;
    if (apiVersion === KNATIVE_API && kind === 'Service') services.push(doc);
    else if (apiVersion === 'v1' && kind === 'Secret') secrets.set(String(metadata?.name), secretValues(doc));
    else if (kind === 'DomainMapping' && String(apiVersion).startsWith('serving.knative.dev/') && doc.value.spec?.ref?.kind === 'Service') {
      const target = String(doc.value.spec.ref.name);
      domains.set(target, [...(domains.get(target) ?? []), String(metadata?.name)]);
    } else if (kind === 'CronJob') notes.push(`${doc.file}: CronJob ${metadata?.name} not imported: cellhost has no cron jobs yet`);
    else notes.push(`${doc.file}: ${kind ?? 'a document'} ${metadata?.name ?? ''} ignored (not a Knative Service, Secret or ${DOMAIN_MAPPING_API} DomainMapping)`.replace('  ', ' '));
  }
  if (!services.length) throw new CellhostError('ERR_IMPORT_INVALID', `no Knative Service (${KNATIVE_API}) in ${files.map((f) => f.file).join(', ')}`);
  const out = services.map((doc) => serviceFrom(doc, secrets, domains));
  const seen = new Set<string>();
  for (const s of out) {
    if (seen.has(s.body.name)) throw invalid(s.file, `service "${s.body.name}" appears twice`);
    seen.add(s.body.name);
  }
  return { services: out, notes };
}
