// Failed logins (admin API tokens, the UI's login form), counted per source and per presented
// credential in a sliding window. Only failures are ever refused: a valid token is checked and
// accepted whatever its source has done, so a local user who sends wrong tokens cannot lock the
// operator out. Past the limit a failure is answered 429, and held first for a delay that doubles
// with each further failure (up to a cap), so a guesser that waits for its answers gets a few per
// minute.
//
// A source is an address, except that the whole loopback range (127.0.0.0/8, ::1, and their
// IPv4-mapped forms) is one source, since any local user can pick any of those addresses, and an
// IPv6 address counts by its /64, the block one host usually has to itself.
import { createHash } from 'node:crypto';
import net from 'node:net';

export interface LoginLimiterOptions {
  /** epoch ms */
  now(): number;
  /** failures allowed from one source in the window (default 10) */
  max?: number;
  /** failures allowed for one wrong credential in the window, from anywhere (default: max) */
  maxPerCredential?: number;
  windowMs?: number;
  /** the first failure past a limit is held this long; each further one twice as long as the last */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** sources and credentials tracked at once (each); the stalest are forgotten past it (default 10 000) */
  maxKeys?: number;
}

export interface FailureVerdict {
  /** past a limit: answer 429 */
  limited: boolean;
  /** ms until the source and the credential are both under their limits again */
  retryAfterMs: number;
  /** ms to hold the answer before sending it (0 under the limits) */
  delayMs: number;
}

export interface LoginLimiter {
  /** a credential that was checked and refused: how to answer */
  recordFailure(address: string, secret: string): FailureVerdict;
  /** a credential that was accepted: its own failures are forgotten, its source's stay */
  recordSuccess(address: string, secret: string): void;
}

/** the key failures from `address` are counted under */
export function sourceKey(address: string): string {
  let a = address.trim().toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) a = a.slice(7);
  if (net.isIPv4(a)) return a.startsWith('127.') ? 'loopback' : a;
  if (!net.isIPv6(a)) return a;
  const groups = expandIPv6(a);
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return 'loopback';
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** the eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail included) */
function expandIPv6(a: string): number[] {
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    a = a.slice(0, -v4[1]!.length) + `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => parseInt(g, 16));
}

/** one tracked key's recent failures, oldest first, at most limit + EXTRA of them */
const EXTRA = 32;

export function createLoginLimiter(opts: LoginLimiterOptions): LoginLimiter {
  const max = opts.max ?? 10;
  const maxPerCredential = opts.maxPerCredential ?? max;
  const windowMs = opts.windowMs ?? 60_000;
  const baseDelayMs = opts.baseDelayMs ?? 100;
  const maxDelayMs = opts.maxDelayMs ?? 3_000;
  const maxKeys = opts.maxKeys ?? 10_000;
  const bySource = new Map<string, number[]>();
  const byCredential = new Map<string, number[]>();

  // the secret itself is never kept, only a digest to recognise it by
  const credentialKey = (secret: string) => createHash('sha256').update(secret).digest('base64url').slice(0, 22);

  function fail(table: Map<string, number[]>, key: string, limit: number, now: number): { over: number; retryAfterMs: number } {
    const list = (table.get(key) ?? []).filter((t) => t > now - windowMs);
    list.push(now);
    if (list.length > limit + EXTRA) list.splice(0, list.length - limit - EXTRA);
    // re-inserted, so the Map's order stays "least recently failed first"
    table.delete(key);
    table.set(key, list);
    while (table.size > maxKeys) table.delete(table.keys().next().value!);
    const over = list.length - limit;
    return { over, retryAfterMs: over > 0 ? list[list.length - limit]! + windowMs - now : 0 };
  }

  return {
    recordFailure(address, secret) {
      const now = opts.now();
      const source = fail(bySource, sourceKey(address), max, now);
      const credential = fail(byCredential, credentialKey(secret), maxPerCredential, now);
      const over = Math.max(source.over, credential.over);
      if (over <= 0) return { limited: false, retryAfterMs: 0, delayMs: 0 };
      return {
        limited: true,
        retryAfterMs: Math.max(source.retryAfterMs, credential.retryAfterMs),
        delayMs: Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(over - 1, 20)),
      };
    },
    recordSuccess(_address, secret) {
      byCredential.delete(credentialKey(secret));
    },
  };
}
