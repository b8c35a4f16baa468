// Service > Settings: the form's fields as the PATCH API takes them, checked with the same
// schema (and messages) as the API, each error kept beside its field. Durations are written
// as 5m, 30s or 1h30m (or plain seconds), as in the CLI.
import { z } from '../runtime/core/zod.ts';
import { zodToError } from '../runtime/api/http-errors.ts';
import { servicePatchSchema, type ServicePatch } from '../runtime/control/service-settings.ts';
import { formatDurationSeconds, parseDurationSeconds } from '../runtime/core/time-range.ts';
import type { Service } from '../runtime/store/services.ts';
import type { FieldErrors } from './components.tsx';

export const SETTINGS_FIELDS = [
  'memoryMb',
  'port',
  'minInstances',
  'maxInstances',
  'concurrency',
  'idleTimeoutS',
  'requestTimeoutS',
  'buildCommand',
  'startCommand',
  'healthPath',
  'rootDir',
  'plan',
] as const;
export type SettingsValues = Record<(typeof SETTINGS_FIELDS)[number], string>;

const WHOLE = ['memoryMb', 'port', 'minInstances', 'maxInstances', 'concurrency'] as const;
const DURATIONS = ['idleTimeoutS', 'requestTimeoutS'] as const;
/** blank means the runtime's default (or none) */
const OPTIONAL_TEXT = ['buildCommand', 'startCommand', 'healthPath', 'rootDir'] as const;

export function settingsValues(s: Service): SettingsValues {
  return {
    memoryMb: String(s.memoryMb),
    port: String(s.port),
    minInstances: String(s.minInstances),
    maxInstances: String(s.maxInstances),
    concurrency: String(s.concurrency),
    idleTimeoutS: formatDurationSeconds(s.idleTimeoutS),
    requestTimeoutS: formatDurationSeconds(s.requestTimeoutS),
    buildCommand: s.buildCommand ?? '',
    startCommand: s.startCommand ?? '',
    healthPath: s.healthPath ?? '',
    rootDir: s.rootDir ?? '',
    plan: s.plan,
  };
}

export function parseSettingsForm(form: Record<string, unknown>, current: Service): { values: SettingsValues; errors: FieldErrors; patch?: ServicePatch } {
  const text = (k: string) => (typeof form[k] === 'string' ? (form[k] as string).replace(/\r\n?/g, '\n') : '');
  const values = Object.fromEntries(SETTINGS_FIELDS.map((k) => [k, text(k)])) as SettingsValues;
  const errors: FieldErrors = {};
  const patch: Record<string, unknown> = {};
  for (const f of WHOLE) {
    const raw = values[f].trim();
    if (/^\d+$/.test(raw)) patch[f] = Number(raw);
    else errors[f] = `${f}: a whole number`;
  }
  for (const f of DURATIONS) {
    const seconds = parseDurationSeconds(values[f]);
    if (seconds === null) errors[f] = `${f}: a duration such as 30s, 5m or 1h30m (or seconds)`;
    else patch[f] = seconds;
  }
  for (const f of OPTIONAL_TEXT) patch[f] = values[f].trim() ? (f === 'buildCommand' ? values[f] : values[f].trim()) : null;
  patch.plan = values.plan;
  const parsed = servicePatchSchema.safeParse(patch);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const coded = zodToError(new z.ZodError([issue]));
      const field = String(coded.details?.field ?? issue.path[0] ?? 'form');
      errors[field] ??= coded.message;
    }
  }
  const min = Number(patch.minInstances);
  const max = Number(patch.maxInstances);
  if (!errors.minInstances && !errors.maxInstances && min > max) errors.minInstances = 'minInstances cannot exceed maxInstances';
  if (Object.keys(errors).length || !parsed.success) return { values, errors };
  // only what changed: the service's event log names the fields a save touched
  const data = parsed.data as Record<string, unknown>;
  const changed = Object.fromEntries(SETTINGS_FIELDS.filter((k) => JSON.stringify(data[k]) !== JSON.stringify(current[k])).map((k) => [k, data[k]])) as ServicePatch;
  return { values, errors, patch: changed };
}
