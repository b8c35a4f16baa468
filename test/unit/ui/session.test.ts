import { describe, expect, it } from 'vitest';
import { createLoginLimiter } from '../../../runtime/core/login-limiter.ts';
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
  it('allows 10 failures a minute per address, then refuses until the oldest leaves the window', () => {
    let now = 0;
    const limiter = createLoginLimiter({ now: () => now });
    for (let i = 0; i < 10; i++) {
      expect(limiter.retryAfterMs('a')).toBe(0);
      limiter.recordFailure('a');
      now += 1000;
    }
    expect(limiter.retryAfterMs('a')).toBe(50_000);
    expect(limiter.retryAfterMs('b')).toBe(0);
    now = 60_001;
    expect(limiter.retryAfterMs('a')).toBe(0);
    limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBeGreaterThan(0);
  });

  it('a success clears the address; the table of addresses is bounded', () => {
    const limiter = createLoginLimiter({ now: () => 0, max: 2, maxAddresses: 3 });
    limiter.recordFailure('a');
    limiter.recordSuccess('a');
    limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBe(0);
    for (const addr of ['b', 'c', 'd', 'e']) {
      limiter.recordFailure(addr);
      limiter.recordFailure(addr);
    }
    expect(limiter.retryAfterMs('e')).toBeGreaterThan(0);
    // the stalest addresses were forgotten
    expect(limiter.retryAfterMs('b')).toBe(0);
  });
});
