// What a platform run may leave on the host after it stopped: processes still in its cgroups,
// bubblewrap sandboxes that name its dirs, instance cgroups, network namespaces.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { leftoverCgroups } from '../helpers/cgroups.ts';

export interface HostLeftovers {
  /** pids whose cgroup is under the platform's prefix, with their command */
  processes: { pid: number; comm: string }[];
  /** bwrap processes whose command line names the data dir or the host run dir */
  sandboxes: number[];
  /** instance or build cgroups (i-*, b-*) still under the prefix, in any hierarchy */
  cgroups: string[];
  /** network namespaces named with the platform's prefix */
  netns: string[];
}

function listPids(): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    // the process ended while we looked
    return '';
  }
}

export async function findHostLeftovers(opts: { cgroupPrefix: string; netnsPrefix: string; dirs: string[] }): Promise<HostLeftovers> {
  const inPrefix = new RegExp(`:/${opts.cgroupPrefix}(/|$)`, 'm');
  const processes: HostLeftovers['processes'] = [];
  const sandboxes: number[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    if (inPrefix.test(readProc(pid, 'cgroup'))) processes.push({ pid, comm: readProc(pid, 'comm').trim() });
    if (readProc(pid, 'comm').trim() === 'bwrap') {
      const cmdline = readProc(pid, 'cmdline').split('\0');
      if (cmdline.some((arg) => opts.dirs.some((d) => arg.startsWith(d)))) sandboxes.push(pid);
    }
  }
  const cgroups = await leftoverCgroups(opts.cgroupPrefix);
  let netns: string[] = [];
  try {
    netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith(opts.netnsPrefix + '-'));
  } catch {
    // no iproute2: nothing of ours can exist either
  }
  return { processes, sandboxes, cgroups, netns };
}

export function isLeftoverFree(l: HostLeftovers): boolean {
  return !l.processes.length && !l.sandboxes.length && !l.cgroups.length && !l.netns.length;
}
