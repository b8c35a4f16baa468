import { describe, expect, it } from 'vitest';
import { cpuForMemory } from '../../../runtime/core/cpu-for-memory.ts';
import { createCpuPlacer, formatCpuList, parseCpuList, toQuotaMicros } from '../../../runtime/sandbox/cgroups/cpu.ts';
import { buildJoinArgv } from '../../../runtime/sandbox/cgroups/procs.ts';

describe('cpuForMemory', () => {
  // memory MB, quota (fraction of one core), cores on a 2-core host, cores on a 16-core host
  const table: Array<[number, number, number, number]> = [
    [128, 0.0724, 1, 1],
    [192, 0.1085, 1, 1],
    [256, 0.1447, 1, 1],
    [885, 0.5003, 1, 1],
    [1769, 1.0, 1, 1],
    [3538, 2.0, 2, 2],
    [7076, 4.0, 2, 4],
  ];
  it.each(table)('%i MB → quota %f, %i cores of 2, %i of 16', (mb, quota, coresOf2, coresOf16) => {
    expect(cpuForMemory(mb, 2).quota).toBeCloseTo(quota, 4);
    expect(cpuForMemory(mb, 2).cores).toBe(coresOf2);
    expect(cpuForMemory(mb, 16).cores).toBe(coresOf16);
  });

  it('gives one core even when the host reports none', () => {
    expect(cpuForMemory(128, 0).cores).toBe(1);
  });

  it('turns a fraction into a CFS quota per 100 ms period', () => {
    expect(toQuotaMicros(192 / 1769)).toBe(10854);
    expect(toQuotaMicros(0.5)).toBe(50000);
    expect(toQuotaMicros(2)).toBe(200000);
    expect(toQuotaMicros(0.001)).toBe(1000); // the kernel's floor
    expect(toQuotaMicros(null)).toBeNull();
  });
});

describe('cpu lists', () => {
  it('parses and formats cpuset lists', () => {
    expect(parseCpuList('0-3,6,8-9\n')).toEqual([0, 1, 2, 3, 6, 8, 9]);
    expect(parseCpuList('')).toEqual([]);
    expect(formatCpuList([5, 0, 1, 2, 9])).toBe('0-2,5,9');
  });

  it('picks N cpus the parent has, the lowest first when none holds a group, never more than it has', () => {
    const fresh = () => createCpuPlacer();
    expect(fresh().take('0-7', 2)?.cpus).toBe('0-1');
    expect(fresh().take('2,4-5', 2)?.cpus).toBe('2,4');
    expect(fresh().take('0-1', 4)?.cpus).toBe('0-1');
    expect(fresh().take('', 1)).toBeNull();
  });

  it('spreads groups over the cpus holding the fewest, and counts a released one out once', () => {
    const placer = createCpuPlacer();
    const a = placer.take('0-1', 1)!;
    const b = placer.take('0-1', 1)!;
    expect([a.cpus, b.cpus]).toEqual(['0', '1']);
    // both hold one: the lowest again, then the other
    expect(placer.take('0-1', 1)!.cpus).toBe('0');
    expect(placer.take('0-1', 1)!.cpus).toBe('1');
    // 0: a and the third, 1: b and the fourth; b goes (twice: counted once)
    b.release();
    b.release();
    expect(placer.take('0-1', 1)!.cpus).toBe('1');
    expect(placer.take('0-3', 2)!.cpus).toBe('2-3');
    expect(placer.take('0-3', 3)!.cpus).toBe('0,2-3');
  });
});

describe('buildJoinArgv', () => {
  it('joins every hierarchy before exec, quoting paths', () => {
    const argv = buildJoinArgv(["/a/cgroup.procs", "/b c/it's/cgroup.procs"], ['node', 'server.js']);
    expect(argv).toEqual([
      '/bin/sh',
      '-c',
      `echo $$ > '/a/cgroup.procs' && echo $$ > '/b c/it'\\''s/cgroup.procs' && exec "$@"`,
      'cellhost-cg',
      'node',
      'server.js',
    ]);
  });
});
