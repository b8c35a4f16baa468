// The names a platform uses on the host (cgroup prefix, netns prefix, host run dir) belong to
// one running platform at a time: each start reclaims what is left under them, which would kill a
// live platform's instances.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { CellhostError } from '../core/errors.ts';

/**
 * One platform per set of host names (cgroup prefix, netns prefix, host run dir): a second one
 * would reclaim the first's instances as leftovers. The owner's pid and its start time live in
 * the host run dir: after a crash, a pid reused by another process is not taken for the owner.
 */
export function claimHostNames(config: Config): void {
  const file = path.join(config.hostRunDir, 'owner.pid');
  let owner = 0;
  let ownerStart: string | undefined;
  try {
    const [pid, start] = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
    owner = Number(pid);
    // a file from before start times were recorded has none: its live pid still counts
    ownerStart = start;
  } catch {
    // no owner yet
  }
  if (owner && owner !== process.pid && isRunning(owner) && (ownerStart === undefined || startTimeOf(owner) === ownerStart)) {
    throw new CellhostError(
      'ERR_VALIDATION',
      `another cellhost (pid ${owner}) uses the host names of this one (cgroup prefix "${config.cgroupPrefix}", netns prefix "${config.netnsPrefix}", ${config.hostRunDir}): stop it, or give this one its own CELLHOST_CGROUP_PREFIX, CELLHOST_NETNS_PREFIX, CELLHOST_NETNS_SUBNET and CELLHOST_HOST_RUN_DIR`,
    );
  }
  fs.mkdirSync(config.hostRunDir, { recursive: true, mode: 0o755 });
  // explicit: the platform runs with umask 077, and the sandbox uids must walk to the bind stage in it
  fs.chmodSync(config.hostRunDir, 0o755);
  fs.writeFileSync(file, `${process.pid} ${startTimeOf(process.pid) ?? ''}`.trim());
}

/** field 22 of /proc/PID/stat: when the process started, in clock ticks since boot */
function startTimeOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
