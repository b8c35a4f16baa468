// The app manifest: `cellhost.toml` or `cellhost.json` at the root of a service's source. It
// gives the service's settings from the repository (runtime, commands, port, memory, scaling,
// health path, plan), names the variables that must be set, and lists domains and cron jobs.
// Every key is known: an unknown key or a value of the wrong type is reported with its line.
import { Cron } from 'croner';
import type { z } from '../core/zod.ts';
import { domainSchema } from '../control/service-settings.ts';
import { CellhostError } from '../core/errors.ts';
import { envNameSchema, MEMORY_MAX_MB, MEMORY_MIN_MB, RUNTIMES, serviceNameSchema } from '../core/names.ts';
import type { ServiceSettings } from '../store/services.ts';
import { a, readJson, readToml, type KeyPath, type LocatedDoc, type ValueKind } from './located.ts';
import { formatDurationS, parseDurationS, parseMemoryMb } from './units.ts';

export const MANIFEST_FILES = ['cellhost.toml', 'cellhost.json'] as const;
export type ManifestFile = (typeof MANIFEST_FILES)[number];

/** a manifest is a few lines; a bigger file is refused rather than parsed */
export const MANIFEST_MAX_BYTES = 64 * 1024;

/** the service settings a manifest can give, by their API names */
export const MANIFEST_SETTINGS = [
  'runtime',
  'buildCommand',
  'startCommand',
  'port',
  'memoryMb',
  'plan',
  'minInstances',
  'maxInstances',
  'concurrency',
  'idleTimeoutS',
  'requestTimeoutS',
  'healthPath',
] as const satisfies readonly (keyof ServiceSettings)[];
export type ManifestSetting = (typeof MANIFEST_SETTINGS)[number];

/** the key each setting is written as in a manifest */
export const MANIFEST_KEYS: Record<ManifestSetting, string> = {
  runtime: 'runtime',
  buildCommand: 'build',
  startCommand: 'start',
  port: 'port',
  memoryMb: 'memory',
  plan: 'plan',
  minInstances: 'scaling.min',
  maxInstances: 'scaling.max',
  concurrency: 'scaling.concurrency',
  idleTimeoutS: 'scaling.idle_timeout',
  requestTimeoutS: 'scaling.request_timeout',
  healthPath: 'health_path',
};

export const isManifestSetting = (name: string): name is ManifestSetting => (MANIFEST_SETTINGS as readonly string[]).includes(name);
export type ManifestSettings = Partial<Pick<ServiceSettings, ManifestSetting>>;

export interface CronJob {
  name: string | null;
  schedule: string;
  path: string;
  method: string;
  body: string | null;
  timezone: string;
  overlap: 'skip' | 'allow';
  line: number;
}

export interface Manifest {
  file: ManifestFile;
  /** the service this source is for: `cellhost deploy` deploys to it when no --name is given */
  name: string | null;
  settings: ManifestSettings;
  /** for each setting given: the key it was written as, and its line */
  origins: Partial<Record<ManifestSetting, { key: string; line: number }>>;
  /** variables the service must have before a deployment may start */
  requiredEnv: { names: string[]; line: number } | null;
  domains: { names: string[]; line: number } | null;
  cron: { jobs: CronJob[]; line: number } | null;
}

export interface ManifestProblem {
  /** 0 when the line is not known */
  line: number;
  /** the key as written (`scaling.min`, `cron[1].schedule`), null for the file as a whole */
  key: string | null;
  message: string;
}

export type ParseOutcome = { ok: true; manifest: Manifest } | { ok: false; problems: ManifestProblem[] };

const CRON_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const MAX_DOMAINS = 50;
const MAX_CRON_JOBS = 50;

/** `scaling.min`, `cron[1].schedule` */
export function keyName(path: KeyPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** one problem as a line of text: `cellhost.toml line 7: scaling.min: ...` */
export function describeProblem(file: string, p: ManifestProblem): string {
  return `${file}${p.line ? ` line ${p.line}` : ''}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}

/** the deployment's error for an invalid manifest: every problem named, in file order */
export function manifestError(file: string, problems: ManifestProblem[]): CellhostError {
  const shown = problems.slice(0, 10).map((p) => describeProblem(file, p));
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  return new CellhostError('ERR_MANIFEST_INVALID', shown.join('; ') + more, { details: { file, problems } });
}

function shown(v: unknown): string {
  const text = typeof v === 'string' ? JSON.stringify(v) : v instanceof Date ? v.toISOString() : JSON.stringify(v);
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}

type Checked<T> = { value: T } | { error: string };

/** what a check says about a value of the wrong type */
function wrongType(expected: string, v: unknown, kind: ValueKind | undefined): { error: string } {
  const got = kind ?? (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'object' ? 'table' : (typeof v as ValueKind));
  if (got === 'null') return { error: `expected ${expected}, got null` };
  const value = got === 'array' || got === 'table' || got === 'object' ? '' : ` (${shown(v)})`;
  return { error: `expected ${expected}, got ${a(got)}${value}` };
}

function wholeNumber(min: number, max: number, what = 'a whole number') {
  return (v: unknown, kind: ValueKind | undefined): Checked<number> => {
    const isInt = typeof v === 'number' && Number.isInteger(v) && kind !== 'float';
    if (!isInt) return wrongType(`${what} from ${min} to ${max}`, v, kind);
    if (v < min || v > max) return { error: `${v} is out of range: ${min} to ${max}` };
    return { value: v };
  };
}

function text(opts: { max: number; what?: string; pattern?: RegExp; hint?: string; blank?: string }) {
  return (v: unknown, kind: ValueKind | undefined): Checked<string> => {
    if (typeof v !== 'string') return wrongType(opts.what ?? 'a string', v, kind);
    if (!v.trim() && opts.blank) return { error: opts.blank };
    if (Buffer.byteLength(v) > opts.max) return { error: `longer than ${opts.max} bytes` };
    if (opts.pattern && !opts.pattern.test(v)) return { error: `${shown(v)} is not ${opts.hint}` };
    return { value: v };
  };
}

function oneOf<T extends string>(values: readonly T[]) {
  const list = values.map((x) => `"${x}"`).join(', ');
  return (v: unknown, kind: ValueKind | undefined): Checked<T> => {
    if (typeof v !== 'string') return wrongType(`one of ${list}`, v, kind);
    if (!values.includes(v as T)) return { error: `${shown(v)} is not one of ${list}` };
    return { value: v as T };
  };
}

function memory(v: unknown, kind: ValueKind | undefined): Checked<number> {
  const range = `${MEMORY_MIN_MB} to ${MEMORY_MAX_MB} MB`;
  const mb = typeof v === 'number' && kind !== 'float' && Number.isInteger(v) ? v : typeof v === 'string' ? parseMemoryMb(v) : null;
  if (mb === null) {
    if (typeof v === 'string') return { error: `${shown(v)} is not a size: write MB as a whole number (512) or a string such as "512MB" or "2GB"` };
    return wrongType(`a size in MB (512, or "512MB", "2GB")`, v, kind);
  }
  if (mb < MEMORY_MIN_MB || mb > MEMORY_MAX_MB) return { error: `${shown(v)} is out of range: ${range}` };
  return { value: mb };
}

function duration(minS: number, maxS: number) {
  const range = `${formatDurationS(minS)} to ${formatDurationS(maxS)}`;
  return (v: unknown, kind: ValueKind | undefined): Checked<number> => {
    const s = typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' ? parseDurationS(v) : null;
    if (s === null) {
      if (typeof v === 'string') return { error: `${shown(v)} is not a duration: write seconds (300) or a string such as "90s", "5m" or "1h30m"` };
      return wrongType('a duration (seconds, or "90s", "5m", "1h30m")', v, kind);
    }
    if (s < minS || s > maxS) return { error: `${shown(v)} is out of range: ${range}` };
    return { value: s };
  };
}

function zodText(schema: z.ZodType<string>, what: string) {
  return (v: unknown, kind: ValueKind | undefined): Checked<string> => {
    if (typeof v !== 'string') return wrongType(what, v, kind);
    const r = schema.safeParse(v);
    if (!r.success) return { error: `${shown(v)}: ${r.error.issues[0]!.message}` };
    return { value: r.data };
  };
}

const serviceName = zodText(serviceNameSchema, 'a service name');
const envName = zodText(envNameSchema, 'a variable name');
const domainName = zodText(domainSchema, 'a domain name');

function timezone(v: unknown, kind: ValueKind | undefined): Checked<string> {
  if (typeof v !== 'string') return wrongType('a time zone such as "UTC" or "Europe/Paris"', v, kind);
  try {
    new Intl.DateTimeFormat('en', { timeZone: v });
  } catch {
    return { error: `${shown(v)} is not a time zone: write an IANA name such as "UTC" or "Europe/Paris"` };
  }
  return { value: v };
}

/** a table's keys: each key's check, and where its value goes */
type TableSpec = Record<string, (v: unknown, kind: ValueKind | undefined, path: KeyPath) => void>;

/** the closest known key, for "did you mean" */
function closest(word: string, known: string[]): string | null {
  const distance = (x: string, y: string) => {
    const row = Array.from({ length: y.length + 1 }, (_, i) => i);
    for (let i = 1; i <= x.length; i++) {
      let prev = row[0]!;
      row[0] = i;
      for (let j = 1; j <= y.length; j++) {
        const cur = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (x[i - 1] === y[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return row[y.length]!;
  };
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

/** Reads a manifest's text. The file name decides the format. */
export function parseManifest(file: ManifestFile, source: string): ParseOutcome {
  const textNoBom = source.replace(/^\uFEFF/, '');
  const read = file === 'cellhost.json' ? readJson(textNoBom) : readToml(textNoBom);
  if (!read.ok) return { ok: false, problems: [{ line: read.line, key: null, message: `not valid ${file === 'cellhost.json' ? 'JSON' : 'TOML'} (column ${read.column}): ${read.message}` }] };
  return validate(file, read.doc);
}

function validate(file: ManifestFile, doc: LocatedDoc): ParseOutcome {
  const problems: ManifestProblem[] = [];
  const manifest: Manifest = { file, name: null, settings: {}, origins: {}, requiredEnv: null, domains: null, cron: null };
  const tableWord = file === 'cellhost.json' ? 'an object' : 'a table';

  const problem = (path: KeyPath, message: string) => problems.push({ line: doc.line(path), key: path.length ? keyName(path) : null, message });

  /** runs a check on the value at path; reports its error, returns its value */
  function check<T>(path: KeyPath, v: unknown, fn: (v: unknown, kind: ValueKind | undefined) => Checked<T>): T | undefined {
    const r = fn(v, doc.kind(path));
    if ('error' in r) {
      problem(path, r.error);
      return undefined;
    }
    return r.value;
  }

  function setting<K extends ManifestSetting>(name: K, fn: (v: unknown, kind: ValueKind | undefined) => Checked<NonNullable<ServiceSettings[K]>>) {
    return (v: unknown, _kind: ValueKind | undefined, path: KeyPath) => {
      const value = check(path, v, fn);
      if (value === undefined) return;
      (manifest.settings as Record<string, unknown>)[name] = value;
      manifest.origins[name] = { key: keyName(path), line: doc.line(path) };
    };
  }

  function isTable(v: unknown): v is Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
  }

  function table(path: KeyPath, v: unknown, spec: TableSpec, what: string): boolean {
    if (!isTable(v)) {
      problem(path, wrongType(tableWord, v, doc.kind(path)).error);
      return false;
    }
    const known = Object.keys(spec);
    for (const [key, value] of Object.entries(v)) {
      const at = [...path, key];
      const visit = spec[key];
      if (visit) {
        visit(value, doc.kind(at), at);
        continue;
      }
      const guess = closest(key, known);
      // in TOML every key after a [table] header belongs to that table
      const misplaced = path.length > 0 && file === 'cellhost.toml' && key in top ? `; a key written after the [${keyName(path)}] header belongs to it: put top-level keys before the first [table]` : '';
      problem(at, `unknown key${guess ? ` (did you mean "${guess}"?)` : ''}: ${what} takes ${known.join(', ')}${misplaced}`);
    }
    return true;
  }

  function list<T>(path: KeyPath, v: unknown, max: number, item: (v: unknown, kind: ValueKind | undefined) => Checked<T>, what: string): T[] | undefined {
    if (!Array.isArray(v)) {
      problem(path, wrongType(`an array of ${what}`, v, doc.kind(path)).error);
      return undefined;
    }
    if (v.length > max) {
      problem(path, `at most ${max} ${what}, not ${v.length}`);
      return undefined;
    }
    const out: T[] = [];
    let ok = true;
    v.forEach((x, i) => {
      const value = check([...path, i], x, item);
      if (value === undefined) ok = false;
      else out.push(value);
    });
    return ok ? out : undefined;
  }

  function duplicates(path: KeyPath, values: string[], what: string): boolean {
    const seen = new Set<string>();
    for (const [i, x] of values.entries()) {
      if (seen.has(x)) {
        problem([...path, i], `${what} "${x}" is listed twice`);
        return true;
      }
      seen.add(x);
    }
    return false;
  }

  const scaling: TableSpec = {
    min: setting('minInstances', wholeNumber(0, 100, 'a number of instances')),
    max: setting('maxInstances', wholeNumber(1, 100, 'a number of instances')),
    concurrency: setting('concurrency', wholeNumber(1, 10_000, 'a number of requests')),
    idle_timeout: setting('idleTimeoutS', duration(0.1, 7 * 86_400)),
    request_timeout: setting('requestTimeoutS', duration(0.1, 3600)),
  };

  const env: TableSpec = {
    required: (v, _kind, path) => {
      const names = list(path, v, 1000, envName, 'variable names');
      if (names && !duplicates(path, names, 'variable')) manifest.requiredEnv = { names, line: doc.line(path) };
    },
  };

  function cronJob(path: KeyPath, v: unknown): CronJob | undefined {
    const job: Partial<CronJob> = { line: doc.line(path), name: null, method: 'GET', body: null, timezone: 'UTC', overlap: 'skip' };
    const fields: TableSpec = {
      name: (x, _k, p) => void (job.name = check(p, x, zodText(serviceNameSchema, 'a name for the job')) ?? null),
      schedule: (x, _k, p) => void (job.schedule = check(p, x, text({ max: 256, what: 'a cron schedule such as "0 3 * * *"', blank: 'an empty schedule' }))),
      path: (x, _k, p) => void (job.path = check(p, x, text({ max: 2048, pattern: /^\/[^\s]*$/, hint: 'a path starting with /' }))),
      method: (x, _k, p) => void (job.method = check(p, x, oneOf(CRON_METHODS))),
      body: (x, _k, p) => void (job.body = check(p, x, text({ max: 64 * 1024 })) ?? null),
      timezone: (x, _k, p) => void (job.timezone = check(p, x, timezone)),
      overlap: (x, _k, p) => void (job.overlap = check(p, x, oneOf(['skip', 'allow'] as const))),
    };
    const before = problems.length;
    if (!table(path, v, fields, 'a cron job')) return undefined;
    for (const required of ['schedule', 'path'] as const) {
      if (job[required] === undefined && !(required in (v as object))) problem(path, `a cron job needs ${required}`);
    }
    const parts = job.schedule?.trim().split(/\s+/).length ?? 0;
    if (job.schedule !== undefined && !job.schedule.trim().startsWith('@') && parts !== 5 && parts !== 6) {
      problem([...path, 'schedule'], `${shown(job.schedule)} is not a cron schedule: 5 fields (minute hour day month weekday), or 6 with seconds first`);
    } else if (job.schedule !== undefined) {
      try {
        new Cron(job.schedule, { paused: true, timezone: job.timezone ?? 'UTC' }).stop();
      } catch (err) {
        problem([...path, 'schedule'], `${shown(job.schedule)} is not a cron schedule: ${String((err as Error).message).replace(/^CronPattern:\s*/, '')}`);
      }
    }
    return problems.length === before ? (job as CronJob) : undefined;
  }

  const top: TableSpec = {
    name: (v, _kind, path) => void (manifest.name = check(path, v, serviceName) ?? null),
    runtime: setting('runtime', oneOf(RUNTIMES)),
    build: setting('buildCommand', text({ max: 64 * 1024, what: 'a command', blank: 'an empty build command: leave the key out for the runtime\'s default' })),
    start: setting('startCommand', text({ max: 16 * 1024, what: 'a command', blank: 'an empty start command: leave the key out for the runtime\'s default' })),
    port: setting('port', wholeNumber(1, 65535, 'a port number')),
    memory: setting('memoryMb', memory),
    plan: setting('plan', oneOf(['hobby', 'pro'] as const)),
    health_path: setting('healthPath', text({ max: 1024, pattern: /^\/[^\s]*$/, hint: 'a path starting with /' })),
    scaling: (v, _kind, path) => void table(path, v, scaling, '[scaling]'),
    env: (v, _kind, path) => void table(path, v, env, '[env]'),
    domains: (v, _kind, path) => {
      const names = list(path, v, MAX_DOMAINS, domainName, 'domain names');
      if (names && !duplicates(path, names, 'domain')) manifest.domains = { names, line: doc.line(path) };
    },
    cron: (v, kind, path) => {
      if (!Array.isArray(v)) {
        problem(path, wrongType(file === 'cellhost.json' ? 'an array of objects' : 'an array of tables ([[cron]])', v, kind).error);
        return;
      }
      if (v.length > MAX_CRON_JOBS) return void problem(path, `at most ${MAX_CRON_JOBS} cron jobs, not ${v.length}`);
      const jobs = v.map((job, i) => cronJob([...path, i], job));
      if (jobs.every((j): j is CronJob => j !== undefined)) {
        const named = jobs.map((j) => j.name).filter((n): n is string => n !== null);
        const twice = named.find((n, i) => named.indexOf(n) !== i);
        if (twice) problem([...path, jobs.map((j) => j.name).lastIndexOf(twice)], `cron job name "${twice}" is used twice`);
        else manifest.cron = { jobs, line: doc.line(path) };
      }
    },
  };

  table([], doc.value, top, 'the manifest');

  const { minInstances: min, maxInstances: max } = manifest.settings;
  if (min !== undefined && max !== undefined && min > max) {
    problem(['scaling', 'min'], `min (${min}) is more than max (${max})`);
  }
  if (problems.length) return { ok: false, problems: problems.sort((x, y) => x.line - y.line) };
  return { ok: true, manifest };
}

/** what a deployment's stored manifest gave (written by the deploy pipeline as a Manifest), or null */
export function parsedManifest(dep: { manifest: { parsed: unknown } | null } | undefined | null): Manifest | null {
  return (dep?.manifest?.parsed as Manifest | null | undefined) ?? null;
}
