// What the numbers were measured on: date, cores, CPU model, and how loaded the machine was.
import fs from 'node:fs';
import os from 'node:os';

export interface HostInfo {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGb: number;
  kernel: string;
  node: string;
}

export function describeHost(): HostInfo {
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: process.version,
  };
}

/** the 1, 5 and 15 minute load averages, as /proc/loadavg says */
export function readLoadAverage(): string {
  try {
    return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return os.loadavg().map((l) => l.toFixed(2)).join(' ');
  }
}
