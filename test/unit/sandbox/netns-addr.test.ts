import { describe, expect, it } from 'vitest';
import {
  bandwidthForMemory,
  hostIfName,
  nsName,
  parseNameservers,
  parseOwnedName,
  parseSubnet,
  slotAddrs,
  slotCount,
  subnetsOverlap,
  tbfArgs,
} from '../../../runtime/sandbox/netns-addr.ts';

describe('address plan', () => {
  it('gives each namespace a /30: host end .1, app .2', () => {
    const s = parseSubnet('10.213.0.0/16');
    expect(slotCount(s)).toBe(16384);
    expect(slotAddrs(s, 0)).toEqual({ hostAddr: '10.213.0.1', appAddr: '10.213.0.2' });
    expect(slotAddrs(s, 1)).toEqual({ hostAddr: '10.213.0.5', appAddr: '10.213.0.6' });
    expect(slotAddrs(s, 16383)).toEqual({ hostAddr: '10.213.255.253', appAddr: '10.213.255.254' });
    expect(() => slotAddrs(s, 16384)).toThrow(/outside/);
  });

  it('refuses malformed subnets', () => {
    for (const bad of ['10.213.0.1/16', '10.213.0.0/31', '10.213.0.0/7', '10.213.0/16', '300.1.1.0/24', 'x']) {
      expect(() => parseSubnet(bad), bad).toThrow();
    }
  });

  it('detects overlap', () => {
    const pool = parseSubnet('10.213.0.0/16');
    expect(subnetsOverlap(pool, parseSubnet('10.0.0.0/8'))).toBe(true);
    expect(subnetsOverlap(pool, parseSubnet('10.213.5.0/24'))).toBe(true);
    expect(subnetsOverlap(pool, parseSubnet('10.214.0.0/16'))).toBe(false);
    expect(subnetsOverlap(pool, parseSubnet('192.168.0.0/16'))).toBe(false);
  });
});

describe('names', () => {
  it('fit IFNAMSIZ at the largest index and the longest prefix', () => {
    expect(hostIfName('abcdef', 16383).length).toBeLessThanOrEqual(15);
    expect(nsName('ch', 3)).toBe('ch-ns3');
  });

  it('are recognised only for their own prefix', () => {
    expect(parseOwnedName('ch', 'if', 'ch-v12')).toBe(12);
    expect(parseOwnedName('ch', 'ns', 'ch-ns7')).toBe(7);
    expect(parseOwnedName('ch', 'if', 'cht-v12')).toBeUndefined();
    expect(parseOwnedName('cht', 'if', 'ch-v12')).toBeUndefined();
    expect(parseOwnedName('ch', 'if', 'ch-v12x')).toBeUndefined();
    expect(parseOwnedName('ch', 'ns', 'ch-v1')).toBeUndefined();
  });
});

describe('bandwidthForMemory', () => {
  it('is 1000 Mbit/s per 1769 MB with a 64 Mbit/s floor', () => {
    expect(bandwidthForMemory(100)).toBe(64);
    expect(bandwidthForMemory(128)).toBe(72);
    expect(bandwidthForMemory(256)).toBe(145);
    expect(bandwidthForMemory(1769)).toBe(1000);
    expect(bandwidthForMemory(3538)).toBe(2000);
    expect(bandwidthForMemory(7076)).toBe(4000);
  });
});

describe('tbfArgs', () => {
  it('holds 10 ms of traffic in the bucket, at least 32 KiB', () => {
    expect(tbfArgs(10)).toEqual(['tbf', 'rate', '10mbit', 'burst', String(32 * 1024), 'latency', '20ms']);
    expect(tbfArgs(64)).toEqual(['tbf', 'rate', '64mbit', 'burst', '80000', 'latency', '20ms']);
    expect(tbfArgs(1000)).toEqual(['tbf', 'rate', '1000mbit', 'burst', '1250000', 'latency', '20ms']);
    expect(() => tbfArgs(0)).toThrow();
  });
});

describe('parseNameservers', () => {
  it('keeps IPv4 nameservers, sets loopback ones apart, skips IPv6 and the rest', () => {
    const text = '# generated\nsearch lan\nnameserver 10.255.255.53\nnameserver ::1\nnameserver 127.0.0.53\n  nameserver 192.168.1.1 \nnameserver 10.255.255.53\noptions edns0\n';
    expect(parseNameservers(text)).toEqual({ usable: ['10.255.255.53', '192.168.1.1'], loopback: ['127.0.0.53'] });
    expect(parseNameservers('')).toEqual({ usable: [], loopback: [] });
  });
});
