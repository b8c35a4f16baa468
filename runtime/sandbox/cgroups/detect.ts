// Which cgroup version the host runs: the filesystem type of the root says it (stat -f).
// cgroup2fs → v2 (unified). tmpfs with per-controller mounts → v1, including "hybrid"
// hosts whose /sys/fs/cgroup/unified holds a v2 tree with hardly any controllers (one with
// only hugetlb has been seen): the controllers that matter are in the v1 hierarchies there.
import { silentLogger } from '../../core/log.ts';
import { CGROUP2_SUPER_MAGIC, errnoOf, nodeCgroupFs, type CgroupFs } from './fs.ts';
import type { CgroupDriver, CgroupDriverOptions } from './types.ts';
import { createCgroupV1Driver } from './v1.ts';
import { createCgroupV2Driver } from './v2.ts';

export async function detectCgroupVersion(root = '/sys/fs/cgroup', fs: CgroupFs = nodeCgroupFs): Promise<1 | 2> {
  try {
    return (await fs.statfsType(root)) === CGROUP2_SUPER_MAGIC ? 2 : 1;
  } catch (err) {
    // no mount at all: the v1 driver's probe then names every missing hierarchy
    if (errnoOf(err) === 'ENOENT') return 1;
    throw err;
  }
}

export async function detectCgroupDriver(opts: CgroupDriverOptions = {}): Promise<CgroupDriver> {
  const root = opts.root ?? '/sys/fs/cgroup';
  const version = await detectCgroupVersion(root, opts.fs);
  (opts.log ?? silentLogger).debug('cgroup.detected', { root, version });
  return version === 2 ? createCgroupV2Driver(opts) : createCgroupV1Driver(opts);
}
