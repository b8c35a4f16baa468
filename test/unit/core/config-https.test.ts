// The HTTPS settings: on by default only for a public domain when running as root, "off" wins,
// bad values are refused with the setting's name.
import { describe, expect, it } from 'vitest';
import { LETS_ENCRYPT, loadConfig, redactConfig } from '../../../runtime/core/config.ts';

const load = (env: Record<string, string>, isRoot = false) => loadConfig({ env, isRoot, cwd: '/tmp' });

describe('HTTPS config', () => {
  it('listens on 0.0.0.0:443 by default only for a public domain as root', () => {
    expect(load({}, true).https).toBeNull();
    expect(load({ CELLHOST_DOMAIN: 'apps.localhost' }, true).https).toBeNull();
    expect(load({ CELLHOST_DOMAIN: 'apps.example.com' }, false).https).toBeNull();
    expect(load({ CELLHOST_DOMAIN: 'apps.example.com' }, true).https).toEqual({ host: '0.0.0.0', port: 443 });
    expect(load({ CELLHOST_DOMAIN: 'apps.example.com', CELLHOST_HTTPS_ADDR: 'off' }, true).https).toBeNull();
    expect(load({ CELLHOST_HTTPS_ADDR: '127.0.0.1:8443' }).https).toEqual({ host: '127.0.0.1', port: 8443 });
  });

  it('reads the ACME settings, with Let\'s Encrypt and both single-name challenges by default', () => {
    const c = load({});
    expect(c.acme).toEqual({ directory: LETS_ENCRYPT, email: undefined, caFile: undefined, dnsHook: undefined, challenges: ['http-01', 'tls-alpn-01'] });
    const d = load({
      CELLHOST_ACME_DIRECTORY: 'https://127.0.0.1:14000/dir',
      CELLHOST_ACME_EMAIL: 'ops@example.com',
      CELLHOST_ACME_CA_FILE: '/etc/pebble.pem',
      CELLHOST_ACME_DNS_HOOK: '/usr/local/bin/dns-hook',
      CELLHOST_ACME_CHALLENGES: 'tls-alpn-01',
      CELLHOST_TLS_CERT: '/c.pem',
      CELLHOST_TLS_KEY: '/k.pem',
      CELLHOST_DNS_RESOLVER: '127.0.0.1:8053, [::1]:53',
    });
    expect(d.acme).toEqual({ directory: 'https://127.0.0.1:14000/dir', email: 'ops@example.com', caFile: '/etc/pebble.pem', dnsHook: '/usr/local/bin/dns-hook', challenges: ['tls-alpn-01'] });
    expect(d.tls).toEqual({ cert: '/c.pem', key: '/k.pem' });
    expect(d.dnsResolvers).toEqual(['127.0.0.1:8053', '[::1]:53']);
    expect(redactConfig(d).https).toBe('off');
  });

  it('refuses bad values, naming the setting', () => {
    expect(() => load({ CELLHOST_HTTPS_ADDR: 'yes' })).toThrow(/CELLHOST_HTTPS_ADDR/);
    expect(() => load({ CELLHOST_ACME_CHALLENGES: 'dns-01' })).toThrow(/CELLHOST_ACME_CHALLENGES/);
    expect(() => load({ CELLHOST_ACME_DIRECTORY: 'not a url' })).toThrow(/CELLHOST_ACME_DIRECTORY/);
    expect(() => load({ CELLHOST_ACME_EMAIL: 'nobody' })).toThrow(/CELLHOST_ACME_EMAIL/);
    expect(() => load({ CELLHOST_ACME_DNS_HOOK: 'relative/hook' })).toThrow(/CELLHOST_ACME_DNS_HOOK/);
    expect(() => load({ CELLHOST_TLS_CERT: '/c.pem' })).toThrow(/give both or neither/);
    expect(() => load({ CELLHOST_DNS_RESOLVER: 'dns.example' })).toThrow(/CELLHOST_DNS_RESOLVER/);
  });
});
