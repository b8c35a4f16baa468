// Pure pieces of the namespace pool: address plan, names, bandwidth and shaping parameters.
import { CellhostError } from '../core/errors.ts';

export interface Subnet {
  /** network address as an unsigned 32-bit number */
  base: number;
  prefixLen: number;
  text: string;
}

export function ipToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new CellhostError('ERR_VALIDATION', `"${ip}" is not an IPv4 address`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** "10.213.0.0/16" → Subnet; the address must be the network's first (no host bits) and /8–/30 */
export function parseSubnet(text: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  const prefixLen = m ? Number(m[2]) : NaN;
  if (!m || prefixLen < 8 || prefixLen > 30) {
    throw new CellhostError('ERR_VALIDATION', `subnet "${text}" must be IPv4 CIDR between /8 and /30`);
  }
  const base = ipToNumber(m[1]!);
  if (base % 2 ** (32 - prefixLen) !== 0) {
    throw new CellhostError('ERR_VALIDATION', `subnet "${text}" has host bits set`);
  }
  return { base, prefixLen, text: `${numberToIp(base)}/${prefixLen}` };
}

/** how many /30s (one per namespace) the subnet holds */
export function slotCount(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefixLen) / 4;
}

/** slot i's /30: .0 network, .1 the host end, .2 the app, .3 broadcast */
export function slotAddrs(subnet: Subnet, index: number): { hostAddr: string; appAddr: string } {
  if (!Number.isInteger(index) || index < 0 || index >= slotCount(subnet)) {
    throw new CellhostError('ERR_NETNS_SETUP', `slot ${index} is outside ${subnet.text}`);
  }
  const net = subnet.base + index * 4;
  return { hostAddr: numberToIp(net + 1), appAddr: numberToIp(net + 2) };
}

export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefixLen) - 1;
  const bEnd = b.base + 2 ** (32 - b.prefixLen) - 1;
  return a.base <= bEnd && b.base <= aEnd;
}

/** prefixes name everything the pool owns; short so `<prefix>-v<index>` fits IFNAMSIZ (15) */
export const PREFIX_PATTERN = /^[a-z][a-z0-9]{0,5}$/;

export function assertPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new CellhostError('ERR_VALIDATION', `netns prefix "${prefix}" must be 1–6 lowercase letters/digits, starting with a letter`);
  }
}

export function nsName(prefix: string, index: number): string {
  return `${prefix}-ns${index}`;
}

export function hostIfName(prefix: string, index: number): string {
  return `${prefix}-v${index}`;
}

/** the slot index of a namespace or veth this prefix owns, or undefined for anything else */
export function parseOwnedName(prefix: string, kind: 'ns' | 'if', name: string): number | undefined {
  const m = new RegExp(`^${prefix}-${kind === 'ns' ? 'ns' : 'v'}(\\d{1,5})$`).exec(name);
  return m ? Number(m[1]) : undefined;
}

/** bandwidth follows memory as CPU does: 1000 Mbit/s per 1769 MB, never below 64 Mbit/s */
export function bandwidthForMemory(memoryMb: number): number {
  return Math.max(64, Math.round((1000 * memoryMb) / 1769));
}

/**
 * tbf arguments for `rateMbit`. The bucket holds 10 ms of traffic (at least 32 KiB, above
 * rate/HZ for any HZ ≥ 100 at these rates) so short bursts pass and long transfers run at the
 * rate; 20 ms of queue before tbf drops, which keeps added latency small.
 */
export function tbfArgs(rateMbit: number): string[] {
  if (!Number.isFinite(rateMbit) || rateMbit <= 0) {
    throw new CellhostError('ERR_NETNS_SETUP', `bandwidth must be positive, got ${rateMbit}`);
  }
  const bytesPerSecond = (rateMbit * 1_000_000) / 8;
  const burst = Math.max(32 * 1024, Math.ceil(bytesPerSecond / 100));
  return ['tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '20ms'];
}

/**
 * The IPv4 nameservers of a resolv.conf. A loopback one (systemd-resolved's 127.0.0.53) is not
 * usable from a namespace, whose loopback is its own: it is returned apart, for a warning.
 */
export function parseNameservers(resolvConf: string): { usable: string[]; loopback: string[] } {
  const usable: string[] = [];
  const loopback: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    let n: number;
    try {
      n = ipToNumber(m[1]!);
    } catch {
      continue; // IPv6: instances have no IPv6 route
    }
    const list = Math.floor(n / 2 ** 24) === 127 ? loopback : usable;
    if (!list.includes(m[1]!)) list.push(m[1]!);
  }
  return { usable, loopback };
}
