// The one place a service gets its host uid (its gid is the same number). Builds and instances
// run as it, and a build leaves files owned by it (its cache, and until the image is sealed, the
// image). So a uid is never shared and never handed on soon: a new service takes one past the
// highest in use or recently retired, and a deleted service's uid stays retired for a grace
// period, in which no new service (whatever its name) gets it. Past the top of the range the
// lowest uid neither in use nor retired is taken.
//
// A service whose builds install system packages also gets a block of SUBUID_BLOCK host ids of
// its own (its "subuids", from a range apart from the uids), the first time it needs them: its
// system-layer builds run as root in a user namespace that maps ids 0..65535 onto that block, and
// the layer's files are owned by ids in it. Blocks follow the same rules as uids: never shared,
// retired for the same grace period when the service is deleted.
import { CellhostError } from '../core/errors.ts';
import { SUBUID_BLOCK, type UidRange } from '../core/config.ts';
import type { Db } from './db.ts';

/** long enough that anything a deleted service's uid might still own (a process that escaped a
 *  kill, a file a cleanup failed to remove and an operator did not see) is gone or noticed */
export const UID_RETIREMENT_MS = 30 * 24 * 3600 * 1000;

/** one past the highest of `taken` in the range; past the top, the lowest free one */
export function pickUid(taken: ReadonlySet<number>, range: UidRange): number {
  let highest = range.first - 1;
  for (const uid of taken) if (uid >= range.first && uid <= range.last && uid > highest) highest = uid;
  if (highest < range.last) return highest + 1;
  for (let uid = range.first; uid <= range.last; uid++) if (!taken.has(uid)) return uid;
  throw new CellhostError('ERR_SANDBOX_SETUP', `no free uid left in ${range.first}-${range.last} (deleted services' uids are retired for ${UID_RETIREMENT_MS / 86_400_000} days)`, {
    details: { first: range.first, last: range.last },
  });
}

/** the first id of every whole block the range holds */
function blockBases(range: UidRange): { first: number; count: number } {
  return { first: range.first, count: Math.floor((range.last - range.first + 1) / SUBUID_BLOCK) };
}

/** the base of a free block: one past the highest block taken, past the top the lowest free one */
export function pickSubuidBlock(taken: ReadonlySet<number>, range: UidRange): number {
  const { first, count } = blockBases(range);
  const index = (base: number) => (base - first) / SUBUID_BLOCK;
  let highest = -1;
  for (const base of taken) {
    const i = index(base);
    if (Number.isInteger(i) && i >= 0 && i < count && i > highest) highest = i;
  }
  if (highest + 1 < count) return first + (highest + 1) * SUBUID_BLOCK;
  for (let i = 0; i < count; i++) if (!taken.has(first + i * SUBUID_BLOCK)) return first + i * SUBUID_BLOCK;
  throw new CellhostError('ERR_SANDBOX_SETUP', `no free block of ${SUBUID_BLOCK} ids left in ${range.first}-${range.last} for system layers (deleted services' blocks are retired for ${UID_RETIREMENT_MS / 86_400_000} days): widen CELLHOST_SUBUID_RANGE`, {
    details: { first: range.first, last: range.last },
  });
}

export interface UidStore {
  /** a uid for a service: none in use, none retired within the grace period. Call inside the
   *  transaction that stores it. */
  allocate(range: UidRange, now: string): number;
  /** the uid of a service being deleted: not handed out again for the grace period */
  retire(uid: number, service: string, now: string): void;
  /** a block of subuids (its base), the same way; call inside the transaction that stores it */
  allocateSubuids(range: UidRange, now: string): number;
  retireSubuids(base: number, service: string, now: string): void;
}

export function createUidStore(db: Db): UidStore {
  const q = {
    inUse: db.prepare<[], { uid: number }>('SELECT uid FROM services WHERE uid IS NOT NULL'),
    retired: db.prepare<[string], { uid: number }>('SELECT uid FROM retired_uids WHERE retired_at > ?'),
    expire: db.prepare<[string]>('DELETE FROM retired_uids WHERE retired_at <= ?'),
    retire: db.prepare('INSERT OR REPLACE INTO retired_uids (uid, service, retired_at) VALUES (?, ?, ?)'),
    subInUse: db.prepare<[], { base: number }>('SELECT subuid_base AS base FROM services WHERE subuid_base IS NOT NULL'),
    subRetired: db.prepare<[string], { base: number }>('SELECT base FROM retired_subuids WHERE retired_at > ?'),
    subExpire: db.prepare<[string]>('DELETE FROM retired_subuids WHERE retired_at <= ?'),
    subRetire: db.prepare('INSERT OR REPLACE INTO retired_subuids (base, service, retired_at) VALUES (?, ?, ?)'),
  };
  const cutoffFor = (now: string) => new Date(Date.parse(now) - UID_RETIREMENT_MS).toISOString();
  return {
    allocate(range, now) {
      const cutoff = cutoffFor(now);
      q.expire.run(cutoff);
      const taken = new Set([...q.inUse.all(), ...q.retired.all(cutoff)].map((r) => r.uid));
      return pickUid(taken, range);
    },
    retire(uid, service, now) {
      q.retire.run(uid, service, now);
    },
    allocateSubuids(range, now) {
      const cutoff = cutoffFor(now);
      q.subExpire.run(cutoff);
      const taken = new Set([...q.subInUse.all(), ...q.subRetired.all(cutoff)].map((r) => r.base));
      return pickSubuidBlock(taken, range);
    },
    retireSubuids(base, service, now) {
      q.subRetire.run(base, service, now);
    },
  };
}
