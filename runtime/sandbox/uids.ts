// One unprivileged host uid per service; the service's gid is the same number.
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
// Images: the sandbox uid must read an image and write nothing of it. Expected on disk: every
// entry owned by root:root, directories 0755, files 0644 (0755 when executable), no setuid/setgid
// bits, no device, fifo or socket. `normalizeImageAccess` makes it so; `checkImageAccess` verifies.
// The image's parent directories need only be traversable (o+x) for bubblewrap, which resolves
// bind sources as the service uid; the data dir may be 0711. The service uid never sees the host
// tree itself: inside the sandbox only what is bound exists.
import { chmod, chown, lchown, lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CellhostError } from '../core/errors.ts';

export interface UidRange {
  first: number;
  last: number;
}

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

/**
 * The uid for a new service: one past the highest uid already taken in the range, so a deleted
 * service's uid (and whatever it may have left behind) is not handed to the next service until the
 * range wraps; after that, the lowest free one.
 */
export function allocateUid(taken: ReadonlySet<number>, range: UidRange = DEFAULT_UID_RANGE): number {
  let highest = range.first - 1;
  for (const uid of taken) if (uid >= range.first && uid <= range.last && uid > highest) highest = uid;
  if (highest < range.last) return highest + 1;
  for (let uid = range.first; uid <= range.last; uid++) if (!taken.has(uid)) return uid;
  throw new CellhostError('ERR_SANDBOX_SETUP', `no free uid left in ${range.first}-${range.last}`, {
    details: { first: range.first, last: range.last },
  });
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

/** Makes an image match what `checkImageAccess` expects: root:root, 0755 dirs, 0644/0755 files. */
export async function normalizeImageAccess(dir: string): Promise<void> {
  const visit = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const type = st.mode & S_IFMT;
    if (type === S_IFLNK) {
      await lchown(p, 0, 0);
      return;
    }
    if (type === S_IFDIR) {
      await chown(p, 0, 0);
      await chmod(p, 0o755);
      const names = await readdir(p);
      // a directory's entries in parallel, directories one level at a time: bounded fan-out
      for (let i = 0; i < names.length; i += 64) {
        await Promise.all(names.slice(i, i + 64).map((n) => visit(path.join(p, n))));
      }
      return;
    }
    if (type === S_IFREG) {
      await chown(p, 0, 0);
      await chmod(p, st.mode & 0o111 ? 0o755 : 0o644);
      return;
    }
    throw new CellhostError('ERR_SANDBOX_SETUP', `image holds ${path.relative(dir, p)}, which is not a file, directory or symlink`);
  };
  await visit(dir);
}
