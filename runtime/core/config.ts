// The only place that reads settings: flags win over CELLHOST_* variables, which win over
// defaults. The env is an argument, so tests pass a plain object.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from './zod.ts';
import { parseBuildBinds, parseBuildEnv } from './build-settings.ts';
import { CellhostError } from './errors.ts';

export interface Address {
  host: string;
  port: number;
}

/** where the platform user's package-manager configuration lives (pip, npm, cargo, Go) */
export interface HostConfigHome {
  home: string;
  /** XDG_CONFIG_HOME when set (pip's and Go's user config live under it) */
  xdgConfigHome?: string;
  /** CARGO_HOME when set (else ~/.cargo) */
  cargoHome?: string;
  /** GOENV when set (Go's config file; "off" for none) */
  goEnv?: string;
}

/** host uids for services, both ends included */
export interface UidRange {
  first: number;
  last: number;
}

/** host ids a service's system-layer builds map: 65 536 of them, the service's own */
export const SUBUID_BLOCK = 65_536;

export interface Config {
  dataDir: string;
  http: Address;
  admin: Address;
  domain: string;
  /** the TLS listener of the app router; null: no HTTPS */
  https: Address | null;
  /** certificates: where they come from and how they are checked */
  acme: AcmeConfig;
  /** a certificate and key the user provides (a wildcard for the domain, usually); re-read on SIGHUP and on change */
  tls: { cert: string; key: string } | null;
  /** DNS servers (host:port) for the checks before ordering a certificate; empty: the system's */
  dnsResolvers: string[];
  adminToken?: string;
  masterKey?: string;
  priceGbS: number;
  /** how long an instance may take from spawn to accepting a connection */
  startTimeoutMs: number;
  /** how long a request may wait for capacity before 503 */
  queueTimeoutMs: number;
  /** requests that may wait for capacity per service before 503 */
  queueLimit: number;
  /** largest deployment upload (compressed) */
  maxUploadBytes: number;
  /** largest request body the router forwards */
  maxBodyBytes: number;
  /** how long a client may take to send its request headers */
  headersTimeoutMs: number;
  /** proxies in front of the router (IPs, CIDRs) whose X-Forwarded-* and Forwarded fields are kept */
  trustProxy: readonly string[];
  /** the router's HTTP/1 parser: auto (Node's parser driven directly when usable), node (node:http's server) */
  httpParser: 'auto' | 'node';
  /** how long clean shutdown waits for in-flight requests */
  shutdownGraceMs: number;
  /** builds running at once on this host */
  buildConcurrency: number;
  /** overrides the plans' build time limits (10 min hobby, 30 min pro) when set */
  buildTimeoutS?: number;
  /** overrides the plans' build memory (4 GB hobby, 10 GB pro) when set */
  buildMemoryMb?: number;
  /** override the plans' limits on what a build leaves (image 2/10 GB, dependency cache 2/10 GB,
   *  build log 10/50 MB for hobby/pro), each when set */
  buildMaxImageMb?: number;
  buildMaxCacheMb?: number;
  buildMaxLogMb?: number;
  /** free space a build must leave on the data disk; unset: 1 GB, or 5 % of a smaller disk */
  buildMinFreeMb?: number;
  /** variables every build gets (names resolved from the platform's environment); a service's own win */
  buildEnv: Readonly<Record<string, string>>;
  /** names CELLHOST_BUILD_ENV lists that the platform's environment does not set */
  buildEnvUnset: readonly string[];
  /** host paths bound read-only into every build at the same path (a wheel dir, a file:// index) */
  buildBinds: readonly string[];
  /** the platform user's pip, npm, cargo and Go configuration, visible to builds; false: none */
  buildHostConfig: HostConfigHome | false;
  /** git sources may be local paths and file:// URLs (off: a deploy token could read the host's repositories) */
  gitAllowLocal: boolean;
  /** git sources may be plain http:// URLs (off: unauthenticated, and a way to the host's LAN) */
  gitAllowHttp: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logPretty: boolean;
  /** auto: enforce whatever the host allows, say what it does not; off: run apps as plain children */
  isolation: 'auto' | 'off';
  /** processes and threads per instance */
  pidsMax: number;
  /** CPU cap while an instance starts: null = uncapped, else a fraction of a core; 'off' keeps the cap */
  startupBoost: number | null | 'off';
  /** freeze an idle warm instance after this long (0: never) */
  freezeAfterMs: number;
  /** services scaled to zero that keep their next instance prepared (standbys) */
  standbys: number;
  /** memory the prewarmed instances (apps started and frozen ahead) may hold, MB; null: a quarter
   *  of the host's memory, at most what is free at start; 0: none */
  prewarmMb: number | null;
  cgroupRoot: string;
  /** host uids for services: FIRST-LAST */
  uidRange: UidRange;
  /** host ids for system-layer builds: blocks of SUBUID_BLOCK, one per service that needs one */
  subuidRange: UidRange;
  netnsSubnet: string;
  /** private or special IPv4 ranges instances may reach all the same (all others of them are dropped) */
  egressAllow: readonly string[];
  /** namespaces kept prepared for cold starts */
  netnsWarm: number;
  /** names of namespaces, veths and the nft table: two platforms on one host need different ones */
  netnsPrefix: string;
  /** runtime dir on the host (bind stage): removed on clean stop */
  hostRunDir: string;
  /** parent cgroup name: two platforms on one host need different ones */
  cgroupPrefix: string;
  paths: {
    db: string;
    images: string;
    builds: string;
    cache: string;
    logs: string;
    masterKey: string;
    run: string;
    /** the services' git repositories (git push) */
    git: string;
  };
}

export type AcmeChallenge = 'http-01' | 'tls-alpn-01';

export interface AcmeConfig {
  /** the CA's directory URL */
  directory: string;
  email?: string;
  /** extra CA certificates (PEM) to trust when talking to the CA: a test CA's */
  caFile?: string;
  /** a command called with `set|unset NAME VALUE` to publish DNS-01 TXT records: enables the wildcard */
  dnsHook?: string;
  /** the challenges tried for single names, in order of preference */
  challenges: AcmeChallenge[];
}

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';

type Env = Record<string, string | undefined>;

/** One row per setting: its flag, its variable, and how its text becomes a value. */
const SETTINGS = {
  dataDir: { flag: 'data', env: 'CELLHOST_DATA', def: './cellhost-data' },
  http: { flag: 'http', env: 'CELLHOST_HTTP_ADDR', def: '0.0.0.0:8080' },
  admin: { flag: 'admin', env: 'CELLHOST_ADMIN_ADDR', def: '127.0.0.1:9090' },
  domain: { flag: 'domain', env: 'CELLHOST_DOMAIN', def: 'localhost' },
  https: { flag: 'https', env: 'CELLHOST_HTTPS_ADDR', def: undefined },
  acmeDirectory: { flag: 'acme-directory', env: 'CELLHOST_ACME_DIRECTORY', def: LETS_ENCRYPT },
  acmeEmail: { flag: 'acme-email', env: 'CELLHOST_ACME_EMAIL', def: undefined },
  acmeCaFile: { flag: 'acme-ca-file', env: 'CELLHOST_ACME_CA_FILE', def: undefined },
  acmeDnsHook: { flag: 'acme-dns-hook', env: 'CELLHOST_ACME_DNS_HOOK', def: undefined },
  acmeChallenges: { flag: 'acme-challenges', env: 'CELLHOST_ACME_CHALLENGES', def: 'http-01,tls-alpn-01' },
  tlsCert: { flag: 'tls-cert', env: 'CELLHOST_TLS_CERT', def: undefined },
  tlsKey: { flag: 'tls-key', env: 'CELLHOST_TLS_KEY', def: undefined },
  dnsResolver: { flag: 'dns-resolver', env: 'CELLHOST_DNS_RESOLVER', def: undefined },
  adminToken: { flag: 'admin-token', env: 'CELLHOST_ADMIN_TOKEN', def: undefined },
  masterKey: { flag: 'master-key', env: 'CELLHOST_MASTER_KEY', def: undefined },
  priceGbS: { flag: 'price-gb-s', env: 'CELLHOST_PRICE_GB_S', def: '0.0000166667' },
  startTimeoutMs: { flag: 'start-timeout-ms', env: 'CELLHOST_START_TIMEOUT_MS', def: '60000' },
  queueTimeoutMs: { flag: 'queue-timeout-ms', env: 'CELLHOST_QUEUE_TIMEOUT_MS', def: '30000' },
  queueLimit: { flag: 'queue-limit', env: 'CELLHOST_QUEUE_LIMIT', def: '1000' },
  maxUploadBytes: { flag: 'max-upload-bytes', env: 'CELLHOST_MAX_UPLOAD_BYTES', def: String(200 * 1024 * 1024) },
  maxBodyBytes: { flag: 'max-body-bytes', env: 'CELLHOST_MAX_BODY_BYTES', def: String(100 * 1024 * 1024) },
  headersTimeoutMs: { flag: 'headers-timeout-ms', env: 'CELLHOST_HEADERS_TIMEOUT_MS', def: '20000' },
  trustProxy: { flag: 'trust-proxy', env: 'CELLHOST_TRUST_PROXY', def: '' },
  httpParser: { flag: 'http-parser', env: 'CELLHOST_HTTP_PARSER', def: 'auto' },
  shutdownGraceMs: { flag: 'shutdown-grace-ms', env: 'CELLHOST_SHUTDOWN_GRACE_MS', def: '10000' },
  buildConcurrency: { flag: 'build-concurrency', env: 'CELLHOST_BUILD_CONCURRENCY', def: '2' },
  buildTimeoutS: { flag: 'build-timeout-s', env: 'CELLHOST_BUILD_TIMEOUT_S', def: undefined },
  buildMemoryMb: { flag: 'build-memory-mb', env: 'CELLHOST_BUILD_MEMORY_MB', def: undefined },
  buildMaxImageMb: { flag: 'build-max-image-mb', env: 'CELLHOST_BUILD_MAX_IMAGE_MB', def: undefined },
  buildMaxCacheMb: { flag: 'build-max-cache-mb', env: 'CELLHOST_BUILD_MAX_CACHE_MB', def: undefined },
  buildMaxLogMb: { flag: 'build-max-log-mb', env: 'CELLHOST_BUILD_MAX_LOG_MB', def: undefined },
  buildMinFreeMb: { flag: 'build-min-free-mb', env: 'CELLHOST_BUILD_MIN_FREE_MB', def: undefined },
  buildEnv: { flag: 'build-env', env: 'CELLHOST_BUILD_ENV', def: '' },
  buildBinds: { flag: 'build-binds', env: 'CELLHOST_BUILD_BINDS', def: '' },
  buildHostConfig: { flag: 'build-host-config', env: 'CELLHOST_BUILD_HOST_CONFIG', def: '1' },
  gitAllowLocal: { flag: 'git-allow-local', env: 'CELLHOST_GIT_ALLOW_LOCAL', def: '0' },
  gitAllowHttp: { flag: 'git-allow-http', env: 'CELLHOST_GIT_ALLOW_HTTP', def: '0' },
  logLevel: { flag: 'log-level', env: 'CELLHOST_LOG_LEVEL', def: 'info' },
  logFormat: { flag: 'log-format', env: 'CELLHOST_LOG_FORMAT', def: undefined },
  isolation: { flag: 'isolation', env: 'CELLHOST_ISOLATION', def: 'auto' },
  pidsMax: { flag: 'pids-max', env: 'CELLHOST_PIDS_MAX', def: '256' },
  startupBoost: { flag: 'startup-boost', env: 'CELLHOST_STARTUP_BOOST', def: 'uncapped' },
  freezeAfterS: { flag: 'freeze-after-s', env: 'CELLHOST_FREEZE_AFTER_S', def: '30' },
  standbys: { flag: 'standbys', env: 'CELLHOST_STANDBYS', def: '4' },
  prewarmMb: { flag: 'prewarm-mb', env: 'CELLHOST_PREWARM_MB', def: 'auto' },
  uidRange: { flag: 'uid-range', env: 'CELLHOST_UID_RANGE', def: '2000000000-2000065535' },
  subuidRange: { flag: 'subuid-range', env: 'CELLHOST_SUBUID_RANGE', def: '2013265920-2147352575' },
  netnsSubnet: { flag: 'netns-subnet', env: 'CELLHOST_NETNS_SUBNET', def: '10.213.0.0/16' },
  egressAllow: { flag: 'egress-allow', env: 'CELLHOST_EGRESS_ALLOW', def: '' },
  netnsWarm: { flag: 'netns-warm', env: 'CELLHOST_NETNS_WARM', def: '4' },
  netnsPrefix: { flag: 'netns-prefix', env: 'CELLHOST_NETNS_PREFIX', def: 'ch' },
  hostRunDir: { flag: 'host-run-dir', env: 'CELLHOST_HOST_RUN_DIR', def: '/run/cellhost' },
  cgroupRoot: { flag: 'cgroup-root', env: 'CELLHOST_CGROUP_ROOT', def: '/sys/fs/cgroup' },
  cgroupPrefix: { flag: 'cgroup-prefix', env: 'CELLHOST_CGROUP_PREFIX', def: 'cellhost' },
} as const;

export const CONFIG_FLAGS = Object.values(SETTINGS).map((s) => s.flag);

const addressSchema = z.string().transform((text, ctx): Address => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not host:port` });
    return z.NEVER;
  }
  return { host: m[1] || m[2] || '0.0.0.0', port };
});
const int = (min: number) => z.coerce.number().int().min(min);
const absolutePath = z.string().startsWith('/', 'an absolute path');
const flag = z.enum(['0', '1', 'false', 'true', 'no', 'yes'], { message: '1 or 0' }).transform((v) => v === '1' || v === 'true' || v === 'yes');

/** "10.1.2.0/24, 192.168.1.5" → ["10.1.2.0/24", "192.168.1.5/32"]; IPv4 only (instances have no IPv6) */
const cidrListSchema = z.string().transform((text, ctx): string[] => {
  const out: string[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(item);
    const octets = m ? m.slice(1, 5).map(Number) : [];
    const len = m?.[5] === undefined ? 32 : Number(m[5]);
    const addr = octets.reduce((n, o) => n * 256 + o, 0);
    if (!m || octets.some((o) => o > 255) || len > 32) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not an IPv4 address or CIDR such as 192.168.1.0/24 (instances have no IPv6)` });
      return z.NEVER;
    }
    if (addr % 2 ** (32 - len) !== 0) {
      ctx.addIssue({ code: 'custom', message: `"${item}" has host bits set` });
      return z.NEVER;
    }
    out.push(`${octets.join('.')}/${len}`);
  }
  return out;
});

const schema = z.object({
  dataDir: z.string().min(1),
  http: addressSchema,
  admin: addressSchema,
  domain: z
    .string()
    .regex(/^[a-z0-9.-]+$/i, 'a DNS name')
    .transform((d) => d.toLowerCase().replace(/^\.+|\.+$/g, '')),
  https: z.union([z.literal('off'), addressSchema], { message: '"off" or host:port, such as 0.0.0.0:443' }).optional(),
  acmeDirectory: z.url({ protocol: /^https?$/, message: 'the URL of an ACME directory' }),
  acmeEmail: z.email().optional(),
  acmeCaFile: absolutePath.optional(),
  acmeDnsHook: absolutePath.optional(),
  acmeChallenges: z.string().transform((text, ctx) => {
    const list = text.split(',').map((s) => s.trim()).filter(Boolean);
    if (!list.length || list.some((c) => c !== 'http-01' && c !== 'tls-alpn-01') || new Set(list).size !== list.length) {
      ctx.addIssue({ code: 'custom', message: 'http-01, tls-alpn-01 or both, comma-separated, in order of preference' });
      return z.NEVER;
    }
    return list as AcmeChallenge[];
  }),
  tlsCert: absolutePath.optional(),
  tlsKey: absolutePath.optional(),
  dnsResolver: z
    .string()
    .transform((text) => text.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\[[0-9a-f:]+\]|[0-9.]+)(:\d{1,5})?$/i, 'IP[:port] of DNS servers, comma-separated')))
    .optional(),
  adminToken: z.string().min(16, 'at least 16 characters').optional(),
  masterKey: z.string().optional(),
  priceGbS: z.coerce.number().nonnegative(),
  startTimeoutMs: int(100),
  queueTimeoutMs: int(1),
  queueLimit: int(0),
  maxUploadBytes: int(1024),
  maxBodyBytes: int(0),
  headersTimeoutMs: int(100),
  trustProxy: z.string().transform((text, ctx) => {
    const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
    for (const e of entries) {
      const [ip, bits, extra] = e.split('/');
      const family = net.isIP(ip!);
      if (!family || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)))) {
        ctx.addIssue({ code: 'custom', message: `"${e}" is not an IP address or CIDR (a comma-separated list such as 10.0.0.5, 192.168.1.0/24)` });
        return z.NEVER;
      }
    }
    return entries;
  }),
  httpParser: z.enum(['auto', 'node']),
  shutdownGraceMs: int(0),
  buildConcurrency: int(1),
  buildTimeoutS: z.coerce.number().positive().optional(),
  buildMemoryMb: z.coerce.number().int().min(128).optional(),
  // fractions allowed: tests and tiny hosts want limits below a megabyte
  buildMaxImageMb: z.coerce.number().positive().optional(),
  buildMaxCacheMb: z.coerce.number().positive().optional(),
  buildMaxLogMb: z.coerce.number().positive().optional(),
  buildMinFreeMb: z.coerce.number().min(0).optional(),
  buildEnv: z.string().transform((text, ctx) => {
    try {
      return parseBuildEnv(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (names, or NAME=value pairs, separated by spaces; quote a value that has spaces)` });
      return z.NEVER;
    }
  }),
  // checked against the data dir below, once that is resolved
  buildBinds: z.string(),
  buildHostConfig: flag,
  gitAllowLocal: flag,
  gitAllowHttp: flag,
  logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  logFormat: z.enum(['json', 'pretty']).optional(),
  isolation: z.enum(['auto', 'off']),
  pidsMax: int(16),
  startupBoost: z.union([
    z.enum(['uncapped', 'off']),
    z.coerce.number().positive().max(1024),
  ], { message: '"uncapped", "off", or a fraction of a core such as 1.5' }),
  freezeAfterS: z.coerce.number().min(0),
  standbys: z.coerce.number().int().min(0).max(1000),
  prewarmMb: z.union([z.literal('auto'), z.coerce.number().int().min(0).max(16 * 1024 * 1024)], { message: '"auto" or a whole number of MB (0 turns prewarming off)' }),
  cgroupRoot: z.string().min(1),
  uidRange: z.string().transform((text, ctx) => {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
    const first = Number(m?.[1]);
    const last = Number(m?.[2]);
    if (!m || first < 1000 || last < first || last > 2_147_483_646 || (first <= 65534 && last >= 65534)) {
      ctx.addIssue({ code: 'custom', message: 'FIRST-LAST with 1000 ≤ FIRST ≤ LAST < 2147483647, not containing 65534' });
      return z.NEVER;
    }
    return { first, last };
  }),
  subuidRange: z.string().transform((text, ctx) => {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
    const first = Number(m?.[1]);
    const last = Number(m?.[2]);
    // above every real account and systemd's dynamic users (all below 65536), below 2^31 - 1
    if (!m || first < 65_536 || last > 2_147_483_646 || last - first + 1 < SUBUID_BLOCK) {
      ctx.addIssue({ code: 'custom', message: `FIRST-LAST with 65536 ≤ FIRST, LAST < 2147483647, holding at least one block of ${SUBUID_BLOCK} ids` });
      return z.NEVER;
    }
    return { first, last };
  }),
  netnsSubnet: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'an IPv4 CIDR such as 10.213.0.0/16'),
  egressAllow: cidrListSchema,
  netnsWarm: z.coerce.number().int().min(0).max(256),
  netnsPrefix: z.string().regex(/^[a-z][a-z0-9]{0,5}$/, '1–6 lowercase letters and digits, starting with a letter'),
  hostRunDir: z.string().startsWith('/', 'an absolute path'),
  cgroupPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -'),
});

export interface LoadConfigInput {
  flags?: Record<string, string | undefined>;
  env?: Env;
  cwd?: string;
  isTTY?: boolean;
  /** whether the process runs as root: HTTPS is on by default only then (port 443) */
  isRoot?: boolean;
}

export function loadConfig(input: LoadConfigInput = {}): Config {
  const flags = input.flags ?? {};
  const env = input.env ?? {};
  const raw: Record<string, string | undefined> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    const fromFlag = flags[s.flag];
    const fromEnv = env[s.env];
    raw[key] = fromFlag ?? (fromEnv === '' ? undefined : fromEnv) ?? s.def;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]) as keyof typeof SETTINGS;
    const s = SETTINGS[key];
    throw new CellhostError('ERR_VALIDATION', `setting --${s.flag} / ${s.env}: ${issue.message}`);
  }
  const v = parsed.data;
  if (Boolean(v.tlsCert) !== Boolean(v.tlsKey)) {
    throw new CellhostError('ERR_VALIDATION', 'setting --tls-cert / CELLHOST_TLS_CERT and --tls-key / CELLHOST_TLS_KEY: give both or neither');
  }
  if (v.subuidRange.first <= v.uidRange.last && v.subuidRange.last >= v.uidRange.first) {
    throw new CellhostError(
      'ERR_VALIDATION',
      `setting --subuid-range / CELLHOST_SUBUID_RANGE: ${v.subuidRange.first}-${v.subuidRange.last} overlaps the services' uids ${v.uidRange.first}-${v.uidRange.last} (--uid-range / CELLHOST_UID_RANGE)`,
    );
  }
  const dataDir = path.resolve(input.cwd ?? process.cwd(), v.dataDir);
  let buildBinds: string[];
  try {
    buildBinds = parseBuildBinds(v.buildBinds, { dataDir, hostRunDir: v.hostRunDir });
  } catch (err) {
    throw new CellhostError('ERR_VALIDATION', `setting --${SETTINGS.buildBinds.flag} / ${SETTINGS.buildBinds.env}: ${(err as Error).message}`);
  }
  // names are passed from the platform's own environment, read here and nowhere else
  const buildEnv: Record<string, string> = {};
  const buildEnvUnset: string[] = [];
  for (const e of v.buildEnv) {
    const value = e.value ?? env[e.name];
    if (value === undefined) buildEnvUnset.push(e.name);
    else buildEnv[e.name] = value;
  }
  const nonEmpty = (s: string | undefined) => (s ? s : undefined);
  return Object.freeze({
    dataDir,
    http: v.http,
    admin: v.admin,
    domain: v.domain,
    https: v.https === 'off' ? null : (v.https ?? (isPublicDomain(v.domain) && input.isRoot ? { host: '0.0.0.0', port: 443 } : null)),
    acme: Object.freeze({ directory: v.acmeDirectory, email: v.acmeEmail, caFile: v.acmeCaFile, dnsHook: v.acmeDnsHook, challenges: v.acmeChallenges }),
    tls: v.tlsCert && v.tlsKey ? { cert: v.tlsCert, key: v.tlsKey } : null,
    dnsResolvers: v.dnsResolver ?? [],
    adminToken: v.adminToken,
    masterKey: v.masterKey,
    priceGbS: v.priceGbS,
    startTimeoutMs: v.startTimeoutMs,
    queueTimeoutMs: v.queueTimeoutMs,
    queueLimit: v.queueLimit,
    maxUploadBytes: v.maxUploadBytes,
    maxBodyBytes: v.maxBodyBytes,
    headersTimeoutMs: v.headersTimeoutMs,
    trustProxy: Object.freeze(v.trustProxy),
    httpParser: v.httpParser,
    shutdownGraceMs: v.shutdownGraceMs,
    buildConcurrency: v.buildConcurrency,
    buildTimeoutS: v.buildTimeoutS,
    buildMemoryMb: v.buildMemoryMb,
    buildMaxImageMb: v.buildMaxImageMb,
    buildMaxCacheMb: v.buildMaxCacheMb,
    buildMaxLogMb: v.buildMaxLogMb,
    buildMinFreeMb: v.buildMinFreeMb,
    buildEnv: Object.freeze(buildEnv),
    buildEnvUnset: Object.freeze(buildEnvUnset),
    buildBinds: Object.freeze(buildBinds),
    buildHostConfig: v.buildHostConfig
      ? Object.freeze({ home: nonEmpty(env.HOME) ?? os.homedir(), xdgConfigHome: nonEmpty(env.XDG_CONFIG_HOME), cargoHome: nonEmpty(env.CARGO_HOME), goEnv: nonEmpty(env.GOENV) })
      : false,
    gitAllowLocal: v.gitAllowLocal,
    gitAllowHttp: v.gitAllowHttp,
    logLevel: v.logLevel,
    logPretty: v.logFormat ? v.logFormat === 'pretty' : Boolean(input.isTTY),
    isolation: v.isolation,
    pidsMax: v.pidsMax,
    startupBoost: v.startupBoost === 'uncapped' ? null : v.startupBoost,
    freezeAfterMs: Math.round(v.freezeAfterS * 1000),
    standbys: v.standbys,
    prewarmMb: v.prewarmMb === 'auto' ? null : v.prewarmMb,
    cgroupRoot: v.cgroupRoot,
    uidRange: v.uidRange,
    subuidRange: v.subuidRange,
    netnsSubnet: v.netnsSubnet,
    egressAllow: Object.freeze(v.egressAllow),
    netnsPrefix: v.netnsPrefix,
    netnsWarm: v.netnsWarm,
    hostRunDir: v.hostRunDir,
    cgroupPrefix: v.cgroupPrefix,
    paths: {
      db: path.join(dataDir, 'cellhost.db'),
      images: path.join(dataDir, 'images'),
      builds: path.join(dataDir, 'builds'),
      cache: path.join(dataDir, 'cache'),
      logs: path.join(dataDir, 'logs'),
      masterKey: path.join(dataDir, 'master.key'),
      run: path.join(dataDir, 'run'),
      git: path.join(dataDir, 'git'),
    },
  });
}

/** a name a public CA can issue for: not localhost, not a single label, not an IP address */
export function isPublicDomain(domain: string): boolean {
  return domain.includes('.') && !/(^|\.)localhost$/.test(domain) && !/^[\d.]+$/.test(domain);
}

/** The config as `serve --print-config` shows it: secrets redacted. */
export function redactConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    http: `${config.http.host}:${config.http.port}`,
    admin: `${config.admin.host}:${config.admin.port}`,
    https: config.https ? `${config.https.host}:${config.https.port}` : 'off',
    adminToken: config.adminToken ? '[redacted]' : undefined,
    masterKey: config.masterKey ? '[redacted]' : undefined,
    // unset limits are the plans' own: say so rather than leave them out
    buildMaxImageMb: config.buildMaxImageMb ?? 'plan (hobby 2048, pro 10240)',
    buildMaxCacheMb: config.buildMaxCacheMb ?? 'plan (hobby 2048, pro 10240)',
    buildMaxLogMb: config.buildMaxLogMb ?? 'plan (hobby 10, pro 50)',
    buildMinFreeMb: config.buildMinFreeMb ?? 'auto (1024, or 5 % of a smaller disk)',
    // values may hold credentials (a proxy's user and password, an index token): names only
    buildEnv: Object.keys(config.buildEnv),
  };
}
