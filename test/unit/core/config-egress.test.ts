import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig } from '../../../runtime/core/config.ts';

describe('CELLHOST_EGRESS_ALLOW', () => {
  it('is empty by default', () => {
    expect(loadConfig({ env: {} }).egressAllow).toEqual([]);
  });

  it('takes comma-separated IPv4 CIDRs and single addresses, and print-config shows them', () => {
    const config = loadConfig({ env: { CELLHOST_EGRESS_ALLOW: ' 192.168.1.0/24, 10.0.0.5 ,' } });
    expect(config.egressAllow).toEqual(['192.168.1.0/24', '10.0.0.5/32']);
    expect(redactConfig(config).egressAllow).toEqual(['192.168.1.0/24', '10.0.0.5/32']);
    expect(loadConfig({ flags: { 'egress-allow': '172.16.0.0/12' } }).egressAllow).toEqual(['172.16.0.0/12']);
  });

  it('refuses IPv6, malformed ranges and host bits with the setting named', () => {
    expect(() => loadConfig({ env: { CELLHOST_EGRESS_ALLOW: 'fd00::/8' } })).toThrow(/CELLHOST_EGRESS_ALLOW.*IPv6/);
    expect(() => loadConfig({ env: { CELLHOST_EGRESS_ALLOW: '192.168.1.300/24' } })).toThrow(/CELLHOST_EGRESS_ALLOW/);
    expect(() => loadConfig({ env: { CELLHOST_EGRESS_ALLOW: '192.168.1.0/33' } })).toThrow(/CELLHOST_EGRESS_ALLOW/);
    expect(() => loadConfig({ env: { CELLHOST_EGRESS_ALLOW: '192.168.1.1/24' } })).toThrow(/host bits/);
  });
});
