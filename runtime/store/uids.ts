// The one place a service gets its host uid (its gid is the same number). Builds and instances
// run as it, and a build leaves files owned by it (its cache, and until the image is sealed, the
// image). So a uid is never shared and never handed on soon: a new service takes one past the
// highest in use or recently retired, and a deleted service's uid stays retired for a grace
// period, in which no new service (whatever its name) gets it. Past the top of the range the
// lowest uid neither in use nor retired is taken.
import { CellhostError } from '../core/errors.ts';
import type { UidRange } from '../core/config.ts';
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

export interface UidStore {
  /** a uid for a service: none in use, none retired within the grace period. Call inside the
   *  transaction that stores it. */
  allocate(range: UidRange, now: string): number;
  /** the uid of a service being deleted: not handed out again for the grace period */
  retire(uid: number, service: string, now: string): void;
}

export function createUidStore(db: Db): UidStore {
  const q = {
    inUse: db.prepare<[], { uid: number }>('SELECT uid FROM services WHERE uid IS NOT NULL'),
    retired: db.prepare<[string], { uid: number }>('SELECT uid FROM retired_uids WHERE retired_at > ?'),
    expire: db.prepare<[string]>('DELETE FROM retired_uids WHERE retired_at <= ?'),
    retire: db.prepare('INSERT OR REPLACE INTO retired_uids (uid, service, retired_at) VALUES (?, ?, ?)'),
  };
  return {
    allocate(range, now) {
      const cutoff = new Date(Date.parse(now) - UID_RETIREMENT_MS).toISOString();
      q.expire.run(cutoff);
      const taken = new Set([...q.inUse.all(), ...q.retired.all(cutoff)].map((r) => r.uid));
      return pickUid(taken, range);
    },
    retire(uid, service, now) {
      q.retire.run(uid, service, now);
    },
  };
}
