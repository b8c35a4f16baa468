// Whether the host's CPUs were all busy over a short window. The pool asks before it scales a
// service out past warm instances that are turning requests over quickly: a start takes about a
// core for tens of ms, and on a host with no core to spare it only slows the instances serving
// (measured on 2 cores: a second instance during a 200-request burst made it 30 % slower).
import fs from 'node:fs';

export interface CpuMark {
  atMs: number;
  /** /proc/pressure/cpu "some" total, µs: time at least one task waited for a CPU */
  stallUs?: number;
  /** /proc/stat's first line, ticks */
  idleTicks?: number;
  allTicks?: number;
}

export interface HostCpu {
  mark(): CpuMark | null;
  /** since the mark, tasks waited for a CPU a good part of the time (or no core was idle) */
  saturated(since: CpuMark): boolean;
}

/** share of the window in which some task waited for a CPU; idle hosts stay under 5 % */
export const STALL_SATURATED = 0.15;
/** without pressure information: idle share of all cores' ticks at or below this */
export const IDLE_SATURATED = 0.1;

export function createHostCpu(procDir = '/proc'): HostCpu {
  const pressureFile = `${procDir}/pressure/cpu`;
  const statFile = `${procDir}/stat`;
  // PSI can be compiled out or off (psi=0): the file is then missing or unreadable
  let usePressure = readStall(pressureFile) !== null;

  function readStall(file: string): number | null {
    try {
      const m = /^some .*total=(\d+)/m.exec(fs.readFileSync(file, 'utf8'));
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  }

  function readStat(): { idle: number; all: number } | null {
    try {
      const text = fs.readFileSync(statFile, 'utf8');
      const fields = text.slice(0, text.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
      if (fields.length < 5 || fields.some((n) => !Number.isFinite(n))) return null;
      // idle + iowait are the ticks no task wanted the CPU
      return { idle: fields[3]! + fields[4]!, all: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  }

  function mark(): CpuMark | null {
    const atMs = performance.now();
    if (usePressure) {
      const stallUs = readStall(pressureFile);
      if (stallUs !== null) return { atMs, stallUs };
      usePressure = false;
    }
    const stat = readStat();
    return stat ? { atMs, idleTicks: stat.idle, allTicks: stat.all } : null;
  }

  return {
    mark,
    saturated(since) {
      const now = mark();
      if (!now) return false;
      if (since.stallUs !== undefined && now.stallUs !== undefined) {
        const windowUs = (now.atMs - since.atMs) * 1000;
        return windowUs > 0 && (now.stallUs - since.stallUs) / windowUs >= STALL_SATURATED;
      }
      if (since.allTicks !== undefined && now.allTicks !== undefined) {
        const all = now.allTicks - since.allTicks;
        // a window shorter than a tick on every core says nothing
        return all > 0 && (now.idleTicks! - since.idleTicks!) / all <= IDLE_SATURATED;
      }
      return false;
    },
  };
}
