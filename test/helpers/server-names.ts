// The host names (cgroup prefix, netns prefix, host run dir) of the platforms tests and the bench
// start: each carries the pid of the process that started it, so two such processes alive at once
// never share them, and what a dead one left can be told from them (leftovers.ts).

/** the host names of test server n (0-7) of process pid, started in that process (server.ts) */
export function testServerNames(pid: number, n: number): Record<string, string> {
  return {
    CELLHOST_CGROUP_PREFIX: `cellhost-test-${pid}-${n}`,
    CELLHOST_NETNS_PREFIX: `t${(pid % 46656).toString(36)}${n}`,
    CELLHOST_HOST_RUN_DIR: `/run/cellhost-test-${pid}-${n}`,
  };
}

/** the host names of the child platform of test process pid (subprocess-server.ts) */
export function childServerNames(pid: number): Record<string, string> {
  return {
    CELLHOST_CGROUP_PREFIX: `cellhost-child-${pid}`,
    CELLHOST_NETNS_PREFIX: `c${(pid % 46656).toString(36)}`,
    CELLHOST_HOST_RUN_DIR: `/run/cellhost-child-${pid}`,
  };
}

/** the host names of the bench's platform n (1, 2, ...) of bench process pid (test/bench/platform.ts) */
export function benchServerNames(pid: number, n: number): Record<string, string> {
  return {
    CELLHOST_CGROUP_PREFIX: `cellhost-bench-${pid}-${n}`,
    CELLHOST_NETNS_PREFIX: `b${(pid % 46656).toString(36)}${n % 10}`,
    CELLHOST_HOST_RUN_DIR: `/run/cellhost-bench-${pid}-${n}`,
  };
}
