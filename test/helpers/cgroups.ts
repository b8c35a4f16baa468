// Where a platform with a given cgroup prefix keeps its groups on this host, asked of the driver
// the platform itself would pick (v1: one prefix dir per controller hierarchy; v2: one dir in the
// unified tree), so a leftover check looks in the right place on either.
import fs from 'node:fs';
import { detectCgroupDriver } from '../../runtime/sandbox/cgroups/detect.ts';

const ROOT = '/sys/fs/cgroup';

/** the prefix's directories, one per hierarchy (they need not exist) */
export async function cgroupParentDirs(prefix: string): Promise<readonly string[]> {
  return (await detectCgroupDriver({ root: ROOT, prefix })).parentDirs;
}

/** the prefix's directories that still exist */
export async function existingCgroupParents(prefix: string): Promise<string[]> {
  return (await cgroupParentDirs(prefix)).filter((dir) => fs.existsSync(dir));
}

/** instance and build groups (i-…, b-…) still under the prefix, in any hierarchy, as "dir/name" */
export async function leftoverCgroups(prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const dir of await existingCgroupParents(prefix)) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && /^[ib]-/.test(e.name)) found.push(`${dir}/${e.name}`);
  }
  return found;
}

/**
 * Removes the prefix's (empty) directories: `cellhost doctor` probes the cgroup driver, which
 * makes them, and a probe starts nothing that would remove them.
 */
export async function removeCgroupParents(prefix: string): Promise<void> {
  await (await detectCgroupDriver({ root: ROOT, prefix })).dispose();
}
