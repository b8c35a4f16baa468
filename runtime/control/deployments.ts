// The deploy pipeline every verb ends in: source → fresh dir → build → image → start check → live.
// A failed build, or a version that does not start, leaves the previous deployment serving.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { PlatformBuildSetup } from '../../builder/build-setup.ts';
import type { BuildLauncher } from '../../builder/launcher.ts';
import { PLAN_LIMITS } from '../../builder/launcher.ts';
import type { BuildLog, LogHub, LogTransform } from '../../builder/log-hub.ts';
import { checkOutput, defaultMinFreeBytes, freeDiskBytes, guardBuildOutput, lowDiskError } from '../../builder/output-guard.ts';
import type { BuildQueue } from '../../builder/queue.ts';
import { runBuildCommand } from '../../builder/runner.ts';
import { aptNetworkFailure, createTail, failureLine, usesSystemPackages } from '../../builder/system-packages.ts';
import { checkToolchain, RUNTIME_DEFS } from '../../builder/runtimes/index.ts';
import { checkGitUrl, DEFAULT_GIT_TIMEOUT_MS, unpackSource, type GitUrlPolicy, type SourceInput } from '../../builder/sources/index.ts';
import type { Clock } from '../core/clock.ts';
import { SUBUID_BLOCK, type UidRange } from '../core/config.ts';
import { CellhostError, describeError, diskFullError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { PrewarmOutcome } from '../instances/pool/types.ts';
import type { VerifyOptions, VerifyOutcome } from '../instances/pool/verify.ts';
import { diffPackages, hostPackageHash, parseDpkgStatus, readHostPackageState, summarizeChanges, type HostPackageState } from '../sandbox/dpkg-status.ts';
import { layerDirOf, type IdBlock } from '../sandbox/system-layer.ts';
import { describeRemoved, diskUsage, formatLimit, readFileInside } from '../sandbox/untrusted-files.ts';
import { readManifestIn } from '../manifest/find.ts';
import { describeProblem, manifestError, parsedManifest, parseManifest, type Manifest } from '../manifest/manifest.ts';
import type { Store } from '../store/index.ts';
import type { Deployment, SystemLayerRecord } from '../store/deployments.ts';
import type { Plan, Service } from '../store/services.ts';
import { describeSettings, resolveSettings, settingsConflict } from './manifest-settings.ts';
import { applyManifestSections, type ManifestSectionHooks } from './manifest-sections.ts';

export interface DeploymentsDeps {
  store: Store;
  queue: BuildQueue;
  logs: LogHub;
  buildLauncher: BuildLauncher;
  /** unmounts a deployment's system-layer views before its layer is removed */
  forgetSystemLayer?(deploymentId: string): Promise<void>;
  /** where services' blocks of subuids come from (builds that install system packages) */
  subuidRange?: UidRange;
  paths: { images: string; builds: string; cache: string };
  sourceLimits: { maxBytes: number; maxEntries: number };
  /** which git URLs are cloned (default https, ssh and scp-style only) */
  gitPolicy?: GitUrlPolicy;
  /** overrides every plan's build time limit (tests, slow hosts) */
  buildTimeoutMs?: number;
  /** override every plan's limits on what a build leaves (bytes), each when set */
  outputLimits?: { imageBytes?: number; cacheBytes?: number; logBytes?: number };
  /** free space a build must leave on the data disk; unset: 1 GB, or 5 % of a smaller disk */
  minFreeBytes?: number;
  /** how often a running build's output is measured; default 1 s */
  outputPollMs?: number;
  clock: Clock;
  log: Logger;
  /** the service's variables for the build (decrypted) */
  envFor(service: string): Record<string, string>;
  /** what the platform adds to every build (CELLHOST_BUILD_ENV, _BINDS, the host's package-manager configuration) */
  buildSetup?(): Promise<PlatformBuildSetup>;
  /** hides the service's secret values in its build log */
  logTransform?(service: string): LogTransform;
  /** a deployment is about to go live: the service's settings follow its manifest (see manifest-settings.ts) */
  applyManifest(service: string, manifest: Manifest | null): void;
  /** the features that apply a manifest's domains and cron jobs; a missing one is said in the build log */
  manifestSections?: ManifestSectionHooks;
  /** the live deployment changed: the pool must follow */
  onLiveChanged(service: string): void;
  /** the start check: the built deployment started once with the service's settings and env; absent: none */
  verifyStart?(service: Service, deploymentId: string, opts: VerifyOptions): Promise<VerifyOutcome>;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
}

export interface Deployments {
  /** records a queued deployment and starts its build in the background */
  create(service: string, source: SourceInput, sourceLabel: string): Deployment;
  promote(id: string): Deployment;
  /**
   * a new deployment of the same service from the same source: the git URL and ref again, or the
   * uploaded archive a deployment with a system layer keeps (to rebuild its layer on a newer base)
   */
  rebuild(id: string): Promise<Deployment>;
  /** at start: builds that were running when the platform stopped are interrupted */
  recover(): Promise<number>;
  /** resolves when every queued and running build has finished */
  idle(): Promise<void>;
  /** stop every running build (clean shutdown): they end as interrupted */
  abortAll(): void;
  /** a service is being deleted: its queued builds are dropped, its running ones stopped; resolves once they have ended */
  stopBuilds(service: string): Promise<void>;
  /** the host's package state now: a layer recorded with another was built on an older base */
  hostBase(): string;
  /** drops the upload a deployment kept for rebuilds (its service is being deleted) */
  removeKeptSource(id: string): Promise<void>;
}

export function createDeployments(deps: DeploymentsDeps): Deployments {
  const { store, log } = deps;
  const iso = () => new Date(deps.clock.now()).toISOString();
  const running = new Map<string, { service: string; abort: AbortController }>();
  const cancelled = new Map<string, (why?: string) => void>();
  /** each build's run, to wait for when its service is deleted */
  const runs = new Map<string, Promise<void>>();
  /** uploads kept for rebuilds (deployments with a system layer), removed with their image */
  const sourcesDir = path.join(deps.paths.builds, 'sources');
  const keptSourcePath = (id: string, kind: 'tar.gz' | 'zip') => path.join(sourcesDir, `${id}.${kind}`);
  const removeKeptSource = (id: string) => Promise.all((['tar.gz', 'zip'] as const).map((k) => fs.rm(keptSourcePath(id, k), { force: true })));

  function outputLimits(plan: Plan) {
    const p = PLAN_LIMITS[plan];
    const mb = 1024 * 1024;
    return {
      imageBytes: deps.outputLimits?.imageBytes ?? p.imageMb * mb,
      cacheBytes: deps.outputLimits?.cacheBytes ?? p.cacheMb * mb,
      logBytes: deps.outputLimits?.logBytes ?? p.logMb * mb,
    };
  }

  /** removes a tree the platform owns the place of; a failure is logged, never swallowed */
  async function removeTree(dir: string, what: string, deploymentId: string): Promise<boolean> {
    try {
      await fs.rm(dir, { recursive: true, force: true });
      return true;
    } catch (err) {
      log.error('deploy.cleanup_failed', { deployment: deploymentId, what, dir, error: describeError(err) });
      return false;
    }
  }

  function event(service: string, name: string, fields: Record<string, unknown>) {
    deps.onEvent?.(service, name, fields);
  }

  /**
   * Reads the manifest at the root of the unpacked source (the service's root dir), keeps it with
   * the deployment, and says in the build log what each of its settings becomes. An invalid one,
   * settings that conflict, or a required variable the service lacks fail the deployment here,
   * before anything is built.
   */
  async function readSourceManifest(
    dep: Deployment,
    service: Service,
    dir: string,
    out: { say(text: string): void; detail(text: string): void; warn(text: string): void },
  ): Promise<Manifest | null> {
    const found = await readManifestIn(dir);
    const where = service.rootDir ? ` in ${service.rootDir}/` : '';
    let manifest: Manifest | null = null;
    if (!found) {
      out.say(`No cellhost.toml or cellhost.json${where}`);
    } else {
      const parsed = parseManifest(found.file, found.text);
      // kept even when invalid: the console and the API show the file the problems are in
      store.deployments.update(dep.id, { manifest: { file: found.file, text: found.text, parsed: parsed.ok ? parsed.manifest : null } });
      if (!parsed.ok) {
        out.say(`\x1b[31mManifest ${found.file}${where} is not valid:\x1b[0m`);
        for (const p of parsed.problems) out.detail(`\x1b[31m${describeProblem(found.file, p)}\x1b[0m`);
        throw manifestError(found.file, parsed.problems);
      }
      manifest = parsed.manifest;
      out.say(`Manifest ${found.file}${where}`);
    }
    const settings = resolveSettings(service, service.explicitSettings, manifest);
    const conflict = settingsConflict(settings, service.explicitSettings, manifest);
    if (conflict) throw new CellhostError('ERR_MANIFEST_INVALID', conflict, { details: { file: manifest?.file } });
    for (const line of describeSettings(service, service.explicitSettings, manifest, settings)) out.detail(line);
    if (!manifest) return null;
    if (manifest.name && manifest.name !== service.name) {
      out.warn(`name = "${manifest.name}" in ${manifest.file}: this deployment is to service "${service.name}" (the name only tells cellhost deploy which service a directory is)`);
    }
    if (manifest.requiredEnv) {
      const have = new Set(Object.keys(deps.envFor(service.name)));
      const missing = manifest.requiredEnv.names.filter((n) => !have.has(n));
      const line = `${manifest.file} line ${manifest.requiredEnv.line}`;
      if (missing.length) {
        throw new CellhostError(
          'ERR_ENV_REQUIRED',
          `${line} requires ${missing.length === 1 ? 'the variable' : 'the variables'} ${missing.join(', ')}, which service "${service.name}" does not have: set ${missing.length === 1 ? 'it' : 'them'} (cellhost env set ${service.name} ${missing[0]}=...) and deploy again`,
          { details: { missing, file: manifest.file, line: manifest.requiredEnv.line } },
        );
      }
      out.detail(`env.required: ${manifest.requiredEnv.names.join(', ')}: all set (${line})`);
    }
    return manifest;
  }

  async function build(dep: Deployment, source: SourceInput, out: BuildLog): Promise<void> {
    cancelled.delete(dep.id);
    const say = (text: string) => out.note(`\x1b[1;36m==>\x1b[0m ${text}\r\n`);
    const detail = (text: string) => out.note(`    ${text}\r\n`);
    const warn = (text: string) => out.note(`\x1b[1;33m==>\x1b[0m \x1b[33m${text}\x1b[0m\r\n`);
    const abort = new AbortController();
    running.set(dep.id, { service: dep.service, abort });
    const imageDir = path.join(deps.paths.images, dep.id);
    const layerDir = layerDirOf(imageDir);
    const started = deps.clock.now();
    // what the build printed last, for the reason of a failure
    const tail = createTail();
    let layerBlock: IdBlock | null = null;
    let keepSource = false;
    let manifest: Manifest | null = null;
    let phase: 'build' | 'start' = 'build';
    try {
      const current = store.services.get(dep.service);
      if (!current) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `service "${dep.service}" was deleted`);
      store.deployments.update(dep.id, { status: 'building', startedAt: iso() });
      event(dep.service, 'deploy_building', { deploymentId: dep.id });
      const minFree = deps.minFreeBytes ?? (await defaultMinFreeBytes(deps.paths.images));
      const free = await freeDiskBytes(deps.paths.images);
      if (free < minFree) throw lowDiskError(free, minFree);

      say(`Fetching source (${dep.source})`);
      await fs.mkdir(imageDir, { recursive: true });
      const unpacked = await unpackSource(source, imageDir, {
        limits: deps.sourceLimits,
        rootDir: current.rootDir ?? undefined,
        log,
        signal: abort.signal,
        gitPolicy: deps.gitPolicy,
        // a clone takes at most 5 minutes, or the whole build's limit when that is set shorter
        gitTimeoutMs: deps.buildTimeoutMs === undefined ? undefined : Math.min(deps.buildTimeoutMs, DEFAULT_GIT_TIMEOUT_MS),
        gitSandbox: source.kind === 'git' ? gitSandboxFor(dep.id, current.name, current.plan, imageDir, source.url) : undefined,
      });
      say(`Source: ${unpacked.files} files, ${formatBytes(unpacked.bytes)}`);

      // the settings this build and its instances get: the manifest's where the API set none
      manifest = await readSourceManifest(dep, current, imageDir, { say, detail, warn });
      const service: Service = { ...current, ...resolveSettings(current, current.explicitSettings, manifest) };
      checkToolchain(service.runtime);
      const limits = outputLimits(service.plan);
      const owner = `the ${service.plan} plan's`;

      const runtime = RUNTIME_DEFS[service.runtime];
      const previous = previousImage(service.name, dep.id);
      if (previous && runtime.reuseDependencies) {
        const reused = await runtime.reuseDependencies(previous.imageDir!, imageDir, { maxBytes: limits.imageBytes }).catch((err) => {
          log.warn('deploy.reuse_failed', { deployment: dep.id, from: previous.id, error: describeError(err) });
          return null;
        });
        if (reused) say(`Reusing ${reused} from ${previous.id}`);
      }
      const setup = await runtime.prepare(imageDir);
      const buildCommand = service.buildCommand ?? (await runtime.defaultBuild(imageDir));
      const finish = (await runtime.finish?.(imageDir, service)) ?? null;
      const steps = [setup, buildCommand, finish].filter((s): s is string => !!s);
      let systemLayer: SystemLayerRecord | null = null;
      let hostState: HostPackageState | null = null;
      if (steps.length) {
        const plan = PLAN_LIMITS[service.plan];
        const cacheDir = path.join(deps.paths.cache, service.name);
        const firstLine = (text: string) => text.split('\n')[0] + (text.includes('\n') ? ' …' : '');
        if (setup) say(`Runtime setup: ${firstLine(setup)}`);
        say(buildCommand ? `Build command (${service.plan} plan limits): ${firstLine(buildCommand)}` : 'No build command');
        if (finish) say(`Then: ${firstLine(finish)}`);
        // a cache already past the limit (a lower limit now, or the last build was stopped) starts over
        const cached = await diskUsage(cacheDir);
        if (cached > limits.cacheBytes) {
          await fs.rm(cacheDir, { recursive: true, force: true });
          say(`Dependency cache emptied: it held ${formatLimit(cached)}, more than ${owner} limit of ${formatLimit(limits.cacheBytes)}`);
        }
        if (usesSystemPackages(buildCommand)) {
          const why = deps.buildLauncher.systemLayer ? deps.buildLauncher.systemLayer.unavailable() : NOT_SANDBOXED;
          if (why || !deps.subuidRange) {
            throw new CellhostError('ERR_BUILD_SYSTEM_PACKAGES', `the build command installs system packages (apt-get, dpkg), which needs a system layer of the service's own, and this host cannot build one: ${why ?? 'no subuid range is configured'}`);
          }
          layerBlock = { first: store.services.assignSubuids(service.name, deps.subuidRange, iso()), count: SUBUID_BLOCK };
          hostState = await readHostPackageState();
          say(`System layer: the build runs as root over a copy-on-write view of the host's /usr, /etc and /var; what it changes there becomes this deployment's own layer (owned by host ids ${layerBlock.first}-${layerBlock.first + layerBlock.count - 1})`);
        }
        const platform = await deps.buildSetup?.();
        for (const note of platform?.notes ?? []) say(note);
        for (const warning of platform?.warnings ?? []) say(`\x1b[33m${warning}\x1b[0m`);
        const cmd = await deps.buildLauncher.prepare({
          deploymentId: dep.id,
          service: service.name,
          runtime: service.runtime,
          plan: service.plan,
          dir: imageDir,
          // without the sandbox (whose bwrap starts its own session), the build is the pty's
          // session: ~1 in 4 builds that exit within a few ms were killed by a SIGHUP from the
          // pty's hangup, reported as "signal 1". Nothing in a build needs SIGHUP.
          script: ["trap '' HUP", ...steps].join('\n'),
          env: deps.envFor(service.name),
          cacheDir,
          ...(layerBlock ? { systemLayer: { dir: layerDir, block: layerBlock } } : {}),
          setup: platform,
        });
        const watched = {
          limits: [
            layerBlock
              ? { label: 'image (with its system layer)', dir: imageDir, alsoDirs: [layerDir], maxBytes: limits.imageBytes }
              : { label: 'image', dir: imageDir, maxBytes: limits.imageBytes },
            { label: 'dependency cache', dir: cacheDir, maxBytes: limits.cacheBytes },
          ],
          owner,
          disk: { dir: deps.paths.images, minFreeBytes: minFree },
        };
        const guard = guardBuildOutput({ ...watched, intervalMs: deps.outputPollMs, log });
        try {
          await runBuildCommand(cmd, {
            timeoutMs: deps.buildTimeoutMs ?? plan.timeoutMs,
            signal: AbortSignal.any([abort.signal, guard.signal]),
            onOutput: (t) => {
              tail.push(t);
              out.write(t);
            },
          });
        } finally {
          await guard.stop();
        }
        // what was written between the last poll and the end counts too
        const over = await checkOutput(watched);
        if (over) throw over;
      } else {
        say('No build command: the source is the image');
      }
      // built or not, the image is sealed: root's, readable by the service's uid (an unpacked
      // source's dirs are the platform's, made under its umask 077, which the sandbox cannot enter)
      const removed = await deps.buildLauncher.seal(imageDir);
      if (removed.length) say(`Removed ${removed.length} special file(s) from the image (images hold only files, directories and links): ${describeRemoved(removed)}`);
      if (layerBlock && hostState) systemLayer = await finishLayer(layerDir, layerBlock, hostState, say);
      const start = await runtime.defaultStart(imageDir);
      for (const note of start.notes) say(`\x1b[33m${note}\x1b[0m`);
      if (!service.startCommand) say(`Start command (the ${service.runtime} default for this image): ${start.command}`);
      // a layer is built against the host's packages of the day: its upload is kept, so it can be
      // rebuilt on a newer base (the image alone cannot: it is the build's output)
      if (systemLayer && source.kind !== 'git') {
        await fs.mkdir(sourcesDir, { recursive: true, mode: 0o700 });
        await fs.rename(source.file, keptSourcePath(dep.id, source.kind));
        keepSource = true;
      }
      // still `building` for whoever waits on it: only a version that starts becomes ready. The
      // layer is on record first: the start check's instance sees it as the live ones will
      store.deployments.update(dep.id, { imageDir, runtime: service.runtime, defaultStart: start.command, systemLayer });
      say(`Build finished in ${((deps.clock.now() - started) / 1000).toFixed(1)} s`);
      if (deps.verifyStart) {
        phase = 'start';
        await checkStart(service, dep, out, say, abort.signal);
      }
      store.deployments.update(dep.id, { status: 'ready', finishedAt: iso() });
      promote(dep.id);
      say(`Deployment ${dep.id} is live`);
      if (manifest) await applyManifestSections(service.name, manifest, deps.manifestSections ?? {}, { say: detail, warn }, log);
      const pruned = await pruneImages(service.name, IMAGES_KEPT[service.plan]);
      if (pruned.count) say(`Removed ${pruned.count} old image(s) beyond the ${IMAGES_KEPT[service.plan]} kept for rollback, freeing ${formatBytes(pruned.bytes)}`);
    } catch (err) {
      // free the space first: a full disk is a common reason to be here, and every write below needs room
      await removeTree(imageDir, 'image', dep.id);
      // the start check's instance mounted views of it
      if (layerBlock) await removeLayerDir(dep.id, layerDir);
      if (keepSource) {
        await removeKeptSource(dep.id).catch((e) => log.warn('deploy.cleanup_failed', { deployment: dep.id, what: 'kept source', error: describeError(e) }));
        keepSource = false;
      }
      let coded =
        err instanceof CellhostError ? err : (diskFullError(err) ?? new CellhostError('ERR_INTERNAL', 'the build failed unexpectedly', { cause: err }));
      if (coded.code === 'ERR_BUILD_FAILED' && coded.message.startsWith('the build command failed (')) {
        // the command's own last words say why (apt's "E: Unable to locate package x")
        const last = failureLine(tail.text());
        const unreachable = layerBlock ? aptNetworkFailure(tail.text()) : null;
        const why = [last, unreachable].filter(Boolean).join(' — ');
        if (why) coded = new CellhostError('ERR_BUILD_FAILED', `${coded.message}: ${why}`, { details: coded.details });
      }
      if (coded.code === 'ERR_INTERNAL') log.error('deploy.build_crashed', { deployment: dep.id, error: describeError(err) });
      const interrupted = coded.code === 'ERR_BUILD_INTERRUPTED';
      if (phase === 'start' && !interrupted) {
        const live = store.services.get(dep.service)?.liveDeploymentId;
        say(`\x1b[31mDeployment failed: the app did not start: ${coded.message}\x1b[0m`);
        if (live) say(`The live deployment ${live} keeps serving`);
      } else {
        say(`\x1b[31mBuild ${interrupted ? 'interrupted' : 'failed'}: ${coded.message}\x1b[0m`);
      }
      // the cache is only a cache: past its limit it goes, so the next build is not stopped at once
      if (coded.code === 'ERR_BUILD_TOO_LARGE' && coded.details?.limit === 'dependency cache') {
        if (await removeTree(path.join(deps.paths.cache, dep.service), 'cache', dep.id)) say('The dependency cache was emptied');
      }
      const status = interrupted ? 'interrupted' : 'failed';
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          if (store.deployments.get(dep.id)) store.deployments.update(dep.id, { status, errorCode: coded.code, error: coded.message, finishedAt: iso() });
          break;
        } catch (writeErr) {
          // still no room (SQLITE_FULL): a moment, then again; recover() settles it at the next start
          log.error('deploy.status_write_failed', { deployment: dep.id, error: describeError(writeErr) });
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      event(dep.service, interrupted ? 'deploy_interrupted' : 'deploy_failed', { deploymentId: dep.id, code: coded.code, message: coded.message });
    } finally {
      running.delete(dep.id);
      out.end();
      if (source.kind !== 'git' && !keepSource) await fs.rm(source.file, { force: true });
    }
  }

  /**
   * After a successful build with a layer: sealed (system-layer.ts), dropped when it changed
   * nothing, else described (what it did to the host's packages) and measured.
   */
  async function finishLayer(layerDir: string, block: IdBlock, host: HostPackageState, say: (text: string) => void): Promise<SystemLayerRecord | null> {
    const seal = await deps.buildLauncher.systemLayer!.seal(layerDir, block);
    if (seal.removed.length) say(`Removed ${seal.removed.length} special file(s) the build left in its system layer: ${describeRemoved(seal.removed)}`);
    if (seal.setuidCleared.length) {
      say(`Cleared the setuid/setgid bits of ${seal.setuidCleared.length} file(s) in the system layer (they take no effect in a sandbox): ${seal.setuidCleared.slice(0, 5).join(', ')}${seal.setuidCleared.length > 5 ? ' …' : ''}`);
    }
    if (seal.empty) {
      await fs.rm(layerDir, { recursive: true, force: true });
      say('System layer: the build changed nothing of the system, so none is kept');
      return null;
    }
    const status = await readFileInside(layerDir, 'var/lib/dpkg/status', { maxBytes: 64 * 1024 * 1024, timeoutMs: 10_000 });
    if (!status.ok && !status.missing) say(`System layer: its package list could not be read (${status.reason})`);
    const packages = status.ok ? diffPackages(parseDpkgStatus(host.text), parseDpkgStatus(status.data.toString('utf8'))) : { added: [], upgraded: [], removed: [] };
    const bytes = await diskUsage(layerDir);
    say(`System layer: ${summarizeChanges(packages)}; ${formatBytes(bytes)}`);
    return { uidBase: block.first, hostBase: host.hash, packages, bytes };
  }

  /** a deployment's system layer goes: its instance views first, then its files */
  async function removeLayer(d: Deployment): Promise<boolean> {
    if (!d.imageDir) return true;
    return removeLayerDir(d.id, layerDirOf(d.imageDir));
  }

  /** a layer's dir goes only once no instance view of it is mounted any more */
  async function removeLayerDir(id: string, dir: string): Promise<boolean> {
    try {
      await deps.forgetSystemLayer?.(id);
    } catch (err) {
      log.error('deploy.cleanup_failed', { deployment: id, what: 'system layer views', error: describeError(err) });
      return false;
    }
    return removeTree(dir, 'system layer', id);
  }

  /**
   * The start check: the new version started once as the service runs it (its port, health
   * path, env and limits) before it goes live; it must accept connections on its port, as
   * Leapcell's health check requires. Its output goes to the deployment's log as it comes.
   * Throws the coded reason when it does not start.
   */
  /** `service`: its settings as this deployment will run them (its manifest applied) */
  async function checkStart(service: Service, dep: Deployment, out: BuildLog, say: (text: string) => void, signal: AbortSignal): Promise<void> {
    const what = service.healthPath ? `accept connections on :${service.port} and answer ${service.healthPath}` : `accept connections on :${service.port}`;
    say(`Starting the app once before it goes live: it must ${what}`);
    let lines = 0;
    const onOutput = (_stream: string, line: string) => {
      if (++lines <= START_CHECK_MAX_LINES) out.write(`${line}\r\n`);
      else if (lines === START_CHECK_MAX_LINES + 1) say(`The app printed more than ${START_CHECK_MAX_LINES} lines while starting: the rest is not kept here`);
    };
    const interrupted = () => new CellhostError('ERR_BUILD_INTERRUPTED', 'the deployment was stopped during its start check');
    let outcome: VerifyOutcome;
    try {
      outcome = await deps.verifyStart!(service, dep.id, { signal, onOutput });
    } catch (err) {
      // the platform stopping (or the service going) is not the app's failure
      if (signal.aborted || (err instanceof CellhostError && err.code === 'ERR_SHUTTING_DOWN')) throw interrupted();
      throw err;
    }
    if (signal.aborted) throw interrupted();
    if (!outcome.ok) {
      // the lines before the failure were cut above: its last ones are what explains it
      if (lines > START_CHECK_MAX_LINES && outcome.lastLines.length) {
        say("The app's last lines:");
        for (const line of outcome.lastLines) out.write(`${line}\r\n`);
      }
      throw outcome.error;
    }
    // without network namespaces the app gets its own free port in $PORT
    say(`Started in ${outcome.startMs} ms, listening on ${outcome.port === service.port ? `:${outcome.port}` : `$PORT (:${outcome.port})`}`);
    const kept = describeKept(outcome.prewarm);
    if (kept) say(kept);
  }

  /** a git clone runs in the build's sandbox, when there is one (else on the host) */
  function gitSandboxFor(deploymentId: string, service: string, plan: Plan, imageDir: string, url: string) {
    const launcher = deps.buildLauncher;
    if (!launcher.prepareFetch) return undefined;
    const target = checkGitUrl(url, deps.gitPolicy);
    return async (dir: string) => {
      const fetch = await launcher.prepareFetch!({ deploymentId, service, plan, dir: imageDir, roBinds: target.transport === 'file' ? [target.path] : [] });
      return { dir: fetch.inside(dir), command: fetch.command, killAll: fetch.killAll, release: fetch.release };
    };
  }

  /** the image a new build can take unchanged dependencies from: the live one, else the newest built */
  function previousImage(service: string, except: string): Deployment | null {
    const live = store.services.get(service)?.liveDeploymentId;
    const built = store.deployments.listForService(service, { limit: 20 }).filter((d) => d.id !== except && d.imageDir && ['ready', 'live', 'superseded'].includes(d.status));
    return built.find((d) => d.id === live) ?? built[0] ?? null;
  }

  /** keeps the newest `keep` built images of a service (the live one always), removes the rest */
  async function pruneImages(service: string, keep: number): Promise<{ count: number; bytes: number }> {
    const live = store.services.get(service)?.liveDeploymentId;
    const built = store.deployments.listForService(service).filter((d) => d.imageDir && ['ready', 'live', 'superseded'].includes(d.status));
    const doomed = built.slice(keep).filter((d) => d.id !== live);
    let bytes = 0;
    const removed: string[] = [];
    for (const d of doomed) {
      const size = await diskUsage(d.imageDir!).catch((err) => {
        log.warn('deploy.measure_failed', { deployment: d.id, error: describeError(err) });
        return 0;
      });
      // a failure is logged and the image kept on record: the next build tries again
      if (!(await removeLayer(d))) continue;
      if (!(await removeTree(d.imageDir!, 'old image', d.id))) continue;
      await removeKeptSource(d.id).catch((err) => log.warn('deploy.cleanup_failed', { deployment: d.id, what: 'kept source', error: describeError(err) }));
      bytes += size + (d.systemLayer?.bytes ?? 0);
      removed.push(d.id);
      store.deployments.update(d.id, { imageDir: null });
    }
    if (removed.length) event(service, 'images_pruned', { count: removed.length, bytes, deploymentIds: removed });
    return { count: removed.length, bytes };
  }

  function promote(id: string): Deployment {
    const dep = store.deployments.get(id);
    if (!dep) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    if (!['ready', 'live', 'superseded'].includes(dep.status) || !dep.imageDir) {
      const why = dep.imageDir || !['ready', 'live', 'superseded'].includes(dep.status) ? `is ${dep.status}` : 'has no image any more (older images are removed past the rollback limit)';
      throw new CellhostError('ERR_DEPLOYMENT_NOT_READY', `deployment "${id}" ${why}: only a built image can go live`);
    }
    const service = store.services.get(dep.service)!;
    // the settings follow the manifest of what goes live (a rollback's too)
    deps.applyManifest(service.name, parsedManifest(dep));
    store.db.transaction(() => {
      if (service.liveDeploymentId && service.liveDeploymentId !== id) {
        store.deployments.update(service.liveDeploymentId, { status: 'superseded' });
      }
      store.deployments.update(id, { status: 'live' });
      store.services.setLive(service.name, id, iso());
    })();
    event(service.name, 'deploy_live', { deploymentId: id, previous: service.liveDeploymentId });
    deps.onLiveChanged(service.name);
    return store.deployments.get(id)!;
  }

  async function rebuild(id: string): Promise<Deployment> {
    const d = store.deployments.get(id);
    if (!d) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    if (d.source.startsWith('git:')) {
      const spec = d.source.slice('git:'.length);
      const hash = spec.lastIndexOf('#');
      const [url, ref] = hash > 0 ? [spec.slice(0, hash), spec.slice(hash + 1)] : [spec, undefined];
      return api.create(d.service, { kind: 'git', url, ...(ref ? { ref } : {}) }, d.source);
    }
    for (const kind of ['tar.gz', 'zip'] as const) {
      const kept = keptSourcePath(id, kind);
      if (!(await fs.stat(kept).catch(() => null))) continue;
      // the build consumes its upload: it gets a copy
      const uploads = path.join(deps.paths.builds, 'uploads');
      await fs.mkdir(uploads, { recursive: true, mode: 0o700 });
      const copy = path.join(uploads, `rebuild-${crypto.randomBytes(6).toString('hex')}.${kind}`);
      await fs.copyFile(kept, copy);
      try {
        return api.create(d.service, { kind, file: copy }, d.source);
      } catch (err) {
        await fs.rm(copy, { force: true });
        throw err;
      }
    }
    throw new CellhostError('ERR_DEPLOYMENT_NO_SOURCE', `the source of deployment "${id}" was not kept (uploads are kept only by deployments with a system layer, while their image is): deploy the source again`);
  }

  const api: Deployments = {
    rebuild,
    create(serviceName, source, sourceLabel) {
      const service = store.services.get(serviceName);
      if (!service) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${serviceName}"`);
      // a git URL cellhost does not clone is refused here, before it takes a place in the queue
      if (source.kind === 'git') checkGitUrl(source.url, deps.gitPolicy);
      // a missing toolchain fails the deploy at once, naming what to install
      checkToolchain(service.runtime);
      const id = 'd-' + crypto.randomBytes(6).toString('hex');
      // a newer deploy replaces builds of the same service that have not started yet
      for (const older of deps.queue.queued(serviceName)) {
        if (!deps.queue.cancel(older)) continue;
        store.deployments.update(older, { status: 'superseded', errorCode: 'ERR_BUILD_CANCELLED', error: `replaced by ${id} before its build started`, finishedAt: iso() });
        const pending = cancelled.get(older);
        cancelled.delete(older);
        pending?.();
        event(serviceName, 'deploy_cancelled', { deploymentId: older, by: id });
      }
      const dep = store.deployments.create({ id, service: serviceName, source: sourceLabel, now: iso() });
      // the log exists from the start, so a follower that comes while the build waits sees it
      const out = deps.logs.open(id, deps.logTransform?.(serviceName), { bytes: outputLimits(service.plan).logBytes, owner: `the ${service.plan} plan's` });
      out.note(`\x1b[1;36m==>\x1b[0m Queued deployment ${id} of ${serviceName}\r\n`);
      event(serviceName, 'deploy_queued', { deploymentId: id, source: sourceLabel });
      deps.queue.enqueue({
        id,
        service: serviceName,
        run: () => {
          const run = build(dep, source, out);
          runs.set(id, run);
          return run.finally(() => runs.delete(id));
        },
      });
      // if the job is cancelled before it runs: close its log and drop its upload
      cancelled.set(id, (why = 'a newer deployment replaced this one before its build started') => {
        out.note(`\x1b[1;33m==>\x1b[0m Cancelled: ${why}\r\n`);
        out.end();
        if (source.kind !== 'git') void fs.rm(source.file, { force: true });
      });
      return dep;
    },
    promote,
    async recover() {
      const stale = store.deployments.listByStatus(['queued', 'building']);
      for (const dep of stale) {
        store.deployments.update(dep.id, { status: 'interrupted', errorCode: 'ERR_BUILD_INTERRUPTED', error: 'the platform stopped during this build', finishedAt: iso() });
        await removeTree(path.join(deps.paths.images, dep.id), 'image', dep.id);
        await removeTree(layerDirOf(path.join(deps.paths.images, dep.id)), 'system layer', dep.id);
      }
      // images built before their default start command was kept with them: sealed again (an older
      // version's seal gave up on a FIFO and left the image writable by its service) and looked
      // at, once
      for (const dep of store.deployments.listByStatus(['ready', 'live', 'superseded'])) {
        const service = store.services.get(dep.service);
        if (!dep.imageDir || dep.defaultStart || !service) continue;
        try {
          const removed = await deps.buildLauncher.seal(dep.imageDir);
          if (removed.length) log.warn('deploy.image_resealed', { deployment: dep.id, removed: describeRemoved(removed) });
          const start = await RUNTIME_DEFS[service.runtime].defaultStart(dep.imageDir);
          for (const note of start.notes) log.warn('deploy.default_start_note', { deployment: dep.id, note });
          store.deployments.update(dep.id, { runtime: service.runtime, defaultStart: start.command });
        } catch (err) {
          // the image keeps serving with its runtime's fallback start command; the next start tries again
          log.error('deploy.image_reseal_failed', { deployment: dep.id, error: describeError(err) });
        }
      }
      return stale.length;
    },
    idle: () => deps.queue.idle(),
    hostBase: () => hostPackageHash(),
    removeKeptSource: async (id) => {
      await removeKeptSource(id);
    },
    abortAll() {
      for (const r of running.values()) r.abort.abort();
    },
    async stopBuilds(service) {
      for (const id of deps.queue.queued(service)) {
        if (!deps.queue.cancel(id)) continue;
        const pending = cancelled.get(id);
        cancelled.delete(id);
        pending?.('its service was deleted');
      }
      const mine = [...running].filter(([, r]) => r.service === service);
      for (const [, r] of mine) r.abort.abort();
      await Promise.all(mine.map(([id]) => runs.get(id)));
    },
  };
  return api;
}

/** why a launcher without the sandbox gives no system layer */
const NOT_SANDBOXED = 'builds are not sandboxed here (cellhost doctor says why), and apt-get would change the host itself';

/** lines of the app's output during its start check kept in the deployment's log (an app can print without end) */
const START_CHECK_MAX_LINES = 2000;

/** images kept for rollback per plan: the live one and the ones before it */
export const IMAGES_KEPT = { hobby: 3, pro: 20 } as const;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** what became of the checked app, for the build log; null when it was simply stopped */
function describeKept(outcome: PrewarmOutcome): string | null {
  switch (outcome.kind) {
    case 'kept':
      return `Kept running ahead of its first request and frozen: a prewarmed instance holding ${Math.round(outcome.memoryBytes / 1024 / 1024)} MB, thawed by the first request after it goes live`;
    case 'taken':
      return 'Kept running: it is serving';
    case 'no-room':
      return `Stopped, not kept as a prewarmed instance: ${outcome.reason}`;
    case 'failed':
      return `\x1b[33mStopped, not kept as a prewarmed instance (${outcome.code}): ${outcome.message}\x1b[0m`;
    case 'off':
      return null;
  }
}
