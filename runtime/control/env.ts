// Env verbs: validate, store encrypted, apply without a redeploy (the pool replaces warm
// instances gracefully), and say so in the service's log with names only.
import { z } from '../core/zod.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import { envNameSchema } from '../core/names.ts';
import { createMasker, type Masker } from '../logs/masker.ts';
import type { EnvStore, EnvVarInfo } from '../store/env.ts';

export const ENV_TOTAL_LIMIT = 64 * 1024;

export const envValueSchema = z.string().max(ENV_TOTAL_LIMIT, 'a value is at most 64 KB');
export const envVarsSchema = z.record(z.string(), envValueSchema);

export interface EnvDeps {
  env: EnvStore;
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
  /** decrypted variables and their version, for instances and builds */
  forService(service: string): { vars: Record<string, string>; version: string };
  /** the variables a preview of the service gets (those not excluded from previews), decrypted */
  forPreviews(service: string): Record<string, string>;
  /** replaces a preview's variables with its parent's (no event: the preview's deploy says so) */
  copyToPreview(preview: string, vars: Record<string, string>): void;
  masker(service: string): Masker;
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
  const cache = new Map<string, { version: number; vars: Record<string, string>; masker: Masker }>();
  const iso = () => new Date(deps.clock.now()).toISOString();

  // this module is the only writer, so the cache is dropped on every change it makes
  function load(service: string) {
    const hit = cache.get(service);
    if (hit) return hit;
    const version = deps.env.version(service);
    const vars = deps.env.values(service);
    const entry = { version, vars, masker: createMasker(Object.values(vars)) };
    cache.set(service, entry);
    return entry;
  }

  function changed(service: string, names: string[], by: string) {
    cache.delete(service);
    deps.onEvent(service, 'env_changed', { names, by });
    deps.onChanged(service);
  }

  return {
    list(service, reveal) {
      deps.assertService(service);
      const values = reveal ? load(service).vars : null;
      return deps.env.list(service).map((v) => ({ ...v, value: values ? values[v.name]! : '****' }));
    },
    set(service, vars, by, preview) {
      deps.assertService(service);
      for (const name of Object.keys(vars)) checkName(name);
      checkTotal({ ...load(service).vars, ...vars });
      deps.env.set(service, vars, by, iso(), preview);
      changed(service, Object.keys(vars), by);
    },
    replace(service, vars, by) {
      deps.assertService(service);
      for (const name of Object.keys(vars)) checkName(name);
      checkTotal(vars);
      const before = Object.keys(load(service).vars);
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
    forService(service) {
      const { vars, version } = load(service);
      return { vars, version: String(version) };
    },
    forPreviews(service) {
      const all = load(service).vars;
      const out: Record<string, string> = {};
      for (const v of deps.env.list(service)) if (v.preview && Object.hasOwn(all, v.name)) out[v.name] = all[v.name]!;
      return out;
    },
    copyToPreview(preview, vars) {
      const current = load(preview);
      const same = Object.keys(vars).length === Object.keys(current.vars).length && Object.entries(vars).every(([k, v]) => current.vars[k] === v);
      if (same) return;
      deps.env.replace(preview, vars, 'preview', iso());
      cache.delete(preview);
      deps.onChanged(preview);
    },
    masker: (service) => load(service).masker,
  };
}
