// Env verbs: validate, store encrypted, apply without a redeploy (the pool replaces warm
// instances gracefully), and say so in the service's log with names only. The decrypted values
// that instances, builds and log masking read are a piece of their own (EnvValues), below the
// verbs: the services and the log sink read values without depending on the verbs.
import { z } from '../core/zod.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import { envNameSchema } from '../core/names.ts';
import { createMasker, type Masker } from '../logs/masker.ts';
import type { EnvStore, EnvVarInfo } from '../store/env.ts';

export const ENV_TOTAL_LIMIT = 64 * 1024;

export const envValueSchema = z.string().max(ENV_TOTAL_LIMIT, 'a value is at most 64 KB');
export const envVarsSchema = z.record(z.string(), envValueSchema);

/** each service's decrypted variables, cached until they change, with a masker for their values */
export interface EnvValues {
  /** decrypted variables and their version, for instances and builds */
  forService(service: string): { vars: Record<string, string>; version: string };
  /** hides the service's values in its logs */
  masker(service: string): Masker;
  /** the service's variables changed: read them again next time */
  forget(service: string): void;
}

export function createEnvValues(env: EnvStore): EnvValues {
  const cache = new Map<string, { version: number; vars: Record<string, string>; masker: Masker }>();

  // the env verbs are the only writer, and they forget a service on every change they make
  function load(service: string) {
    const hit = cache.get(service);
    if (hit) return hit;
    const version = env.version(service);
    const vars = env.values(service);
    const entry = { version, vars, masker: createMasker(Object.values(vars)) };
    cache.set(service, entry);
    return entry;
  }

  return {
    forService(service) {
      const { vars, version } = load(service);
      return { vars, version: String(version) };
    },
    masker: (service) => load(service).masker,
    forget: (service) => void cache.delete(service),
  };
}

export interface EnvDeps {
  env: EnvStore;
  values: EnvValues;
  clock: Clock;
  /** throws ERR_SERVICE_NOT_FOUND */
  assertService(name: string): void;
  /** the service's variables changed: new instances get them, warm ones are replaced */
  onChanged(service: string): void;
  onEvent(service: string, event: string, fields: Record<string, unknown>): void;
}

export interface EnvControl {
  list(service: string, reveal: boolean): (EnvVarInfo & { value: string })[];
  /** `preview`, where given per name, says whether previews of the service get the variable */
  set(service: string, vars: Record<string, string>, by: string, preview?: Record<string, boolean>): void;
  replace(service: string, vars: Record<string, string>, by: string): void;
  unset(service: string, name: string, by: string): void;
  /** the variables a preview of the service gets (those not excluded from previews), decrypted */
  forPreviews(service: string): Record<string, string>;
  /** replaces a preview's variables with its parent's (no event: the preview's deploy says so) */
  copyToPreview(preview: string, vars: Record<string, string>): void;
}

function checkName(name: string): void {
  const parsed = envNameSchema.safeParse(name);
  if (!parsed.success) throw new CellhostError('ERR_VALIDATION', `variable name "${name}": ${parsed.error.issues[0]!.message}`, { details: { field: name } });
  if (name === 'PORT' || name.startsWith('CELLHOST_')) {
    throw new CellhostError('ERR_VALIDATION', `variable name "${name}" is reserved: the platform sets PORT and CELLHOST_* itself`, { details: { field: name } });
  }
}

function checkTotal(vars: Record<string, string>): void {
  const total = Object.entries(vars).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (total > ENV_TOTAL_LIMIT) {
    throw new CellhostError('ERR_VALIDATION', `the service's variables would take ${total} bytes: the limit is ${ENV_TOTAL_LIMIT} bytes (64 KB) in all`);
  }
}

export function createEnvControl(deps: EnvDeps): EnvControl {
  const iso = () => new Date(deps.clock.now()).toISOString();
  const current = (service: string) => deps.values.forService(service).vars;

  function changed(service: string, names: string[], by: string) {
    deps.values.forget(service);
    deps.onEvent(service, 'env_changed', { names, by });
    deps.onChanged(service);
  }

  return {
    list(service, reveal) {
      deps.assertService(service);
      const values = reveal ? current(service) : null;
      return deps.env.list(service).map((v) => ({ ...v, value: values ? values[v.name]! : '****' }));
    },
    set(service, vars, by, preview) {
      deps.assertService(service);
      for (const name of Object.keys(vars)) checkName(name);
      checkTotal({ ...current(service), ...vars });
      deps.env.set(service, vars, by, iso(), preview);
      changed(service, Object.keys(vars), by);
    },
    replace(service, vars, by) {
      deps.assertService(service);
      for (const name of Object.keys(vars)) checkName(name);
      checkTotal(vars);
      const before = Object.keys(current(service));
      deps.env.replace(service, vars, by, iso());
      changed(service, [...new Set([...before, ...Object.keys(vars)])].sort(), by);
    },
    unset(service, name, by) {
      deps.assertService(service);
      if (!deps.env.unset(service, [name])) {
        throw new CellhostError('ERR_ENV_NOT_FOUND', `service "${service}" has no variable "${name}"`);
      }
      changed(service, [name], by);
    },
    forPreviews(service) {
      const all = current(service);
      const out: Record<string, string> = {};
      for (const v of deps.env.list(service)) if (v.preview && Object.hasOwn(all, v.name)) out[v.name] = all[v.name]!;
      return out;
    },
    copyToPreview(preview, vars) {
      const now = current(preview);
      const same = Object.keys(vars).length === Object.keys(now).length && Object.entries(vars).every(([k, v]) => now[k] === v);
      if (same) return;
      deps.env.replace(preview, vars, 'preview', iso());
      deps.values.forget(preview);
      deps.onChanged(preview);
    },
  };
}
