import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHostCpu } from '../../../runtime/instances/host-cpu.ts';

// a directory laid out like /proc: pressure/cpu and stat, rewritten between readings
let proc: string;
beforeEach(() => {
  proc = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-proc-'));
});
afterEach(() => fs.rmSync(proc, { recursive: true, force: true }));

const writePressure = (someUs: number) => {
  fs.mkdirSync(path.join(proc, 'pressure'), { recursive: true });
  fs.writeFileSync(path.join(proc, 'pressure', 'cpu'), `some avg10=0.00 avg60=0.00 avg300=0.00 total=${someUs}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`);
};
// user nice system idle iowait irq softirq steal
const writeStat = (busy: number, idle: number) => fs.writeFileSync(path.join(proc, 'stat'), `cpu  ${busy} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\nintr 0\n`);

describe('host CPU: pressure stall information', () => {
  it('is saturated when tasks waited for a CPU a good part of the window', () => {
    writePressure(1_000_000);
    const cpu = createHostCpu(proc);
    const mark = cpu.mark()!;
    expect(mark.stallUs).toBe(1_000_000);
    // far more stall than any window this test can take: saturated whatever the timing
    writePressure(1_000_000 + 3_600_000_000);
    expect(cpu.saturated(mark)).toBe(true);
  });

  it('is not saturated when no task waited', () => {
    writePressure(5000);
    const cpu = createHostCpu(proc);
    const mark = cpu.mark()!;
    expect(cpu.saturated(mark)).toBe(false);
  });
});

describe('host CPU: /proc/stat when pressure information is missing', () => {
  it('is saturated when no core was idle, not when most were', () => {
    writeStat(1000, 1000);
    const cpu = createHostCpu(proc);
    const mark = cpu.mark()!;
    expect(mark.stallUs).toBeUndefined();
    writeStat(1000 + 20, 1000 + 1);
    expect(cpu.saturated(mark)).toBe(true);
    writeStat(1000 + 5, 1000 + 15);
    expect(cpu.saturated(mark)).toBe(false);
  });

  it('says nothing from a window shorter than a tick', () => {
    writeStat(1000, 1000);
    const cpu = createHostCpu(proc);
    expect(cpu.saturated(cpu.mark()!)).toBe(false);
  });

  it('falls back to /proc/stat when the pressure file stops being readable (psi=0)', () => {
    writePressure(0);
    writeStat(100, 100);
    const cpu = createHostCpu(proc);
    expect(cpu.mark()!.stallUs).toBe(0);
    fs.rmSync(path.join(proc, 'pressure'), { recursive: true });
    expect(cpu.mark()!.allTicks).toBe(200);
  });

  it('has no reading at all without either file', () => {
    expect(createHostCpu(proc).mark()).toBeNull();
  });
});
