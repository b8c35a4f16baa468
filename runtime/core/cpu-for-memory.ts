// CPU follows memory: 1769 MB buys one full core, the Lambda rule. A rule of the product, read by
// the cgroup limits, the services' views, the console's forms and the export's resources.

export const MB_PER_CORE = 1769;

/** memory size → CPU cap (fraction of one core, may exceed 1) and allocated cores (capped at the host's) */
export function cpuForMemory(memoryMb: number, hostCores: number): { quota: number; cores: number } {
  const quota = memoryMb / MB_PER_CORE;
  const cores = Math.max(1, Math.min(Math.ceil(memoryMb / MB_PER_CORE), Math.max(1, Math.floor(hostCores))));
  return { quota, cores };
}
