// What the kernel says a process or a group of processes used: /proc for the platform process
// (and nginx), cgroup v1 cpuacct and memory for the app instances (each instance is a group under
// the platform's prefix). CPU costs are what steal time hardly moves: a busy neighbour makes a
// request slower, not the CPU it takes.
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

/**
 * CPU time of a process, all its live threads, in ns (schedstat's time on CPU): fine enough for
 * the 1–2 ms a thaw costs, where utime/stime count 10 ms ticks. Threads that exited are not
 * counted: read it around work done by a long-lived process, as the platform and nginx are.
 */
export function readCpuNs(pid: number): number {
  let ns = 0;
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const tid of tasks) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

/** readCpuNs summed over several processes (nginx's master and workers) */
export function readCpuNsOf(pids: number[]): number {
  return pids.reduce((a, pid) => a + (readCpuNs(pid) || 0), 0);
}

/** one instance's CPU so far (v1 cpuacct), ms; null when its group is gone or there is none */
export function readInstanceCpuMs(prefix: string, instanceId: string): number | null {
  try {
    return Number(fs.readFileSync(path.join('/sys/fs/cgroup/cpuacct', prefix, instanceId, 'cpuacct.usage'), 'utf8')) / 1e6;
  } catch {
    return null;
  }
}

/** instance groups under the prefix whose freezer says FROZEN, with their memory usage (v1) */
export function readFrozenInstances(prefix: string): { id: string; memoryBytes: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join('/sys/fs/cgroup/freezer', prefix), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith('i-')).map((d) => d.name);
  } catch {
    return [];
  }
  const out: { id: string; memoryBytes: number }[] = [];
  for (const id of names) {
    try {
      if (fs.readFileSync(path.join('/sys/fs/cgroup/freezer', prefix, id, 'freezer.state'), 'utf8').trim() !== 'FROZEN') continue;
      out.push({ id, memoryBytes: Number(fs.readFileSync(path.join('/sys/fs/cgroup/memory', prefix, id, 'memory.usage_in_bytes'), 'utf8')) });
    } catch {
      // the group went away meanwhile
    }
  }
  return out;
}
