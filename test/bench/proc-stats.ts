// What the kernel says a process or a group of processes used: /proc for the platform process,
// cgroup v1 cpuacct for the app instances (each instance is a group under the platform's prefix).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function readRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

/** user + system CPU time of a process (all its threads), in clock ticks */
export function readCpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat; f starts at field 3
  return Number(f[11]) + Number(f[12]);
}

let hz: Promise<number> | null = null;
export function clockTicksPerS(): Promise<number> {
  hz ??= new Promise((resolve) => execFile('getconf', ['CLK_TCK'], { timeout: 5000 }, (err, out) => resolve(err ? 100 : Number(out.trim()) || 100)));
  return hz;
}

/** total CPU time of every instance group under the platform's cgroup prefix (v1 cpuacct), or null */
export function readInstancesCpuMs(prefix: string): number | null {
  const dir = path.join('/sys/fs/cgroup/cpuacct', prefix);
  let names: string[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return null;
  }
  let ns = 0;
  for (const name of names) {
    try {
      ns += Number(fs.readFileSync(path.join(dir, name, 'cpuacct.usage'), 'utf8'));
    } catch {
      // the group went away meanwhile
    }
  }
  return ns / 1e6;
}
