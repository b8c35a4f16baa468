// The service body as the API, CLI and UI send it, validated once at the edge.
import { z } from '../core/zod.ts';
import { branchNameSchema, MEMORY_MAX_MB, MEMORY_MIN_MB, RUNTIMES, serviceNameSchema } from '../core/names.ts';
import type { ServiceSettings, SettingName } from '../store/services.ts';

export const domainSchema = z
  .string()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'a DNS name such as app.example.com');

const settingsShape = {
  runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(', ')}` }),
  buildCommand: z.string().max(64 * 1024).nullable(),
  startCommand: z.string().max(16 * 1024).nullable(),
  port: z.number().int().min(1).max(65535),
  memoryMb: z.number().int().min(MEMORY_MIN_MB).max(MEMORY_MAX_MB),
  plan: z.enum(['hobby', 'pro']),
  minInstances: z.number().int().min(0).max(100),
  maxInstances: z.number().int().min(1).max(100),
  concurrency: z.number().int().min(1).max(10_000),
  idleTimeoutS: z.number().min(0.1).max(7 * 24 * 3600),
  requestTimeoutS: z.number().min(0.1).max(3600),
  healthPath: z.string().regex(/^\/[^\s]*$/, 'a path starting with /').max(1024).nullable(),
  rootDir: z
    .string()
    .max(1024)
    .refine((p) => !p.split('/').includes('..') && !p.startsWith('/'), 'a relative path inside the source')
    .nullable(),
  domains: z.array(domainSchema).max(50),
  httpsRedirect: z.boolean().openapi({ description: 'plain HTTP to a host of the service that has a certificate is answered 301 (308 for other methods than GET and HEAD) to its https:// URL; default true' }),
  hsts: z.boolean().openapi({ description: 'HTTPS answers carry Strict-Transport-Security: max-age=31536000; default false' }),
  deployBranch: branchNameSchema,
  previews: z.boolean(),
  prewarm: z.boolean(),
};

export const SERVICE_DEFAULTS: Omit<ServiceSettings, 'runtime'> = {
  buildCommand: null,
  startCommand: null,
  port: 8080,
  memoryMb: 1024,
  plan: 'hobby',
  minInstances: 0,
  maxInstances: 10,
  concurrency: 100,
  idleTimeoutS: 300,
  requestTimeoutS: 900,
  healthPath: null,
  rootDir: null,
  domains: [],
  httpsRedirect: true,
  hsts: false,
  deployBranch: 'main',
  previews: false,
  prewarm: true,
};

// null, like leaving a setting out, means "not set here": the live deployment's app manifest
// decides it, else its default. A setting given a value is explicit and wins over the manifest.
const optional = Object.fromEntries(Object.entries(settingsShape).map(([k, v]) => [k, v.nullable().optional()])) as {
  [K in keyof typeof settingsShape]: z.ZodOptional<z.ZodNullable<(typeof settingsShape)[K]>>;
};

export const serviceCreateSchema = z
  .object({ name: serviceNameSchema, ...optional, runtime: settingsShape.runtime })
  .strict()
  .refine((s) => (s.minInstances ?? 0) <= (s.maxInstances ?? SERVICE_DEFAULTS.maxInstances), { message: 'minInstances cannot exceed maxInstances', path: ['minInstances'] });

export const servicePatchSchema = z.object(optional).strict();

/** every setting, as a stored service holds them */
export const serviceSettingsSchema = z.object(settingsShape);

export type ServiceCreate = z.infer<typeof serviceCreateSchema>;
export type ServicePatch = z.infer<typeof servicePatchSchema>;

/** blank commands mean "use the runtime's default" */
function tidy(s: ServiceSettings): ServiceSettings {
  return {
    ...s,
    buildCommand: s.buildCommand?.trim() ? s.buildCommand : null,
    startCommand: s.startCommand?.trim() ? s.startCommand : null,
    rootDir: s.rootDir?.replace(/^\.\/|\/$/g, '') || null,
  };
}

const isGiven = (v: unknown) => v !== undefined && v !== null && !(typeof v === 'string' && !v.trim());

/** the settings a body gives a value to: they become explicit (a blank command is not a value) */
export function givenSettings(body: ServicePatch): SettingName[] {
  return (Object.keys(settingsShape) as SettingName[]).filter((k) => isGiven(body[k]));
}

/** the settings a change sends as null (or blank): they stop being explicit */
export function clearedSettings(patch: ServicePatch): SettingName[] {
  return (Object.keys(settingsShape) as SettingName[]).filter((k) => k in patch && patch[k] !== undefined && !isGiven(patch[k]));
}

export function settingsForCreate(body: ServiceCreate): ServiceSettings {
  const { name: _name, ...rest } = body;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined && v !== null));
  return tidy({ ...SERVICE_DEFAULTS, ...defined, runtime: body.runtime } as ServiceSettings);
}

/** the current settings with the values a change gives; settings it clears are left to the caller */
export function settingsForPatch(current: ServiceSettings, patch: ServicePatch): ServiceSettings {
  const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined && v !== null));
  return tidy({ ...current, ...defined } as ServiceSettings);
}
