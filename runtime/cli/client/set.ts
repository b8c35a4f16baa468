// `cellhost set NAME key=value ...`: a service's settings as the PATCH API takes them, in the
// short words of Heroku's and Fly's CLIs, durations as 5m/30s; prints them all afterwards with
// the CPU the memory buys.
import { parseArgs } from 'node:util';
import { createClient, loadClientSettings } from './client.ts';
import { formatDurationSeconds as formatSeconds, parseDurationSeconds } from '../../core/time-range.ts';
import { printJson, UsageError, type CliIo } from '../io.ts';

export const SET_HELP = `cellhost set NAME [memory=MB] [min=N] [max=N] [concurrency=N] [idle=DURATION] [timeout=DURATION]
             [port=PORT] [build=CMD] [start=CMD] [health=PATH] [root=DIR] [plan=hobby|pro] [runtime=RUNTIME]
             [domains=HOST,HOST] [redirect=on|off] [hsts=on|off] [prewarm=true|false] [--json]
  Changes a service's settings; without any, prints them. memory is the hard memory limit and buys
  CPU (1769 MB is one core); min and max are instances (min 0 scales to zero), concurrency the
  requests per instance, idle the time an instance stays warm unused, timeout the longest request.
  prewarm=false: once scaled to zero, keep no instance started and frozen ahead of the next request
  (for apps whose start has side effects); true (the default) lets the platform keep one.
  Durations: 30s, 5m, 1h30m, or seconds. An empty build, start, health or root means the default.
  A change of memory, port, start, health or runtime replaces running instances after their
  requests finish; scaling applies at once; build, root and plan apply to the next deploy.
  redirect: plain HTTP to a host with a certificate gets a redirect to HTTPS (on by default); hsts:
  HTTPS answers carry Strict-Transport-Security (off by default).`;

interface ServiceView {
  name: string;
  runtime: string;
  buildCommand: string | null;
  startCommand: string | null;
  port: number;
  memoryMb: number;
  plan: string;
  minInstances: number;
  maxInstances: number;
  concurrency: number;
  idleTimeoutS: number;
  requestTimeoutS: number;
  healthPath: string | null;
  rootDir: string | null;
  domains: string[];
  httpsRedirect: boolean;
  hsts: boolean;
  prewarm: boolean;
  url: string;
  cpu: { percentOfCore: number; cores: number };
}

type Field = keyof Omit<ServiceView, 'name' | 'url' | 'cpu'>;

function wholeNumber(key: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${key}=${text}: a whole number`);
  return Number(text);
}

/** "512", "512mb", "1gb" → MB */
function memoryMb(key: string, text: string): number {
  const m = /^(\d+)\s*(m|mb|g|gb)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${key}=${text}: a size in MB such as 512 (or 1GB)`);
  return Number(m[1]) * (/^g/i.test(m[2] ?? '') ? 1024 : 1);
}

/** a duration setting: "15m", "1h30m", "90s", or plain seconds → seconds */
function durationSeconds(key: string, text: string): number {
  const seconds = parseDurationSeconds(text);
  if (seconds === null) throw new UsageError(`${key}=${text}: a duration such as 30s, 5m or 1h30m`);
  return seconds;
}

const orNull = (text: string) => (text.trim() === '' ? null : text);

/** a yes-or-no setting, said in the words its help uses (on|off, true|false) */
function yesNo(yes: string, no: string) {
  return (key: string, text: string): boolean => {
    const t = text.trim().toLowerCase();
    if (['on', 'true', '1', 'yes'].includes(t)) return true;
    if (['off', 'false', '0', 'no'].includes(t)) return false;
    throw new UsageError(`${key}=${text}: ${yes} or ${no}`);
  };
}
const onOff = yesNo('on', 'off');
const trueFalse = yesNo('true', 'false');

/** the words `set` takes, the field each sets, and how its text becomes the API's value */
const SETTINGS: Record<string, { field: Field; parse(key: string, text: string): unknown; show(s: ServiceView): string }> = {
  memory: { field: 'memoryMb', parse: memoryMb, show: (s) => `${s.memoryMb} MB (CPU cap ${s.cpu.percentOfCore} % of a core, ${s.cpu.cores} core${s.cpu.cores > 1 ? 's' : ''})` },
  min: { field: 'minInstances', parse: wholeNumber, show: (s) => String(s.minInstances) },
  max: { field: 'maxInstances', parse: wholeNumber, show: (s) => String(s.maxInstances) },
  concurrency: { field: 'concurrency', parse: wholeNumber, show: (s) => String(s.concurrency) },
  idle: { field: 'idleTimeoutS', parse: durationSeconds, show: (s) => formatSeconds(s.idleTimeoutS) },
  timeout: { field: 'requestTimeoutS', parse: durationSeconds, show: (s) => formatSeconds(s.requestTimeoutS) },
  port: { field: 'port', parse: wholeNumber, show: (s) => String(s.port) },
  build: { field: 'buildCommand', parse: (_k, t) => orNull(t), show: (s) => s.buildCommand ?? "(the runtime's default)" },
  start: { field: 'startCommand', parse: (_k, t) => orNull(t), show: (s) => s.startCommand ?? "(the runtime's default)" },
  health: { field: 'healthPath', parse: (_k, t) => orNull(t), show: (s) => s.healthPath ?? '(the port accepting a connection)' },
  root: { field: 'rootDir', parse: (_k, t) => orNull(t), show: (s) => s.rootDir ?? '(the top of the source)' },
  plan: { field: 'plan', parse: (_k, t) => t.trim(), show: (s) => s.plan },
  runtime: { field: 'runtime', parse: (_k, t) => t.trim(), show: (s) => s.runtime },
  domains: {
    field: 'domains',
    parse: (_k, t) => t.split(',').map((d) => d.trim()).filter(Boolean),
    show: (s) => (s.domains.length ? s.domains.join(',') : '(none)'),
  },
  redirect: { field: 'httpsRedirect', parse: onOff, show: (s) => (s.httpsRedirect ? 'on (HTTP to HTTPS for hosts with a certificate)' : 'off') },
  hsts: { field: 'hsts', parse: onOff, show: (s) => (s.hsts ? 'on (Strict-Transport-Security on HTTPS answers)' : 'off') },
  prewarm: { field: 'prewarm', parse: trueFalse, show: (s) => (s.prewarm ? 'true (scaled to zero, an instance is kept started and frozen)' : 'false (scaled to zero, nothing runs)') },
};

/** the API's own names work too (memoryMb=512) */
const BY_FIELD = new Map(Object.entries(SETTINGS).map(([word, s]) => [s.field.toLowerCase(), word]));

export function parseSettings(pairs: string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`"${pair}" is not SETTING=VALUE`);
    const key = pair.slice(0, eq).trim();
    const word = SETTINGS[key.toLowerCase()] ? key.toLowerCase() : BY_FIELD.get(key.toLowerCase());
    if (!word) throw new UsageError(`unknown setting "${key}": one of ${Object.keys(SETTINGS).join(', ')}`);
    const setting = SETTINGS[word]!;
    patch[setting.field] = setting.parse(word, pair.slice(eq + 1));
  }
  return patch;
}

// what starts an instance changes its generation: running ones are replaced gracefully
const RESTARTS = new Set<Field>(['memoryMb', 'port', 'startCommand', 'runtime', 'healthPath']);
const NEXT_BUILD = new Set<Field>(['buildCommand', 'rootDir', 'plan']);

function describeEffect(fields: Field[]): string {
  const said: string[] = [];
  if (fields.some((f) => RESTARTS.has(f))) said.push('running instances are replaced after their requests finish');
  if (fields.some((f) => !RESTARTS.has(f) && !NEXT_BUILD.has(f))) said.push('scaling and routing apply now');
  if (fields.some((f) => NEXT_BUILD.has(f))) said.push('the next deploy builds with the new build settings');
  return said.join('; ');
}

export function formatSettings(s: ServiceView): string {
  const width = Math.max(...Object.keys(SETTINGS).map((k) => k.length));
  return Object.entries(SETTINGS)
    .map(([word, setting]) => `  ${word.padEnd(width)}  ${setting.show(s)}\n`)
    .join('');
}

export async function setCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const [name, ...pairs] = positionals;
  if (!name) throw new UsageError('set needs a service name');
  const patch = parseSettings(pairs);
  const client = createClient(loadClientSettings(io.env));
  const path = `/api/v1/services/${encodeURIComponent(name)}`;
  const service = Object.keys(patch).length ? await client.request<ServiceView>('PATCH', path, patch) : await client.request<ServiceView>('GET', path);
  if (values.json) {
    printJson(io, service);
    return 0;
  }
  if (Object.keys(patch).length) io.out(`Changed ${name}: ${describeEffect(Object.keys(patch) as Field[])}\n`);
  io.out(`${service.name} (${service.url})\n${formatSettings(service)}`);
  return 0;
}
