// The fields the app is told about its request, from a request head alone (no sockets).
import { describe, expect, it } from 'vitest';
import { forwardHeaders, parseTrustedProxies, takeAbsoluteTarget } from '../../../runtime/router/forwarding.ts';
import type { RouterRequest } from '../../../runtime/router/request.ts';

/** the parts of a parsed request forwarding reads */
function request(url: string, headers: string[], peer = '192.0.2.10', encrypted = false, method = 'GET'): RouterRequest {
  const names = headers.map((h, i) => (i % 2 === 0 ? h.toLowerCase() : ''));
  const field = (n: string) => {
    const values = headers.filter((_, i) => i % 2 === 1 && names[i - 1] === n);
    return values.length ? values.join(', ') : undefined;
  };
  return {
    url,
    method,
    rawHeaders: headers,
    names,
    host: field('host'),
    connection: field('connection'),
    forwardedFor: field('x-forwarded-for'),
    forwardedProto: field('x-forwarded-proto'),
    forwardedHost: field('x-forwarded-host'),
    forwarded: field('forwarded'),
    socket: { remoteAddress: peer, encrypted },
  } as unknown as RouterRequest;
}

const fields = (out: string[]) => Object.fromEntries(out.flatMap((v, i) => (i % 2 === 0 ? [[v, out[i + 1]]] : [])));

const SPOOFED = ['X-Forwarded-For', '203.0.113.1', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example', 'X-Real-IP', '203.0.113.1', 'Forwarded', 'for=203.0.113.1'];

describe('forwarding fields', () => {
  it('replaces what a client says with what the router saw', () => {
    const out = forwardHeaders(request('/', ['Host', 'a.localhost:8080', 'Accept', '*/*', ...SPOOFED]), 'id-1', null);
    expect(fields(out)).toEqual({
      host: 'a.localhost:8080',
      accept: '*/*',
      'x-forwarded-for': '192.0.2.10',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'a.localhost:8080',
      'x-real-ip': '192.0.2.10',
      forwarded: 'for=192.0.2.10;proto=http;host="a.localhost:8080"',
      'x-request-id': 'id-1',
    });
    expect(out.filter((_, i) => i % 2 === 0).filter((n) => n === 'x-forwarded-for')).toHaveLength(1);
  });

  it('says https on a TLS socket, brackets IPv6 peers, and unwraps IPv4-mapped ones', () => {
    expect(fields(forwardHeaders(request('/', ['Host', 'a'], '2001:db8::7', true), 'i', null))).toMatchObject({
      'x-forwarded-proto': 'https',
      'x-forwarded-for': '2001:db8::7',
      forwarded: 'for="[2001:db8::7]";proto=https;host="a"',
    });
    expect(fields(forwardHeaders(request('/', ['Host', 'a'], '::ffff:198.51.100.4'), 'i', null))['x-real-ip']).toBe('198.51.100.4');
  });

  it('keeps and appends to a trusted proxy’s fields, and finds the client behind a chain', () => {
    const trusted = parseTrustedProxies(['10.0.0.0/8', '192.0.2.10']);
    const chain = ['Host', 'a', 'X-Forwarded-For', '203.0.113.1, 10.1.1.1', 'X-Forwarded-Proto', 'HTTPS', 'X-Forwarded-Host', 'shop.example', 'Forwarded', 'for=203.0.113.1'];
    expect(fields(forwardHeaders(request('/', chain), 'i', trusted))).toMatchObject({
      'x-forwarded-for': '203.0.113.1, 10.1.1.1, 192.0.2.10',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example',
      'x-real-ip': '203.0.113.1',
      forwarded: 'for=203.0.113.1, for=192.0.2.10;proto=http;host="a"',
    });
    // a peer not on the list is a client like any other
    expect(fields(forwardHeaders(request('/', chain, '198.51.100.9'), 'i', trusted))['x-forwarded-for']).toBe('198.51.100.9');
    // a proto that is neither http nor https is not taken
    expect(fields(forwardHeaders(request('/', ['Host', 'a', 'X-Forwarded-Proto', 'gopher']), 'i', trusted))['x-forwarded-proto']).toBe('http');
  });

  it('parses trusted proxies and refuses what is not an address or CIDR', () => {
    expect(parseTrustedProxies([])).toBeNull();
    const list = parseTrustedProxies(['127.0.0.1', 'fd00::/8'])!;
    expect(list.check('127.0.0.1', 'ipv4')).toBe(true);
    expect(list.check('fd12::1', 'ipv6')).toBe(true);
    for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/8/1', '::1/x']) expect(() => parseTrustedProxies([bad])).toThrow(/not an IP address or CIDR/);
  });
});

describe('absolute-form targets', () => {
  it('route by their authority and reach the app in origin form', () => {
    const req = request('http://b.localhost:8080/p?q=1', ['Host', 'a.localhost']);
    expect(takeAbsoluteTarget(req)).toBe(true);
    expect([req.host, req.url]).toEqual(['b.localhost:8080', '/p?q=1']);
    expect(fields(forwardHeaders(req, 'i', null)).host).toBe('b.localhost:8080');
    for (const [target, url] of [['HTTPS://b.localhost', '/'], ['http://b.localhost?x', '/?x']]) {
      const r = request(target, ['Host', 'a']);
      expect(takeAbsoluteTarget(r)).toBe(true);
      expect([r.host, r.url]).toEqual(['b.localhost', url]);
    }
  });

  it('leave origin form alone and refuse other forms', () => {
    const plain = request('/x', ['Host', 'a']);
    expect(takeAbsoluteTarget(plain)).toBe(true);
    expect([plain.host, plain.url]).toEqual(['a', '/x']);
    expect(takeAbsoluteTarget(request('*', ['Host', 'a'], undefined, false, 'OPTIONS'))).toBe(true);
    for (const bad of ['*', 'ftp://b/x', 'http://user@b/', 'b.localhost:80', 'http:///x']) expect(takeAbsoluteTarget(request(bad, ['Host', 'a'])), bad).toBe(false);
  });
});
