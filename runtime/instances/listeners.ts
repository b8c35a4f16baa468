// Where a starting app listens, when it does not listen where it should. Read from /proc, as
// `ss -ltnp` does, without spawning anything: the TCP tables of the app's network namespace
// (/proc/<pid>/net/tcp and tcp6 of a process in it) and the sockets its processes hold
// (/proc/<pid>/fd → socket:[inode]). Only the app's own sockets count, so the same code works with
// a namespace per instance and without one (where the table is the host's).
//
// It costs a few small reads per process, and is only asked while a start has waited a while:
// never on a request's path once an app is up.
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface Listener {
  /** the local address as the app bound it: 0.0.0.0, ::, 127.0.0.1, ... */
  address: string;
  port: number;
}

const LISTEN = '0A';

/** an address from /proc/net/tcp{,6}: hex words in host byte order (little-endian here) */
function decodeAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  // IPv4-mapped (::ffff:a.b.c.d) reads as the IPv4 address
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const text = groups.join(':');
  // the longest run of zero groups as "::" (enough for the cases that matter: ::, ::1)
  const m = /(^|:)0(:0)+(:|$)/.exec(text);
  return m ? `${text.slice(0, m.index)}::${text.slice(m.index + m[0].length)}` : text;
}

/** the listening sockets of a /proc/net/tcp or tcp6 table: address, port and socket inode */
export function parseTcpTable(text: string): (Listener & { inode: string })[] {
  const out: (Listener & { inode: string })[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [addr, port] = f[1]!.split(':');
    out.push({ address: decodeAddress(addr!), port: parseInt(port!, 16), inode: f[9]! });
  }
  return out;
}

/** the pid and every descendant (through each thread's children list) */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 512; i++) {
    const p = out[i]!;
    const tids = await readdir(`/proc/${p}/task`).catch(() => [] as string[]);
    for (const t of tids) {
      const children = await readFile(`/proc/${p}/task/${t}/children`, 'utf8').catch(() => '');
      for (const c of children.split(' ').filter(Boolean)) out.push(Number(c));
    }
  }
  return out;
}

/** the socket inodes a process holds */
async function socketInodes(pid: number, into: Set<string>): Promise<void> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) into.add(m[1]!);
    }),
  );
}

/** the TCP sockets the process tree under `rootPid` listens on (empty when it is gone) */
export async function listeningSockets(rootPid: number): Promise<Listener[]> {
  if (rootPid <= 0) return [];
  const pids = await processTree(rootPid);
  const inodes = new Set<string>();
  await Promise.all(pids.map((p) => socketInodes(p, inodes)));
  if (!inodes.size) return [];
  // the tables of the network namespace the tree is in (the instance's own, where it has one)
  const tables = await Promise.all(['tcp', 'tcp6'].map((t) => readFile(`/proc/${rootPid}/net/${t}`, 'utf8').catch(() => '')));
  const seen = new Set<string>();
  const out: Listener[] = [];
  for (const l of tables.flatMap(parseTcpTable)) {
    const key = `${l.address}|${l.port}`;
    if (!inodes.has(l.inode) || seen.has(key)) continue;
    seen.add(key);
    out.push({ address: l.address, port: l.port });
  }
  return out.sort((a, b) => a.port - b.port);
}

const isWildcard = (a: string) => a === '0.0.0.0' || a === '::';
const isLoopback = (a: string) => a.startsWith('127.') || a === '::1';

/**
 * What is wrong with where the app listens, for the service's log, the visitor and the console;
 * null when nothing is (it does not listen yet, or it listens where the platform connects).
 * `expected`: where the platform connects; `servicePort`: the service's setting. The two differ
 * without network namespaces, where each instance gets a free port in $PORT.
 */
export function describeListenProblem(listeners: readonly Listener[], expected: { host: string; port: number }, servicePort: number): string | null {
  if (!listeners.length) return null;
  const reachable = (l: Listener) => l.port === expected.port && (isWildcard(l.address) || l.address === expected.host || (isLoopback(l.address) && isLoopback(expected.host)));
  if (listeners.some(reachable)) return null;
  const onPort = listeners.filter((l) => l.port === expected.port);
  if (onPort.length) {
    const where = onPort.map((l) => `${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}`).join(', ');
    return `the app listens on ${where}, an address only reachable from inside its own sandbox: listen on 0.0.0.0:${expected.port} (all addresses), e.g. --host 0.0.0.0`;
  }
  const ports = [...new Set(listeners.map((l) => l.port))];
  const listed = ports.map((p) => `:${p}`).join(', ');
  if (expected.port === servicePort) {
    const suggestion = ports.length === 1 ? `set the port to ${ports[0]} or listen on $PORT` : 'set the port to the one it serves on, or listen on $PORT';
    return `the app listens on ${listed}; this service's port is ${servicePort} — ${suggestion}`;
  }
  return `the app listens on ${listed}; on this host (no network namespaces) each instance gets its own port in $PORT (${expected.port} for this one) — listen on $PORT`;
}
