// A custom domain is taken exactly as a CA issues it and a browser sends it: each way to be
// wrong is refused with its own code and a message that says what to send instead.
import { describe, expect, it } from 'vitest';
import { checkDomainName } from '../../../runtime/core/names.ts';

describe('checkDomainName', () => {
  it.each([
    ['app.example.com'],
    ['a.b.c.example.co.uk'],
    ['xn--bcher-kva.de'],
    ['1.2.3.example'],
    ['a-b.example.com'],
    [`${'a'.repeat(63)}.example.com`],
  ])('accepts %s', (name) => expect(checkDomainName(name)).toBeNull());

  it.each([
    ['', 'ERR_DOMAIN_INVALID', /empty/],
    [`${'a'.repeat(50)}.`.repeat(5) + 'com', 'ERR_DOMAIN_TOO_LONG', /258 characters long/],
    ['example.com.', 'ERR_DOMAIN_TRAILING_DOT', /"example.com"/],
    ['*.example.com', 'ERR_DOMAIN_WILDCARD', /wildcard/],
    ['192.0.2.1', 'ERR_DOMAIN_IP', /IP address/],
    ['2001:db8::1', 'ERR_DOMAIN_IP', /IP address/],
    ['[2001:db8::1]', 'ERR_DOMAIN_IP', /IP address/],
    ['bücher.de', 'ERR_DOMAIN_NOT_PUNYCODE', /xn--bcher-kva\.de/],
    ['App.Example.com', 'ERR_DOMAIN_UPPERCASE', /"app\.example\.com"/],
    ['localhost', 'ERR_DOMAIN_INVALID', /single label/],
    ['a..example.com', 'ERR_DOMAIN_INVALID', /label ""/],
    ['-a.example.com', 'ERR_DOMAIN_INVALID', /"-a"/],
    ['a_b.example.com', 'ERR_DOMAIN_INVALID', /"a_b"/],
    [`${'a'.repeat(64)}.example.com`, 'ERR_DOMAIN_INVALID', /1–63/],
    ['xn--zz.example', 'ERR_DOMAIN_INVALID', /punycode/],
    ['example.123', 'ERR_DOMAIN_INVALID', /numeric/],
  ])('refuses %j with %s', (name, code, message) => {
    const err = checkDomainName(name);
    expect(err?.code).toBe(code);
    expect(err?.status).toBe(400);
    expect(err?.message).toMatch(message);
  });
});
