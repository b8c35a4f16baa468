import { describe, expect, it } from 'vitest';
import { parseSubnet } from '../../../runtime/sandbox/netns-addr.ts';
import { buildIptablesRestore, buildNftRuleset, nftTableName } from '../../../runtime/sandbox/netns-firewall.ts';

const opts = { prefix: 'ch', subnet: parseSubnet('10.213.0.0/16') };

describe('buildNftRuleset', () => {
  const rules = buildNftRuleset(opts);

  it('replaces the pool table atomically', () => {
    expect(nftTableName('ch')).toBe('cellhost_ch');
    expect(rules.split('\n').slice(0, 3)).toEqual(['table inet cellhost_ch', 'delete table inet cellhost_ch', 'table inet cellhost_ch {']);
  });

  it('walls instances off from each other, the host, metadata and IPv6', () => {
    expect(rules).toContain('iifname "ch-v*" ct state established,related accept\n    iifname "ch-v*" drop');
    expect(rules).toContain('iifname "ch-v*" oifname "ch-v*" drop');
    expect(rules).toContain('iifname "ch-v*" ip daddr 169.254.0.0/16 drop');
    expect(rules).toContain('iifname "ch-v*" meta nfproto ipv6 drop');
    expect(rules).toContain('oifname "ch-v*" ct state established,related accept\n    oifname "ch-v*" drop');
  });

  it('masquerades the pool subnet on the way out only', () => {
    expect(rules).toContain('ip saddr 10.213.0.0/16 oifname != "ch-v*" masquerade');
  });
});

describe('buildIptablesRestore', () => {
  it('creates prefixed chains and jumps, nothing outside them', () => {
    const text = buildIptablesRestore(opts);
    expect(text).toContain(':CH-ch-IN - [0:0]');
    expect(text).toContain('-I INPUT 1 -i ch-v+ -j CH-ch-IN');
    expect(text).toContain('-I FORWARD 1 -j CH-ch-FWD');
    expect(text).toContain('-A CH-ch-FWD -i ch-v+ -o ch-v+ -j DROP');
    expect(text).toContain('-A CH-ch-FWD -i ch-v+ -d 169.254.0.0/16 -j DROP');
    expect(text).toContain('-A CH-ch-NAT -s 10.213.0.0/16 ! -o ch-v+ -j MASQUERADE');
    // every rule line is either in one of our chains or a jump into one
    for (const line of text.split('\n').filter((l) => /^-[AI] /.test(l))) {
      expect(line).toMatch(/(-A CH-ch-|-j CH-ch-)/);
    }
  });
});
