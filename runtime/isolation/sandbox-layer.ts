// The sandbox layer: bubblewrap as the service's uid, in a network namespace of its own per
// instance and build. It needs both (bwrap and the namespaces), and a data dir the service uids
// can walk through to their images; without them apps run as plain children on loopback ports.
// Its feature systemLayers (system-layers.ts) lets builds install system packages into a layer of
// their own; without it the sandbox runs as before and such builds fail with the reason.
import fs from 'node:fs';
import path from 'node:path';
import { createSandboxBuildLauncher } from '../../builder/launcher.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { createSandboxLauncher } from '../instances/sandbox-launcher.ts';
import { createBindStage, isReachableByOthers, type BindStage } from '../sandbox/bind-stage.ts';
import { fullHardening, probeSandbox, type SandboxHardening } from '../sandbox/bwrap.ts';
import { createNetnsPool, probeNetns, type NetnsPool, type NetnsPoolOptions } from '../sandbox/netns.ts';
import type { SandboxPaths } from '../sandbox/runtime-env.ts';
import type { IsolationLayer } from './layer.ts';
import { lookForSystemLayers, NO_SYSTEM_LAYERS, reclaimSystemLayers, trySystemLayers, type SystemLayerOptions } from './system-layers.ts';

export interface SandboxLayerOptions {
  dataDir: string;
  /** the images and dependency caches, which the sandbox uids must reach (never read: 0711) */
  imagesDir: string;
  cacheDir: string;
  /** root-only host dir of this run: the bind stage and the builds' sandbox fds live here */
  hostRunDir: string;
  netns: Pick<NetnsPoolOptions, 'prefix' | 'subnet' | 'warm' | 'egressAllow'>;
  /** the service's uid (allocated on first use) */
  uidFor(service: string): number;
  /** system layers for builds that install system packages; absent: none */
  systemLayers?: SystemLayerOptions;
  log: Logger;
}

export function sandboxLayer(opts: SandboxLayerOptions): IsolationLayer {
  let hardening: SandboxHardening = fullHardening();
  /** why builds here get no system layer; null when they do */
  let noLayers: string | null = 'builds are not sandboxed here';
  const unreachable = `the data dir ${opts.dataDir} is inside a directory other users cannot enter: the sandbox cannot see images there (choose a data dir such as /var/lib/cellhost)`;

  return {
    features: ['sandbox', 'netns', 'systemLayers'],
    without: 'apps are not sandboxed: they run as the platform user on loopback ports with $PORT injected',

    async probe() {
      const [sandbox, netns] = await Promise.all([probeSandbox(), probeNetns()]);
      hardening = sandbox.hardening;
      const reasons = [...sandbox.reasons, ...netns.reasons];
      let supported = sandbox.available && netns.available;
      // its parents are the host's: they must already let others through
      if (supported && !(await isReachableByOthers(opts.dataDir).catch(() => false))) {
        reasons.push(unreachable);
        supported = false;
      }
      noLayers = 'builds are not sandboxed here';
      if (supported) {
        noLayers = opts.systemLayers ? await lookForSystemLayers(opts.systemLayers, !!hardening.seccomp) : 'system layers are not set up';
        if (noLayers) reasons.push(`${NO_SYSTEM_LAYERS}: ${noLayers}`);
      }
      return { supported, features: { sandbox: supported, netns: supported, systemLayers: supported && !noLayers }, reasons };
    },

    async start() {
      if (!(await openDataDir(opts))) throw new Error(unreachable);
      let netns: NetnsPool | null = null;
      let stage: BindStage;
      try {
        netns = createNetnsPool({ ...opts.netns, log: opts.log });
        await netns.start();
        stage = createBindStage({ dir: path.join(opts.hostRunDir, 'binds'), log: opts.log });
        await stage.reclaimLeftovers();
      } catch (err) {
        await netns?.close().catch(() => {});
        throw new Error(`network namespaces unusable: ${describeError(err)}`, { cause: err });
      }
      const pool = netns;
      const paths: SandboxPaths = { reachable: (p) => stage.expose(p) };
      // system layers: what a crashed run left mounted goes first; then, if the probe found them
      // usable, they are tried where they will live. What fails here turns the feature off only
      const sys = opts.systemLayers;
      const before = noLayers;
      if (sys) {
        const reclaimed = await reclaimSystemLayers(sys);
        if (reclaimed) opts.log.error('system_layer.reclaim_failed', { error: reclaimed });
        noLayers ??= reclaimed ?? (await trySystemLayers(sys, !!hardening.seccomp));
      }
      const layers = sys && !noLayers ? sys.layers : null;
      const noLayerReason = noLayers ?? undefined;
      const layerOptions = { layers, noLayerReason };
      return {
        wrap: () => createSandboxLauncher({ netns: pool, uidFor: opts.uidFor, paths, hardening, ...layerOptions }),
        wrapBuild: () =>
          createSandboxBuildLauncher({
            netns: pool,
            uidFor: opts.uidFor,
            subuidBaseFor: sys?.subuidBaseFor ?? (() => null),
            paths,
            hardening,
            fdDir: path.join(opts.hostRunDir, 'fds'),
            accountsDir: path.join(opts.hostRunDir, 'accounts'),
            ...layerOptions,
          }),
        ...(noLayers && !before ? { found: { features: { systemLayers: false }, reasons: [`${NO_SYSTEM_LAYERS}: ${noLayers}`] } } : {}),
        async dispose() {
          await pool.close().catch((err) => opts.log.error('netns.close_failed', { error: describeError(err) }));
          await stage.close().catch((err) => opts.log.error('bind_stage.close_failed', { error: describeError(err) }));
          // every overlay and view unmounted, and the layers dir gone (never a tree with mounts in it)
          await layers?.close().catch((err) => opts.log.error('system_layer.close_failed', { error: describeError(err) }));
        },
      };
    },
  };
}

/** lets the service uids through the data dir to the images and caches (0711, never readable) */
async function openDataDir(opts: SandboxLayerOptions): Promise<boolean> {
  if (!(await isReachableByOthers(opts.dataDir).catch(() => false))) return false;
  const st = fs.statSync(opts.dataDir);
  if (!(st.mode & 0o001)) fs.chmodSync(opts.dataDir, (st.mode & 0o777) | 0o011);
  for (const dir of [opts.imagesDir, opts.cacheDir]) {
    const m = fs.statSync(dir).mode & 0o777;
    if (!(m & 0o001)) fs.chmodSync(dir, m | 0o011);
  }
  return isReachableByOthers(opts.imagesDir);
}
