// The Manual Deploy form, validated field by field with the same schemas (and messages) as the
// API, so every error can be shown beside the field it is about.
import { z } from '../runtime/core/zod.ts';
import { zodToError } from '../runtime/api/http-errors.ts';
import { serviceCreateSchema, servicePatchSchema, SERVICE_DEFAULTS, type ServiceCreate, type ServicePatch } from '../runtime/control/service-settings.ts';
import { envNameSchema, serviceNameSchema } from '../runtime/core/names.ts';
import type { Service } from '../runtime/store/services.ts';
import type { FieldErrors } from './components.tsx';

export const DEPLOY_TEXT_FIELDS = ['name', 'runtime', 'buildCommand', 'startCommand', 'port', 'memoryMb', 'env', 'git', 'ref'] as const;
export type DeployValues = Record<(typeof DEPLOY_TEXT_FIELDS)[number], string>;

export type DeploySource = { kind: 'upload'; file: File } | { kind: 'git'; url: string; ref?: string };

export interface ParsedDeploy {
  values: DeployValues;
  errors: FieldErrors;
  /** set when there are no errors */
  plan?: {
    name: string;
    /** the service's settings: a create body for a new service, a patch for an existing one */
    create?: ServiceCreate;
    patch?: ServicePatch;
    env: Record<string, string>;
    source: DeploySource;
  };
}

const refSchema = z.string().regex(/^[A-Za-z0-9._\/-]+$/, 'a branch, tag or commit').max(255);

/** the form's starting values: the service's settings, or the defaults for a new one */
export function deployDefaults(service?: Service): DeployValues {
  return {
    name: service?.name ?? '',
    runtime: service?.runtime ?? 'node',
    buildCommand: service?.buildCommand ?? '',
    startCommand: service?.startCommand ?? '',
    port: String(service?.port ?? SERVICE_DEFAULTS.port),
    memoryMb: String(service?.memoryMb ?? SERVICE_DEFAULTS.memoryMb),
    env: '',
    git: '',
    ref: '',
  };
}

export function parseDeployForm(form: Record<string, string | File | (string | File)[]>, existing: (name: string) => Service | undefined): ParsedDeploy {
  const text = (k: string) => {
    const v = form[k];
    const one = Array.isArray(v) ? v[0] : v;
    return typeof one === 'string' ? one.replace(/\r\n?/g, '\n') : '';
  };
  const values = Object.fromEntries(DEPLOY_TEXT_FIELDS.map((k) => [k, text(k)])) as DeployValues;
  const errors: FieldErrors = {};
  const fail = (field: string, message: string) => {
    errors[field] ??= message;
  };
  const failZod = (err: z.ZodError) => {
    for (const issue of err.issues) {
      const coded = zodToError(new z.ZodError([issue]));
      fail(String(coded.details?.field ?? 'form'), coded.message);
    }
  };

  const name = values.name.trim();
  const nameCheck = serviceNameSchema.safeParse(name);
  if (!name) fail('name', 'name: a service name is required');
  else if (!nameCheck.success) failZod(new z.ZodError(nameCheck.error.issues.map((i) => ({ ...i, path: ['name'] }))));

  const settings: Record<string, unknown> = {
    runtime: values.runtime,
    buildCommand: values.buildCommand.trim() ? values.buildCommand : null,
    startCommand: values.startCommand.trim() ? values.startCommand.trim() : null,
  };
  for (const field of ['port', 'memoryMb'] as const) {
    const raw = values[field].trim();
    if (raw === '') settings[field] = SERVICE_DEFAULTS[field];
    else if (/^\d+$/.test(raw)) settings[field] = Number(raw);
    else fail(field, `${field}: a whole number`);
  }
  const current = nameCheck.success ? existing(name) : undefined;
  // a number that did not parse is reported once, by the check above, not again by the schema
  for (const field of ['port', 'memoryMb'] as const) if (errors[field]) delete settings[field];
  // only what the user changed from what the form showed is sent: a value sent is an explicit
  // setting, which would win over the app manifest of every later deployment
  const shown = current ?? { ...SERVICE_DEFAULTS, runtime: undefined };
  for (const field of ['buildCommand', 'startCommand', 'port', 'memoryMb', ...(current ? (['runtime'] as const) : [])] as const) {
    if (field in settings && (settings[field] ?? null) === ((shown as Record<string, unknown>)[field] ?? null)) delete settings[field];
  }
  let create: ServiceCreate | undefined;
  let patch: ServicePatch | undefined;
  if (current) {
    const r = servicePatchSchema.safeParse(settings);
    if (r.success) patch = r.data;
    else failZod(r.error);
  } else {
    const r = serviceCreateSchema.safeParse({ name: nameCheck.success ? name : 'placeholder', ...settings });
    if (r.success) create = { ...r.data, name };
    else failZod(r.error);
  }

  const env = parseEnvLines(values.env, fail);

  const fileField = form.archive;
  const file = (Array.isArray(fileField) ? fileField[0] : fileField) as File | string | undefined;
  const hasFile = typeof file === 'object' && file !== null && file.size > 0;
  const git = values.git.trim();
  let source: DeploySource | undefined;
  if (hasFile && git) fail('archive', 'source: upload an archive or give a git URL, not both');
  else if (hasFile) source = { kind: 'upload', file: file as File };
  else if (git) {
    if (git.length > 4096) fail('git', 'git: at most 4096 characters');
    const ref = values.ref.trim();
    if (ref) {
      const r = refSchema.safeParse(ref);
      if (!r.success) fail('ref', `ref: ${r.error.issues[0]!.message}`);
    }
    source = { kind: 'git', url: git, ref: ref || undefined };
  } else {
    fail('archive', 'source: choose a tar.gz or zip archive of the source, or give a git URL');
  }

  if (Object.keys(errors).length) return { values, errors };
  return { values, errors, plan: { name, create, patch, env, source: source! } };
}

/** KEY=VALUE lines; blank lines and # comments skipped, an optional `export `, one pair of quotes stripped */
export function parseEnvLines(text: string, fail: (field: string, message: string) => void): Record<string, string> {
  const vars: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      fail('env', `env: line ${i + 1}: expected KEY=VALUE`);
      continue;
    }
    const key = line.slice(0, eq).replace(/^export\s+/, '').trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    const check = envNameSchema.safeParse(key);
    if (!check.success) {
      fail('env', `env: line ${i + 1}: variable name "${key}": ${check.error.issues[0]!.message}`);
      continue;
    }
    vars[key] = value;
  }
  return vars;
}
