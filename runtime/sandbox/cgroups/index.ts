export type { Cgroup, CgroupDriver, CgroupDriverOptions, CgroupEnforcement, CgroupLimits, CgroupProbe, CgroupStats } from './types.ts';
export type { CgroupFs } from './fs.ts';
export { nodeCgroupFs } from './fs.ts';
export { CFS_PERIOD_US, formatCpuList, parseCpuList, toQuotaMicros } from './cpu.ts';
export { MB_PER_CORE, cpuForMemory } from '../../core/cpu-for-memory.ts';
export { detectCgroupDriver, detectCgroupVersion } from './detect.ts';
export { createCgroupV1Driver } from './v1.ts';
export { createCgroupV2Driver } from './v2.ts';
