import { describe, expect, it } from 'vitest';
import { createLoginLimiter, sourceKey } from '../../../runtime/core/login-limiter.ts';
import { createSessions, readSessionCookie } from '../../../ui/session.ts';
import type { TokenInfo, TokenStore } from '../../../runtime/store/tokens.ts';

function fakeTokens(...ids: string[]) {
  const list: TokenInfo[] = ids.map((id) => ({ id, name: `name-${id}`, createdAt: '2024-01-01T00:00:00Z', lastUsedAt: null }));
  return { list: () => list, revoke: (id: string) => list.splice(list.findIndex((t) => t.id === id), 1).length > 0 } as unknown as TokenStore & { revoke(id: string): boolean };
}

describe('sessions', () => {
  it('a session holds its token and a CSRF token; ids and CSRF tokens are random and long', () => {
    let now = 0;
    const sessions = createSessions({ tokens: fakeTokens('t1'), now: () => now });
    const a = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    const b = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    expect(a.id).not.toBe(b.id);
    expect(a.csrf).not.toBe(a.id);
    expect(a.id.length).toBeGreaterThanOrEqual(43);
    expect(sessions.get(a.id)?.token.name).toBe('name-t1');
    expect(sessions.get('nope')).toBeUndefined();
    expect(sessions.get(undefined)).toBeUndefined();
  });

  it('checks CSRF tokens exactly', () => {
    const sessions = createSessions({ tokens: fakeTokens('t1'), now: () => 0 });
    const s = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    expect(sessions.checkCsrf(s, s.csrf)).toBe(true);
    expect(sessions.checkCsrf(s, s.csrf.slice(0, -1))).toBe(false);
    expect(sessions.checkCsrf(s, s.csrf + 'x')).toBe(false);
    expect(sessions.checkCsrf(s, '')).toBe(false);
    expect(sessions.checkCsrf(s, undefined)).toBe(false);
    expect(sessions.fromCookie(s.id, s.csrf)).toMatchObject({ csrfOk: true });
    expect(sessions.fromCookie(s.id, 'x')).toMatchObject({ csrfOk: false });
    expect(sessions.fromCookie('other', s.csrf)).toBeUndefined();
  });

  it('ends after the idle time and after the maximum age, whatever the use', () => {
    let now = 0;
    const sessions = createSessions({ tokens: fakeTokens('t1'), now: () => now, idleMs: 1000, maxAgeMs: 5000 });
    const s = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    for (now = 900; now < 5000; now += 900) expect(sessions.get(s.id)).toBeDefined();
    now = 5001;
    expect(sessions.get(s.id)).toBeUndefined();
    const idle = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    now += 1001;
    expect(sessions.get(idle.id)).toBeUndefined();
  });

  it('ends when its token is revoked, and on destroy', () => {
    const tokens = fakeTokens('t1', 't2');
    const sessions = createSessions({ tokens, now: () => 0 });
    const s1 = sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null });
    const s2 = sessions.create({ id: 't2', name: 'y', createdAt: '', lastUsedAt: null });
    tokens.revoke('t1');
    expect(sessions.get(s1.id)).toBeUndefined();
    expect(sessions.get(s2.id)).toBeDefined();
    sessions.destroy(s2.id);
    expect(sessions.get(s2.id)).toBeUndefined();
  });

  it('keeps at most maxSessions, dropping the oldest', () => {
    const sessions = createSessions({ tokens: fakeTokens('t1'), now: () => 0, maxSessions: 3 });
    const made = Array.from({ length: 5 }, () => sessions.create({ id: 't1', name: 'x', createdAt: '', lastUsedAt: null }));
    expect(sessions.size()).toBe(3);
    expect(sessions.get(made[0]!.id)).toBeUndefined();
    expect(sessions.get(made[4]!.id)).toBeDefined();
  });

  it('reads its cookie among others', () => {
    expect(readSessionCookie('a=1; cellhost_session=abc_-1; b=2')).toBe('abc_-1');
    expect(readSessionCookie('xcellhost_session=no')).toBeUndefined();
    expect(readSessionCookie(undefined)).toBeUndefined();
  });
});

describe('login limiter', () => {
  it('allows 10 failures a minute per source, then refuses failures, held longer each time, until the oldest leaves the window', () => {
    let now = 0;
    const limiter = createLoginLimiter({ now: () => now, maxPerCredential: 100 });
    for (let i = 0; i < 10; i++) {
      expect(limiter.recordFailure('203.0.113.5', `guess-${i}`)).toEqual({ limited: false, retryAfterMs: 0, delayMs: 0 });
      now += 1000;
    }
    // 10 failures at 0..9 s; now 10 s: the 11th is refused until the one at 1 s leaves (61 s)
    expect(limiter.recordFailure('203.0.113.5', 'guess-10')).toEqual({ limited: true, retryAfterMs: 51_000, delayMs: 100 });
    expect(limiter.recordFailure('203.0.113.5', 'guess-11').delayMs).toBe(200);
    expect(limiter.recordFailure('203.0.113.5', 'guess-12').delayMs).toBe(400);
    for (let i = 0; i < 10; i++) limiter.recordFailure('203.0.113.5', `more-${i}`);
    expect(limiter.recordFailure('203.0.113.5', 'guess-x').delayMs).toBe(3000);
    // another address is another source
    expect(limiter.recordFailure('203.0.113.6', 'guess-y').limited).toBe(false);
    now = 200_000;
    expect(limiter.recordFailure('203.0.113.5', 'guess-z').limited).toBe(false);
  });

  it('one wrong credential repeated is refused past its own limit, from any address', () => {
    const limiter = createLoginLimiter({ now: () => 0, maxPerCredential: 3 });
    for (const addr of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) expect(limiter.recordFailure(addr, 'stale').limited).toBe(false);
    expect(limiter.recordFailure('198.51.100.4', 'stale').limited).toBe(true);
    expect(limiter.recordFailure('198.51.100.4', 'other').limited).toBe(false);
    // accepted later (a token made with that value): its failures are forgotten
    limiter.recordSuccess('198.51.100.4', 'stale');
    expect(limiter.recordFailure('198.51.100.5', 'stale').limited).toBe(false);
  });

  it('counts the whole loopback range as one source, and IPv6 by its /64', () => {
    expect(sourceKey('127.0.0.1')).toBe('loopback');
    expect(sourceKey('127.0.0.2')).toBe('loopback');
    expect(sourceKey('127.255.3.9')).toBe('loopback');
    expect(sourceKey('::1')).toBe('loopback');
    expect(sourceKey('0:0:0:0:0:0:0:1')).toBe('loopback');
    expect(sourceKey('::ffff:127.0.0.5')).toBe('loopback');
    expect(sourceKey('::FFFF:203.0.113.7')).toBe('203.0.113.7');
    expect(sourceKey('203.0.113.7')).toBe('203.0.113.7');
    expect(sourceKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:0db8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('2001:db8:1:3::1')).not.toBe(sourceKey('2001:db8:1:2::1'));

    const limiter = createLoginLimiter({ now: () => 0, max: 2, maxPerCredential: 100 });
    limiter.recordFailure('127.0.0.1', 'a');
    limiter.recordFailure('127.0.0.2', 'b');
    expect(limiter.recordFailure('::1', 'c').limited).toBe(true);
    limiter.recordFailure('2001:db8::1', 'd');
    limiter.recordFailure('2001:db8::ffff', 'e');
    expect(limiter.recordFailure('2001:db8:0:0:1::', 'f').limited).toBe(true);
  });

  it('the tables of sources and credentials are bounded', () => {
    const limiter = createLoginLimiter({ now: () => 0, max: 2, maxPerCredential: 100, maxKeys: 3 });
    for (const addr of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) {
      limiter.recordFailure(addr, 'x');
      limiter.recordFailure(addr, 'x');
    }
    expect(limiter.recordFailure('192.0.2.4', 'x').limited).toBe(true);
    // the stalest source was forgotten
    expect(limiter.recordFailure('192.0.2.1', 'x').limited).toBe(false);
  });
});
