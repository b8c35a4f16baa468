// Failed logins per remote address in a sliding window: past the limit the address is refused
// (even with a right token) until its oldest failure leaves the window, so guessing tokens
// through the login form costs minutes, not milliseconds.

export interface LoginLimiterOptions {
  /** epoch ms */
  now(): number;
  /** failures allowed in the window (default 10) */
  max?: number;
  windowMs?: number;
  /** addresses tracked at once; the stalest are forgotten past it (default 10 000) */
  maxAddresses?: number;
}

export interface LoginLimiter {
  /** ms until the address may try again, or 0 when it may now */
  retryAfterMs(address: string): number;
  recordFailure(address: string): void;
  recordSuccess(address: string): void;
}

export function createLoginLimiter(opts: LoginLimiterOptions): LoginLimiter {
  const max = opts.max ?? 10;
  const windowMs = opts.windowMs ?? 60_000;
  const maxAddresses = opts.maxAddresses ?? 10_000;
  const failures = new Map<string, number[]>();

  function recent(address: string, now: number): number[] {
    const list = (failures.get(address) ?? []).filter((t) => t > now - windowMs);
    if (list.length) failures.set(address, list);
    else failures.delete(address);
    return list;
  }

  return {
    retryAfterMs(address) {
      const now = opts.now();
      const list = recent(address, now);
      if (list.length < max) return 0;
      return list[list.length - max]! + windowMs - now;
    },
    recordFailure(address) {
      const now = opts.now();
      const list = recent(address, now);
      list.push(now);
      // re-insert so the Map's order stays "least recently failed first"
      failures.delete(address);
      failures.set(address, list.slice(-max));
      while (failures.size > maxAddresses) failures.delete(failures.keys().next().value!);
    },
    recordSuccess(address) {
      failures.delete(address);
    },
  };
}
