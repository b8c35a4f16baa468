// dpkg's database of installed packages (/var/lib/dpkg/status): what a system layer added to the
// host's packages, and a fingerprint of the host's packages to tell when a layer was built on an
// older base (the host was upgraded since).
import crypto from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

export const HOST_DPKG_STATUS = '/var/lib/dpkg/status';

/** installed packages: "name" (or "name:arch" for a foreign architecture) → version */
export type InstalledPackages = Map<string, string>;

export interface PackageChanges {
  added: { name: string; version: string }[];
  upgraded: { name: string; from: string; to: string }[];
  removed: { name: string; version: string }[];
}

/**
 * The installed packages of a status file: stanzas separated by blank lines, a package counts
 * when its Status field's last word is "installed" (not config-files, half-installed, …).
 */
export function parseDpkgStatus(text: string): InstalledPackages {
  const out: InstalledPackages = new Map();
  const archs = new Map<string, number>();
  const stanzas: Record<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$/.exec(line);
      if (m) fields[m[1]!] = m[2]!.trim();
    }
    if (!fields.Package || fields.Status?.split(/\s+/).pop() !== 'installed') continue;
    stanzas.push(fields);
    const arch = fields.Architecture ?? 'all';
    if (arch !== 'all') archs.set(arch, (archs.get(arch) ?? 0) + 1);
  }
  // the native architecture is the one most packages have; others are named "name:arch"
  const native = [...archs].sort((a, b) => b[1] - a[1])[0]?.[0];
  for (const f of stanzas) {
    const arch = f.Architecture ?? 'all';
    const name = arch === 'all' || arch === native ? f.Package! : `${f.Package}:${arch}`;
    out.set(name, f.Version ?? '');
  }
  return out;
}

/** what `layer` installed, upgraded (or downgraded) and removed relative to `host` */
export function diffPackages(host: InstalledPackages, layer: InstalledPackages): PackageChanges {
  const changes: PackageChanges = { added: [], upgraded: [], removed: [] };
  for (const [name, version] of layer) {
    const before = host.get(name);
    if (before === undefined) changes.added.push({ name, version });
    else if (before !== version) changes.upgraded.push({ name, from: before, to: version });
  }
  for (const [name, version] of host) if (!layer.has(name)) changes.removed.push({ name, version });
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  changes.added.sort(byName);
  changes.upgraded.sort(byName);
  changes.removed.sort(byName);
  return changes;
}

/** "hello 2.10-3, libfoo1 1.2 and 3 more" */
export function describePackages(list: ReadonlyArray<{ name: string; version?: string; to?: string }>, max = 8): string {
  const named = list.slice(0, max).map((p) => `${p.name} ${p.version ?? p.to ?? ''}`.trim());
  return named.join(', ') + (list.length > max ? ` and ${list.length - max} more` : '');
}

/** "2 packages added (hello 2.10-3, figlet 2.2.5), 1 upgraded (libsm6 1.2.3 → 1.2.4)"; "no packages changed" */
export function summarizeChanges(c: PackageChanges): string {
  const parts: string[] = [];
  const n = (k: number) => `${k} package${k === 1 ? '' : 's'}`;
  if (c.added.length) parts.push(`${n(c.added.length)} added (${describePackages(c.added)})`);
  if (c.upgraded.length) parts.push(`${n(c.upgraded.length)} upgraded (${describePackages(c.upgraded.map((u) => ({ name: u.name, version: `${u.from} → ${u.to}` })))})`);
  if (c.removed.length) parts.push(`${n(c.removed.length)} removed (${describePackages(c.removed)})`);
  return parts.length ? parts.join(', ') : 'no packages changed';
}

export interface HostPackageState {
  /** sha256 of the host's status file: changes with every package installed, upgraded or removed */
  hash: string;
  text: string;
}

let cached: { key: string; state: HostPackageState } | null = null;

/** The host's package database now (read again only when the file changed). Empty on a host without dpkg. */
export async function readHostPackageState(file = HOST_DPKG_STATUS): Promise<HostPackageState> {
  const st = await stat(file).catch(() => null);
  const key = st ? `${file}:${st.ino}:${st.size}:${st.mtimeMs}` : `${file}:missing`;
  if (cached?.key === key) return cached.state;
  const text = st ? await readFile(file, 'utf8') : '';
  const state = { hash: crypto.createHash('sha256').update(text).digest('hex'), text };
  cached = { key, state };
  return state;
}

let cachedHash: { key: string; hash: string } | null = null;

/**
 * The hash readHostPackageState gives, for pages and API answers: the file (the host's, not an
 * untrusted one) is read again only when its inode, size or mtime changed since the last call.
 */
export function hostPackageHash(file = HOST_DPKG_STATUS): string {
  let key = `${file}:missing`;
  try {
    const st = statSync(file);
    key = `${file}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    // no dpkg on this host: the hash of nothing
  }
  if (cachedHash?.key === key) return cachedHash.hash;
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // as above
  }
  cachedHash = { key, hash: crypto.createHash('sha256').update(text).digest('hex') };
  return cachedHash.hash;
}
