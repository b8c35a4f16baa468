// System layers, a feature of the sandbox layer: builds that run apt-get or dpkg get a layer of
// their own over the host's system (sandbox/system-layer.ts), and their deployments' instances
// see it read-only. They need what the sandbox needs, and more: root, the seccomp filter (it is
// what keeps a build's root in its namespace), perl, idmapped overlays (Linux 5.19), and a
// CELLHOST_SUBUID_RANGE no host account uses. Without them every other build and instance runs
// as before; a build that installs packages fails with the reason.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SUBUID_BLOCK, type UidRange } from '../core/config.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { probeSystemLayers, type SystemLayers } from '../sandbox/system-layer.ts';
import { findUidRangeConflicts } from '../sandbox/uids.ts';

export interface SystemLayerOptions {
  /** the mounts of every layer build and instance view (created by the composition root, which
   *  also unmounts a deployment's views when its image goes) */
  layers: SystemLayers;
  /** where their mounts live: <host run dir>/layers */
  dir: string;
  /** a dir on the data disk, where layers' upper dirs are (the platform's run dir) */
  upperRoot: string;
  subuidRange: UidRange;
  /** the first id of the service's block of subuids, if it has one */
  subuidBaseFor(service: string): number | null;
  log: Logger;
}

/** what every build launcher without a layer says */
export const NO_SYSTEM_LAYERS = 'builds cannot install system packages (apt-get, dpkg)';

/** null when this host can build system layers; else why not. `seccomp`: the sandbox's filter is there */
async function checkHost(opts: SystemLayerOptions, seccomp: boolean): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the platform does not run as root';
  if (!seccomp) return 'system layers need the seccomp filter (root in a build is kept from new namespaces and mounts by it)';
  const conflicts = await findUidRangeConflicts(opts.subuidRange);
  if (conflicts.length) {
    return `CELLHOST_SUBUID_RANGE ${opts.subuidRange.first}-${opts.subuidRange.last} overlaps ids of the host (${conflicts.slice(0, 3).join('; ')}): choose another range`;
  }
  return null;
}

const blockOf = (range: UidRange) => ({ first: range.first, count: SUBUID_BLOCK });

/**
 * Whether this host can build system layers, tried for real in a temp dir: nothing is left in a
 * run dir a running platform may own (doctor probes beside one). Null when it can.
 */
export async function lookForSystemLayers(opts: SystemLayerOptions, seccomp: boolean): Promise<string | null> {
  try {
    const host = await checkHost(opts, seccomp);
    if (host) return host;
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cellhost-layer-probe-'));
    try {
      const probe = await probeSystemLayers({ dir: tmp, upperRoot: tmp, block: blockOf(opts.subuidRange), seccomp });
      return probe.available ? null : (probe.reason ?? 'system layers are unavailable');
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    return describeError(err);
  }
}

/**
 * At the platform's start, once the sandbox is up: what a crashed run left mounted under the
 * layers dir is unmounted, whether or not layers can be used now. Null when all went; else why not.
 */
export async function reclaimSystemLayers(opts: SystemLayerOptions): Promise<string | null> {
  try {
    await opts.layers.reclaimLeftovers();
    return null;
  } catch (err) {
    return `what an earlier run left of system layers could not be removed: ${describeError(err)}`;
  }
}

/** then, when the look found them usable: an idmapped overlay tried where layers will live. Null when it works */
export async function trySystemLayers(opts: SystemLayerOptions, seccomp: boolean): Promise<string | null> {
  try {
    await fs.mkdir(opts.upperRoot, { recursive: true, mode: 0o700 });
    const probe = await probeSystemLayers({ dir: opts.dir, upperRoot: opts.upperRoot, block: blockOf(opts.subuidRange), seccomp });
    return probe.available ? null : (probe.reason ?? 'system layers are unavailable');
  } catch (err) {
    return describeError(err);
  }
}
