import { describe, expect, it } from 'vitest';
import { parseSubnet } from '../../../runtime/sandbox/netns-addr.ts';
import { buildIptablesRestore, buildNftRuleset, EGRESS_BLOCKED, nftTableName } from '../../../runtime/sandbox/netns-firewall.ts';

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
    expect(rules).toContain('iifname "ch-v*" meta nfproto ipv6 drop');
    expect(rules).toContain('oifname "ch-v*" ct state established,related accept\n    oifname "ch-v*" drop');
  });

  it('drops the pool subnet, then private and special ranges; DNS to the nameservers and allowed ranges first', () => {
    const text = buildNftRuleset({ ...opts, egressAllow: ['192.168.1.0/24', '10.1.0.0/16'], nameservers: ['10.255.255.53', '192.168.1.1'] });
    const at = (needle: string) => {
      const i = text.indexOf(needle);
      expect(i, needle).toBeGreaterThan(0);
      return i;
    };
    const subnet = at('iifname "ch-v*" ip daddr 10.213.0.0/16 drop');
    const dnsUdp = at('iifname "ch-v*" ip daddr { 10.255.255.53, 192.168.1.1 } udp dport 53 accept');
    const dnsTcp = at('iifname "ch-v*" ip daddr { 10.255.255.53, 192.168.1.1 } tcp dport 53 accept');
    const allowed = [at('iifname "ch-v*" ip daddr 192.168.1.0/24 accept'), at('iifname "ch-v*" ip daddr 10.1.0.0/16 accept')];
    const blocked = at(`iifname "ch-v*" ip daddr { ${EGRESS_BLOCKED.join(', ')} } drop`);
    expect(subnet).toBeLessThan(Math.min(dnsUdp, dnsTcp, ...allowed));
    expect(Math.max(dnsUdp, dnsTcp, ...allowed)).toBeLessThan(blocked);
    for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '224.0.0.0/4']) expect(EGRESS_BLOCKED).toContain(range);
    // nothing to accept: no empty set (an nft syntax error)
    expect(rules).not.toContain('{  }');
    expect(rules).not.toContain('dport 53');
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
    expect(text).toContain('-A CH-ch-FWD -i ch-v+ -d 10.213.0.0/16 -j DROP');
    expect(text).toContain('-A CH-ch-NAT -s 10.213.0.0/16 ! -o ch-v+ -j MASQUERADE');
    // every rule line is either in one of our chains or a jump into one
    for (const line of text.split('\n').filter((l) => /^-[AI] /.test(l))) {
      expect(line).toMatch(/(-A CH-ch-|-j CH-ch-)/);
    }
  });
});

describe('buildIptablesRestore egress', () => {
  it('accepts DNS and allowed ranges before it drops private ranges', () => {
    const lines = buildIptablesRestore({ ...opts, egressAllow: ['192.168.1.0/24'], nameservers: ['10.255.255.53'] }).split('\n');
    const at = (l: string) => {
      const i = lines.indexOf(l);
      expect(i, l).toBeGreaterThan(0);
      return i;
    };
    const subnet = at('-A CH-ch-FWD -i ch-v+ -d 10.213.0.0/16 -j DROP');
    const dns = at('-A CH-ch-FWD -i ch-v+ -d 10.255.255.53/32 -p udp --dport 53 -j ACCEPT');
    at('-A CH-ch-FWD -i ch-v+ -d 10.255.255.53/32 -p tcp --dport 53 -j ACCEPT');
    const allowed = at('-A CH-ch-FWD -i ch-v+ -d 192.168.1.0/24 -j ACCEPT');
    const lan = at('-A CH-ch-FWD -i ch-v+ -d 192.168.0.0/16 -j DROP');
    const out = at('-A CH-ch-FWD -i ch-v+ -j ACCEPT');
    expect(subnet).toBeLessThan(dns);
    expect(dns).toBeLessThan(lan);
    expect(allowed).toBeLessThan(lan);
    expect(lan).toBeLessThan(out);
  });
});
