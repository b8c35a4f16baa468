// One unprivileged host uid per service; the service's gid is the same number (handed out by
// runtime/store/uids.ts, the only place that does).
//
// Default range 2000000000–2000065535 (65 536 services). Why there:
// - regular users live below 60000 (login.defs UID_MAX), systemd's dynamic users at 61184–65519,
//   nobody at 65534;
// - rootless containers get subordinate ranges from /etc/subuid and /etc/subgid, handed out from
//   100000 upward in blocks of 65536 (SUB_UID_MIN..SUB_UID_MAX = 100000..600100000): a range like
//   200000–265535 is exactly where the second user's containers run, and a container process
//   sharing a host uid with a service could signal or ptrace its instances;
// - systemd-nspawn picks private user ranges in 524288–1878982656 (0x80000–0x6FFF0000);
// - above 2^31 some tools treat uids as signed and systemd keeps 0x7FFE0000+ for itself.
// 2000000000 sits in the gap (0x77359400), reads well in `ps`, and `findUidRangeConflicts`
// checks the host's passwd/group/subuid/subgid at start anyway.
//
// System-layer builds map a block of 65 536 host ids per service (see store/uids.ts). Their
// default range, 2013265920–2147352575 (0x78000000–0x7FFDFFFF, 2046 blocks), is above the service
// uids and nspawn's ranges and stops short of 0x7FFE0000, where systemd keeps its own ids.
//
// Images: the sandbox uid must read an image and write nothing of it. Expected on disk: every
// entry owned by root:root, directories 0755, files 0644 (0755 when executable), no setuid/setgid
// bits, no device, fifo or socket. `normalizeImageAccess` makes it so (removing the special
// files a build left); `checkImageAccess` verifies.
// The image's parent directories need only be traversable (o+x) for bubblewrap, which resolves
// bind sources as the service uid; the data dir may be 0711. The service uid never sees the host
// tree itself: inside the sandbox only what is bound exists.
import { constants } from 'node:fs';
import { lchown, lstat, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { UidRange } from '../core/config.ts';
import { CellhostError } from '../core/errors.ts';
import { entryKind, walkInside, type RemovedEntry } from './untrusted-files.ts';

export type { UidRange };

export const DEFAULT_UID_RANGE: Readonly<UidRange> = Object.freeze({ first: 2_000_000_000, last: 2_000_065_535 });

/** "FIRST-LAST" (as a setting) → range; refuses root, nobody and anything past 2^31-1 */
export function parseUidRange(text: string): UidRange {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  const range = m ? { first: Number(m[1]), last: Number(m[2]) } : undefined;
  if (!range || range.first < 1000 || range.last < range.first || range.last > 2_147_483_646) {
    throw new CellhostError('ERR_VALIDATION', `uid range "${text}" must be FIRST-LAST with 1000 ≤ FIRST ≤ LAST < 2147483647`);
  }
  if (range.first <= 65534 && range.last >= 65534) {
    throw new CellhostError('ERR_VALIDATION', `uid range "${text}" contains 65534 (nobody)`);
  }
  return range;
}

/** Host accounts and subordinate id ranges that overlap `range`: each one is a uid the sandbox would share. */
export async function findUidRangeConflicts(range: UidRange, etcDir = '/etc'): Promise<string[]> {
  const conflicts: string[] = [];
  const read = async (name: string): Promise<string> => readFile(path.join(etcDir, name), 'utf8').catch(() => '');
  for (const file of ['passwd', 'group']) {
    for (const line of (await read(file)).split('\n')) {
      const [name, , id] = line.split(':');
      const n = Number(id);
      if (name && Number.isInteger(n) && n >= range.first && n <= range.last) {
        conflicts.push(`/etc/${file}: ${name} has id ${n}`);
      }
    }
  }
  for (const file of ['subuid', 'subgid']) {
    for (const line of (await read(file)).split('\n')) {
      const [name, start, count] = line.split(':');
      const s = Number(start);
      const c = Number(count);
      if (!name || !Number.isInteger(s) || !Number.isInteger(c) || c <= 0) continue;
      if (s <= range.last && s + c - 1 >= range.first) {
        conflicts.push(`/etc/${file}: ${name} owns ${s}-${s + c - 1}`);
      }
    }
  }
  return conflicts;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * Problems that would let `uid` write to the image or stop it from reading it (empty = fine).
 * Symlinks are not followed: inside the sandbox they resolve against the sandbox's own tree.
 */
export async function checkImageAccess(dir: string, uid: number, maxProblems = 20): Promise<string[]> {
  const problems: string[] = [];
  const visit = async (p: string): Promise<void> => {
    if (problems.length >= maxProblems) return;
    const st = await lstat(p);
    const type = st.mode & S_IFMT;
    const rel = path.relative(dir, p) || '.';
    if (type === S_IFLNK) return;
    if (st.uid === uid || st.gid === uid) problems.push(`${rel}: owned by the service's uid/gid ${uid}`);
    if (st.mode & 0o022) problems.push(`${rel}: writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
    if (st.mode & 0o6000) problems.push(`${rel}: setuid/setgid bit set`);
    if (type === S_IFDIR) {
      if ((st.mode & 0o005) !== 0o005) problems.push(`${rel}: directory not readable and searchable by others`);
      for (const name of await readdir(p)) await visit(path.join(p, name));
    } else if (type === S_IFREG) {
      if (!(st.mode & 0o004)) problems.push(`${rel}: file not readable by others`);
    } else {
      problems.push(`${rel}: not a file, directory or symlink`);
    }
  };
  await visit(dir);
  return problems.slice(0, maxProblems);
}

/**
 * Makes an image match what `checkImageAccess` expects: root:root, 0755 dirs, 0644/0755 files,
 * links owned by root and left as they are; FIFOs, sockets and devices are removed (returned, for
 * the build log). Never follows a link: modes and owners are changed through a descriptor opened
 * with O_NOFOLLOW and checked to be the entry that was looked at. Any failure is thrown.
 */
export async function normalizeImageAccess(dir: string): Promise<RemovedEntry[]> {
  const removed: RemovedEntry[] = [];
  await walkInside(dir, async (e) => {
    if (e.st.isSymbolicLink()) {
      await lchown(e.full, 0, 0);
      return;
    }
    if (!e.st.isDirectory() && !e.st.isFile()) {
      await unlink(e.full);
      removed.push({ rel: e.rel, kind: entryKind(e.st) });
      return;
    }
    const handle = await open(e.full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await handle.stat();
      if (st.ino !== e.st.ino || st.dev !== e.st.dev) {
        throw new CellhostError('ERR_SANDBOX_SETUP', `image entry ${e.rel || '.'} changed while it was made read-only`);
      }
      await handle.chown(0, 0);
      await handle.chmod(st.isDirectory() || st.mode & 0o111 ? 0o755 : 0o644);
    } finally {
      await handle.close();
    }
  });
  return removed;
}
