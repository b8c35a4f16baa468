// Where an instance's app listens, found from /proc: the listening TCP sockets owned by the
// instance's process tree, read in the instance's own network namespace. The API does not expose
// the upstream address, and "direct" and nginx must reach the very instance cellhost proxies to.
import fs from 'node:fs';
import { processTree } from '../helpers/host.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function socketInodes(pids: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** "0100007F" (little-endian IPv4) → "127.0.0.1"; 32 hex digits → an IPv6 text, "::" when all zero */
function decodeAddress(hex: string): string {
  if (hex.length === 8) return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  if (/^0+$/.test(hex)) return '::';
  if (/^0{16}FFFF0000/i.test(hex)) return decodeAddress(hex.slice(24));
  return 'ipv6';
}

/** an address of the namespace other than loopback, from its routing trie */
function namespaceAddress(pid: number): string | null {
  const trie = readText(`/proc/${pid}/net/fib_trie`) ?? '';
  const lines = trie.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (!/\/32 host LOCAL/.test(lines[i]!)) continue;
    const m = /\|--\s+([\d.]+)/.exec(lines[i - 1]!);
    if (m && !m[1]!.startsWith('127.')) return m[1]!;
  }
  return null;
}

export function findListenAddress(pid: number): ListenAddress | null {
  const pids = processTree(pid);
  const inodes = socketInodes(pids);
  for (const file of ['tcp', 'tcp6']) {
    const table = readText(`/proc/${pid}/net/${file}`) ?? '';
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [addrHex, portHex] = f[1]!.split(':') as [string, string];
      const port = parseInt(portHex, 16);
      const addr = decodeAddress(addrHex);
      if (addr !== '0.0.0.0' && addr !== '::') return addr === 'ipv6' ? null : { host: addr, port };
      const sameNetns = readLink(`/proc/${pid}/ns/net`) === readLink('/proc/self/ns/net');
      const host = sameNetns ? '127.0.0.1' : namespaceAddress(pid);
      return host ? { host, port } : null;
    }
  }
  return null;
}

function readLink(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}
