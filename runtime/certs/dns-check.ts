// Before a certificate is ordered: does the name point here? A CA validating a name that points
// elsewhere fails, and its failures count against its rate limits, so the order waits for DNS.
import dns from 'node:dns';
import os from 'node:os';
import type { DnsCheckResult } from '../store/certificates.ts';

/** a record a user creates at their DNS provider */
export interface DnsRecord {
  type: 'A' | 'AAAA' | 'CNAME';
  value: string;
}

export interface DnsChecker {
  /** `target`: the platform name a CNAME may point to (`<service>.<domain>`), or null */
  check(name: string, target: string | null, now: number): Promise<DnsCheckResult>;
  /** the records a user should create for `name`: A/AAAA to this host, or a CNAME to `target` */
  expectedRecords(target: string | null): Promise<DnsRecord[]>;
  /** TXT values of a name (the DNS-01 wait for propagation) */
  txt(name: string): Promise<string[]>;
}

export function createDnsChecker(servers: string[]): DnsChecker {
  const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 2 });
  if (servers.length) resolver.setServers(servers);

  const quiet = async <T>(p: Promise<T[]>): Promise<T[]> => {
    try {
      return await p;
    } catch (err) {
      // no such name or no record of that type: an empty answer, not a failure
      if (['ENODATA', 'ENOTFOUND', 'ENONAME'].includes((err as NodeJS.ErrnoException).code ?? '')) return [];
      throw err;
    }
  };
  const addressesOf = async (name: string) => [...(await quiet(resolver.resolve4(name))), ...(await quiet(resolver.resolve6(name)))];

  function localAddresses(): Set<string> {
    const out = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
    return out;
  }

  /** where this host is reached: its own addresses, and what its platform name resolves to (behind NAT) */
  async function hereAddresses(target: string | null): Promise<Set<string>> {
    const here = localAddresses();
    if (target) for (const a of await addressesOf(target)) here.add(a);
    return here;
  }

  return {
    async check(name, target, now) {
      try {
        return await check(name, target, now);
      } catch (err) {
        return { ok: false, found: [], message: `the DNS lookup of ${name} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): checked again later`, checkedAt: now };
      }
    },
    expectedRecords,
    async txt(name) {
      return (await quiet(resolver.resolveTxt(name))).map((chunks) => chunks.join(''));
    },
  };

  async function check(name: string, target: string | null, now: number): Promise<DnsCheckResult> {
    const cnames = await quiet(resolver.resolveCname(name));
    const cname = cnames[0]?.replace(/\.$/, '').toLowerCase();
    if (cname && target && cname === target) return { ok: true, found: [`CNAME ${cname}`], message: `${name} is a CNAME to ${target}`, checkedAt: now };
    const found = await addressesOf(name);
    const expected = await expectedRecords(target);
    const create = expected.map((r) => `${r.type} ${r.value}`).join(' or ');
    if (!found.length) {
      return { ok: false, found: cname ? [`CNAME ${cname}`] : [], message: `${name} has no A or AAAA record${cname ? ` (its CNAME ${cname} resolves to nothing)` : ''}: create ${create}`, checkedAt: now };
    }
    const here = await hereAddresses(target);
    if (found.some((a) => here.has(a))) return { ok: true, found, message: `${name} points here (${found.join(', ')})`, checkedAt: now };
    return { ok: false, found, message: `${name} points to ${found.join(', ')}, not to this host: create ${create}`, checkedAt: now };
  }

  async function expectedRecords(target: string | null): Promise<DnsRecord[]> {
    const records: DnsRecord[] = [];
    // advice only: a lookup that fails falls back to this host's own addresses
    const platform = target ? await addressesOf(target).catch(() => []) : [];
    const addresses = platform.length
      ? platform
      : Object.values(os.networkInterfaces())
          .flat()
          .filter((a) => a && !a.internal && !a.address.startsWith('fe80:'))
          .map((a) => a!.address);
    for (const a of addresses) records.push({ type: a.includes(':') ? 'AAAA' : 'A', value: a });
    if (target) records.push({ type: 'CNAME', value: target });
    return records;
  }
}
