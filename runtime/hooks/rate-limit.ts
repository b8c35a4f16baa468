// A sliding-window count per key: at most `limit` hits in `windowMs`, past it refused with the
// time until the oldest counted hit leaves the window. Keys beyond `maxKeys` forget the stalest.
export interface RateLimiter {
  /** counts a hit; ok false (and nothing counted) when the key is at its limit */
  hit(key: string): { ok: boolean; retryAfterMs: number };
}

export function createRateLimiter(opts: { limit: number; windowMs: number; now(): number; maxKeys?: number }): RateLimiter {
  const maxKeys = opts.maxKeys ?? 10_000;
  const hits = new Map<string, number[]>();
  return {
    hit(key) {
      const now = opts.now();
      const list = (hits.get(key) ?? []).filter((t) => t > now - opts.windowMs);
      hits.delete(key);
      hits.set(key, list);
      while (hits.size > maxKeys) hits.delete(hits.keys().next().value!);
      if (list.length >= opts.limit) return { ok: false, retryAfterMs: list[0]! + opts.windowMs - now };
      list.push(now);
      return { ok: true, retryAfterMs: 0 };
    },
  };
}
