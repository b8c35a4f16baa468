// Cron verbs for the API, the CLI and the console: validate a job, store it, tell the scheduler.
import { z } from '../core/zod.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError } from '../core/errors.ts';
import type { CronJob, CronJobSpec, CronRun, CronStore } from '../store/cron.ts';
import type { ServiceSecrets } from '../store/service-secrets.ts';
import type { CronScheduler } from './scheduler.ts';
import { parseSchedule } from './schedule.ts';

/** jobs per service at most */
export const JOBS_PER_SERVICE = 100;
/** a run's request body at most */
export const CRON_BODY_LIMIT = 64 * 1024;

export const CRON_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** a job's name is a DNS label, so it can name a Kubernetes CronJob on export too */
export const cronJobNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lowercase letters, digits and hyphens, 1–63 characters, not starting or ending with a hyphen');

const specFields = {
  schedule: z.string().min(1).max(200),
  timeZone: z.string().min(1).max(100),
  method: z.enum(CRON_METHODS),
  path: z
    .string()
    .max(2048)
    .regex(/^\/[\x21-\x7e]*$/, 'a path starting with / (and its query), without spaces: encode them'),
  body: z.string().max(CRON_BODY_LIMIT, 'a body is at most 64 KB').nullable(),
  contentType: z.string().max(200).regex(/^[\x20-\x7e]*$/, 'printable ASCII').nullable(),
  overlap: z.enum(['skip', 'allow']),
  enabled: z.boolean(),
};

export const cronJobCreateSchema = z.strictObject({
  name: cronJobNameSchema,
  schedule: specFields.schedule,
  timeZone: specFields.timeZone.default('UTC'),
  method: specFields.method.default('GET'),
  path: specFields.path.default('/'),
  body: specFields.body.optional(),
  contentType: specFields.contentType.optional(),
  overlap: specFields.overlap.default('skip'),
  enabled: specFields.enabled.default(true),
});
export type CronJobCreate = z.infer<typeof cronJobCreateSchema>;

export const cronJobPatchSchema = z.strictObject({
  schedule: specFields.schedule.optional(),
  timeZone: specFields.timeZone.optional(),
  method: specFields.method.optional(),
  path: specFields.path.optional(),
  body: specFields.body.optional(),
  contentType: specFields.contentType.optional(),
  overlap: specFields.overlap.optional(),
  enabled: specFields.enabled.optional(),
});
export type CronJobPatch = z.infer<typeof cronJobPatchSchema>;

export interface CronJobView extends CronJob {
  /** the next scheduled time (null while disabled) */
  nextRunAt: number | null;
  lastRun: CronRun | null;
  lastFailure: CronRun | null;
  /** runs under way now */
  running: number;
}

export interface CronControlDeps {
  store: CronStore;
  scheduler: CronScheduler;
  clock: Clock;
  secrets: ServiceSecrets;
  /** throws ERR_SERVICE_NOT_FOUND */
  assertService(name: string): void;
  /** the cron secret changed: instances get the new CELLHOST_CRON_SECRET (warm ones are replaced) */
  onSecretRotated(service: string): void;
}

export interface CronControl {
  list(service: string): CronJobView[];
  get(service: string, name: string): CronJobView;
  create(service: string, input: CronJobCreate): CronJobView;
  update(service: string, name: string, patch: CronJobPatch): CronJobView;
  remove(service: string, name: string): void;
  /** runs the job now and waits for its answer */
  run(service: string, name: string): Promise<CronRun>;
  runs(service: string, name: string, limit: number): CronRun[];
  /** the latest failure of every job that has one, newest first */
  lastFailures(): CronRun[];
  /** the secret cron runs carry (Authorization: Bearer) and the app sees as CELLHOST_CRON_SECRET */
  secret(service: string): string;
  rotateSecret(service: string): string;
}

function checkSpec(spec: CronJobSpec): void {
  parseSchedule(spec.schedule, spec.timeZone);
  if (spec.body !== null && spec.method === 'GET') {
    throw new CellhostError('ERR_VALIDATION', 'body: a GET run has no body (use POST, PUT or PATCH)', { details: { field: 'body' } });
  }
}

export function createCronControl(deps: CronControlDeps): CronControl {
  const { store, scheduler } = deps;
  const iso = () => new Date(deps.clock.now()).toISOString();

  const mustGet = (service: string, name: string): CronJob => {
    deps.assertService(service);
    const job = store.get(service, name);
    if (!job) throw new CellhostError('ERR_CRON_NOT_FOUND', `service "${service}" has no cron job "${name}"`);
    return job;
  };
  const view = (job: CronJob): CronJobView => ({
    ...job,
    nextRunAt: job.nextDueAt,
    lastRun: store.lastRun(job.service, job.name) ?? null,
    lastFailure: store.lastFailure(job.service, job.name) ?? null,
    running: scheduler.inFlight(job.service, job.name),
  });
  const nextDue = (spec: CronJobSpec) => (spec.enabled ? scheduler.nextAfter(spec, deps.clock.now()) : null);

  return {
    list(service) {
      deps.assertService(service);
      return store.list(service).map(view);
    },
    get: (service, name) => view(mustGet(service, name)),
    create(service, input) {
      deps.assertService(service);
      if (store.get(service, input.name)) throw new CellhostError('ERR_CRON_EXISTS', `service "${service}" has a cron job "${input.name}" already`);
      if (store.list(service).length >= JOBS_PER_SERVICE) throw new CellhostError('ERR_VALIDATION', `a service has at most ${JOBS_PER_SERVICE} cron jobs`);
      const spec: CronJobSpec = {
        schedule: input.schedule.trim(),
        timeZone: input.timeZone,
        method: input.method,
        path: input.path,
        body: input.body ?? null,
        contentType: input.body == null ? null : (input.contentType ?? null),
        overlap: input.overlap,
        enabled: input.enabled,
      };
      checkSpec(spec);
      const job = store.insert(service, input.name, spec, nextDue(spec), iso());
      scheduler.changed();
      return view(job);
    },
    update(service, name, patch) {
      const current = mustGet(service, name);
      const spec: CronJobSpec = {
        schedule: patch.schedule?.trim() ?? current.schedule,
        timeZone: patch.timeZone ?? current.timeZone,
        method: patch.method ?? current.method,
        path: patch.path ?? current.path,
        body: patch.body !== undefined ? patch.body : current.body,
        contentType: patch.contentType !== undefined ? patch.contentType : current.contentType,
        overlap: patch.overlap ?? current.overlap,
        enabled: patch.enabled ?? current.enabled,
      };
      checkSpec(spec);
      // a new schedule, or a job enabled again, starts from now: times that passed are not owed
      const retime = spec.schedule !== current.schedule || spec.timeZone !== current.timeZone || spec.enabled !== current.enabled;
      const job = store.update(service, name, spec, retime ? nextDue(spec) : current.nextDueAt, iso());
      scheduler.changed();
      return view(job);
    },
    remove(service, name) {
      mustGet(service, name);
      store.remove(service, name);
      scheduler.changed();
    },
    run: (service, name) => scheduler.runNow(mustGet(service, name)),
    runs(service, name, limit) {
      mustGet(service, name);
      return store.runs(service, name, limit);
    },
    lastFailures: () => store.lastFailures(),
    secret(service) {
      deps.assertService(service);
      return deps.secrets.ensure(service, 'cron', iso());
    },
    rotateSecret(service) {
      deps.assertService(service);
      const value = deps.secrets.rotate(service, 'cron', iso());
      deps.onSecretRotated(service);
      return value;
    },
  };
}
