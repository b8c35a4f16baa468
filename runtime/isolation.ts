// What this host can enforce, found once at start (and by `cellhost doctor`): each feature is
// used when it works and otherwise named with the reason, never silently dropped.
//   cgroups  → memory, CPU and process limits, freezing (isolated-launcher)
//   sandbox  → bubblewrap as the service's uid, read-only but /tmp (sandbox-launcher)
//   netns    → a namespace per instance and build, shaped, NATed, firewalled
//   systemLayers → builds that install system packages get a layer of their own (system-layer.ts)
// The sandbox needs both bubblewrap and namespaces; without them apps run as plain children on
// loopback ports with $PORT injected.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDirectBuildLauncher, createIsolatedBuildLauncher, createSandboxBuildLauncher, type BuildLauncher } from '../builder/launcher.ts';
import type { Config } from './core/config.ts';
import { CellhostError, describeError } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { createIsolatedLauncher } from './instances/isolated-launcher.ts';
import { createDirectLauncher, type IsolationReport, type Launcher } from './instances/launcher.ts';
import { createSandboxLauncher, type SandboxPaths } from './instances/sandbox-launcher.ts';
import { createBindStage, isReachableByOthers, type BindStage } from './sandbox/bind-stage.ts';
import { fullHardening, probeSandbox, type SandboxHardening } from './sandbox/bwrap.ts';
import { detectCgroupDriver } from './sandbox/cgroups/detect.ts';
import type { CgroupDriver } from './sandbox/cgroups/types.ts';
import { createNetnsPool, probeNetns, type NetnsPool } from './sandbox/netns.ts';
import { createSystemLayers, probeSystemLayers, type SystemLayers } from './sandbox/system-layer.ts';
import { findUidRangeConflicts } from './sandbox/uids.ts';
import { SUBUID_BLOCK } from './core/config.ts';

export interface Isolation {
  launcher: Launcher;
  buildLauncher: BuildLauncher;
  cgroups: CgroupDriver | null;
  report: IsolationReport;
  /** unmounts a deployment's system-layer views (its image is being removed) */
  forgetSystemLayer(deploymentId: string): Promise<void>;
  /** remove what isolation set up on the host (cgroup parents, namespaces, mounts); clean stop */
  dispose(): Promise<void>;
}

export interface IsolationOptions {
  /** reclaim what a crashed run left (serve), or only look (doctor) */
  reclaim: boolean;
  /** the service's uid (allocated on first use) */
  uidFor(service: string): number;
  /** the first id of the service's block of subuids, if it has one */
  subuidBaseFor?(service: string): number | null;
}

/** System layers: set up when the sandbox is, and tried for real; `look` only probes (doctor). */
async function setUpSystemLayers(config: Config, log: Logger, look: boolean, hardening: SandboxHardening): Promise<{ layers: SystemLayers | null; reason: string | null }> {
  const conflicts = await findUidRangeConflicts(config.subuidRange);
  if (conflicts.length) return { layers: null, reason: `CELLHOST_SUBUID_RANGE ${config.subuidRange.first}-${config.subuidRange.last} overlaps ids of the host (${conflicts.slice(0, 3).join('; ')}): choose another range` };
  const block = { first: config.subuidRange.first, count: SUBUID_BLOCK };
  if (look) {
    // doctor: tried in a temp dir, leaving nothing in a run dir a platform may own
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-layer-probe-'));
    try {
      const probe = await probeSystemLayers({ dir: tmp, upperRoot: tmp, block, seccomp: !!hardening.seccomp });
      return { layers: null, reason: probe.available ? null : (probe.reason ?? 'system layers are unavailable') };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const dir = path.join(config.hostRunDir, 'layers');
  const layers = createSystemLayers({ dir, hidden: [fs.realpathSync(config.dataDir), config.hostRunDir], log });
  await layers.reclaimLeftovers();
  fs.mkdirSync(config.paths.run, { recursive: true, mode: 0o700 });
  const probe = await probeSystemLayers({ dir, upperRoot: config.paths.run, block, seccomp: !!hardening.seccomp });
  if (!probe.available) return { layers: null, reason: probe.reason ?? 'system layers are unavailable' };
  return { layers, reason: null };
}

async function setUpCgroups(config: Config, log: Logger, reclaim: boolean, features: Record<string, boolean>, reasons: string[]): Promise<CgroupDriver | null> {
  try {
    const driver = await detectCgroupDriver({ root: config.cgroupRoot, prefix: config.cgroupPrefix, log });
    const probe = await driver.probe();
    Object.assign(features, { cpu: probe.enforced.cpu, memory: probe.enforced.memory, pids: probe.enforced.pids, freezer: probe.enforced.freezer });
    reasons.push(...probe.reasons);
    if (!(probe.enforced.memory && probe.enforced.cpu && probe.enforced.pids)) {
      reasons.push(`cgroup v${driver.version} limits are not all available: memory, CPU and process limits are not enforced`);
      return null;
    }
    features.cgroups = true;
    if (reclaim) {
      const { removed } = await driver.reclaimLeftovers();
      if (removed.length) log.warn('cgroups.reclaimed', { count: removed.length });
    }
    return driver;
  } catch (err) {
    reasons.push(`cgroups unusable: ${describeError(err)}`);
    return null;
  }
}

/** the data dir must be traversable by the service uids (never readable: 0711); `look` only checks */
async function prepareDataDir(config: Config, reasons: string[], look: boolean): Promise<boolean> {
  const unreachable = () => {
    reasons.push(`the data dir ${config.dataDir} is inside a directory other users cannot enter: the sandbox cannot see images there (choose a data dir such as /var/lib/cellhost)`);
    return false;
  };
  // its parents are the host's: they must already let others through
  if (!(await isReachableByOthers(config.dataDir).catch(() => false))) return unreachable();
  if (look) return true;
  const st = fs.statSync(config.dataDir);
  if (!(st.mode & 0o001)) fs.chmodSync(config.dataDir, (st.mode & 0o777) | 0o011);
  for (const dir of [config.paths.images, config.paths.cache]) {
    const m = fs.statSync(dir).mode & 0o777;
    if (!(m & 0o001)) fs.chmodSync(dir, m | 0o011);
  }
  return (await isReachableByOthers(config.paths.images)) || unreachable();
}

/**
 * One platform per set of host names (cgroup prefix, netns prefix, host run dir): a second one
 * would reclaim the first's instances as leftovers. The owner's pid and its start time live in
 * the host run dir: after a crash, a pid reused by another process is not taken for the owner.
 */
function claimHostNames(config: Config): void {
  const file = path.join(config.hostRunDir, 'owner.pid');
  let owner = 0;
  let ownerStart: string | undefined;
  try {
    const [pid, start] = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
    owner = Number(pid);
    // a file from before start times were recorded has none: its live pid still counts
    ownerStart = start;
  } catch {
    // no owner yet
  }
  if (owner && owner !== process.pid && isRunning(owner) && (ownerStart === undefined || startTimeOf(owner) === ownerStart)) {
    throw new CellhostError(
      'ERR_VALIDATION',
      `another cellhost (pid ${owner}) uses the host names of this one (cgroup prefix "${config.cgroupPrefix}", netns prefix "${config.netnsPrefix}", ${config.hostRunDir}): stop it, or give this one its own CELLHOST_CGROUP_PREFIX, CELLHOST_NETNS_PREFIX, CELLHOST_NETNS_SUBNET and CELLHOST_HOST_RUN_DIR`,
    );
  }
  fs.mkdirSync(config.hostRunDir, { recursive: true, mode: 0o755 });
  // explicit: the platform runs with umask 077, and the sandbox uids must walk to the bind stage in it
  fs.chmodSync(config.hostRunDir, 0o755);
  fs.writeFileSync(file, `${process.pid} ${startTimeOf(process.pid) ?? ''}`.trim());
}

/** field 22 of /proc/PID/stat: when the process started, in clock ticks since boot */
function startTimeOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export async function setUpIsolation(config: Config, log: Logger, opts: IsolationOptions): Promise<Isolation> {
  const reasons: string[] = [];
  const features: Record<string, boolean> = { cgroups: false, cpu: false, memory: false, pids: false, freezer: false, sandbox: false, netns: false, systemLayers: false };
  let cgroups: CgroupDriver | null = null;
  let netns: NetnsPool | null = null;
  let stage: BindStage | null = null;
  let layers: SystemLayers | null = null;
  let noLayerReason = 'builds are not sandboxed here, and apt-get would change the host itself';
  let hardening: SandboxHardening = fullHardening();

  if (config.isolation === 'off') {
    reasons.push('isolation is off (CELLHOST_ISOLATION=off): apps run as plain children of the platform, without limits');
  } else {
    // reclaiming leftovers kills whatever lives under these names: make sure no live platform does
    if (opts.reclaim && process.getuid?.() === 0) claimHostNames(config);
    cgroups = await setUpCgroups(config, log, opts.reclaim, features, reasons);
    const [sandboxProbe, netnsProbe] = await Promise.all([probeSandbox(), probeNetns()]);
    reasons.push(...sandboxProbe.reasons, ...netnsProbe.reasons);
    hardening = sandboxProbe.hardening;
    if (sandboxProbe.available && netnsProbe.available && (await prepareDataDir(config, reasons, !opts.reclaim))) {
      if (opts.reclaim) {
        try {
          netns = createNetnsPool({ prefix: config.netnsPrefix, subnet: config.netnsSubnet, warm: config.netnsWarm, egressAllow: config.egressAllow, log });
          await netns.start();
          stage = createBindStage({ dir: path.join(config.hostRunDir, 'binds'), log });
          await stage.reclaimLeftovers();
          features.sandbox = true;
          features.netns = true;
        } catch (err) {
          reasons.push(`network namespaces unusable: ${describeError(err)}`);
          await netns?.close().catch(() => {});
          netns = null;
        }
      } else {
        // doctor: the probes passing is the answer; nothing is set up
        features.sandbox = true;
        features.netns = true;
      }
    }
    if (!features.sandbox) reasons.push('apps are not sandboxed: they run as the platform user on loopback ports with $PORT injected');
    if (features.sandbox && process.getuid?.() === 0) {
      const set = await setUpSystemLayers(config, log, !opts.reclaim, hardening).catch((err) => ({ layers: null, reason: describeError(err) }));
      layers = set.layers;
      features.systemLayers = set.reason === null;
      if (set.reason) {
        noLayerReason = set.reason;
        reasons.push(`builds cannot install system packages (apt-get, dpkg): ${set.reason}`);
      }
    }
  }

  const report: IsolationReport = { features, reasons };
  let launcher: Launcher = createDirectLauncher({ runDir: config.paths.run, reasons });
  let buildLauncher: BuildLauncher = createDirectBuildLauncher({ runDir: config.paths.run, noLayerReason });
  if (netns && stage) {
    const bindStage = stage;
    const paths: SandboxPaths = { reachable: (p) => bindStage.expose(p) };
    launcher = createSandboxLauncher({ netns, uidFor: opts.uidFor, paths, report, hardening, layers, noLayerReason });
    buildLauncher = createSandboxBuildLauncher({
      netns,
      uidFor: opts.uidFor,
      subuidBaseFor: opts.subuidBaseFor ?? (() => null),
      paths,
      hardening,
      fdDir: path.join(config.hostRunDir, 'fds'),
      layers,
      noLayerReason,
    });
  }
  if (cgroups) {
    launcher = createIsolatedLauncher({ base: launcher, cgroups, hostCores: os.availableParallelism(), pidsMax: config.pidsMax, startupBoost: config.startupBoost, report });
    buildLauncher = createIsolatedBuildLauncher({
      base: buildLauncher,
      cgroups,
      hostCores: os.availableParallelism(),
      hostMemoryMb: Math.floor(os.totalmem() / 1024 / 1024),
      memoryMb: config.buildMemoryMb,
    });
  }
  const finalLauncher = launcher;
  return {
    launcher: { prepare: (spec) => finalLauncher.prepare(spec), report: () => report },
    buildLauncher,
    cgroups,
    report,
    forgetSystemLayer: async (deploymentId) => {
      await layers?.forget(deploymentId);
    },
    dispose: async () => {
      await netns?.close().catch((err) => log.error('netns.close_failed', { error: describeError(err) }));
      await stage?.close().catch((err) => log.error('bind_stage.close_failed', { error: describeError(err) }));
      // before the host run dir goes: never remove a tree with mounts in it
      let layersLeft = false;
      await layers?.close().catch((err) => {
        layersLeft = true;
        log.error('system_layer.close_failed', { error: describeError(err) });
      });
      await cgroups?.dispose();
      if (!layersLeft) fs.rmSync(config.hostRunDir, { recursive: true, force: true });
    },
  };
}
