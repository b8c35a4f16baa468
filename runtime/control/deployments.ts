// The deploy pipeline every verb ends in: source → fresh dir → build → image → live.
// A failed build leaves the previous deployment serving.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BuildLauncher } from '../../builder/launcher.ts';
import { PLAN_LIMITS } from '../../builder/launcher.ts';
import type { BuildLog, LogHub, LogTransform } from '../../builder/log-hub.ts';
import type { BuildQueue } from '../../builder/queue.ts';
import { runBuildCommand } from '../../builder/runner.ts';
import { checkToolchain, RUNTIME_DEFS } from '../../builder/runtimes/index.ts';
import { unpackSource, type SourceInput } from '../../builder/sources/index.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError, describeError, diskFullError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../store/index.ts';
import type { Deployment } from '../store/deployments.ts';

export interface DeploymentsDeps {
  store: Store;
  queue: BuildQueue;
  logs: LogHub;
  buildLauncher: BuildLauncher;
  paths: { images: string; builds: string; cache: string };
  sourceLimits: { maxBytes: number; maxEntries: number };
  /** overrides every plan's build time limit (tests, slow hosts) */
  buildTimeoutMs?: number;
  clock: Clock;
  log: Logger;
  /** the service's variables for the build (decrypted) */
  envFor(service: string): Record<string, string>;
  /** hides the service's secret values in its build log */
  logTransform?(service: string): LogTransform;
  /** the live deployment changed: the pool must follow */
  onLiveChanged(service: string): void;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
}

export interface Deployments {
  /** records a queued deployment and starts its build in the background */
  create(service: string, source: SourceInput, sourceLabel: string): Deployment;
  promote(id: string): Deployment;
  /** at start: builds that were running when the platform stopped are interrupted */
  recover(): Promise<number>;
  /** resolves when every queued and running build has finished */
  idle(): Promise<void>;
  /** stop every running build (clean shutdown): they end as interrupted */
  abortAll(): void;
}

export function createDeployments(deps: DeploymentsDeps): Deployments {
  const { store, log } = deps;
  const iso = () => new Date(deps.clock.now()).toISOString();
  const running = new Map<string, AbortController>();
  const cancelled = new Map<string, () => void>();

  function event(service: string, name: string, fields: Record<string, unknown>) {
    deps.onEvent?.(service, name, fields);
  }

  async function build(dep: Deployment, source: SourceInput, out: BuildLog): Promise<void> {
    cancelled.delete(dep.id);
    const say = (text: string) => out.write(`\x1b[1;36m==>\x1b[0m ${text}\r\n`);
    const abort = new AbortController();
    running.set(dep.id, abort);
    const imageDir = path.join(deps.paths.images, dep.id);
    const started = deps.clock.now();
    try {
      const service = store.services.get(dep.service);
      if (!service) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `service "${dep.service}" was deleted`);
      store.deployments.update(dep.id, { status: 'building', startedAt: iso() });
      event(dep.service, 'deploy_building', { deploymentId: dep.id });
      checkToolchain(service.runtime);

      say(`Fetching source (${dep.source})`);
      await fs.mkdir(imageDir, { recursive: true });
      const unpacked = await unpackSource(source, imageDir, { limits: deps.sourceLimits, rootDir: service.rootDir ?? undefined, log, signal: abort.signal });
      say(`Source: ${unpacked.files} files, ${formatBytes(unpacked.bytes)}`);

      const runtime = RUNTIME_DEFS[service.runtime];
      const previous = previousImage(service.name, dep.id);
      if (previous && runtime.reuseDependencies) {
        const reused = await runtime.reuseDependencies(previous.imageDir!, imageDir).catch(() => null);
        if (reused) say(`Reusing ${reused} from ${previous.id}`);
      }
      const setup = runtime.prepare(imageDir);
      const buildCommand = service.buildCommand ?? runtime.defaultBuild(imageDir);
      const steps = [setup, buildCommand].filter((s): s is string => !!s);
      if (steps.length) {
        const limits = PLAN_LIMITS[service.plan];
        const firstLine = (text: string) => text.split('\n')[0] + (text.includes('\n') ? ' …' : '');
        if (setup) say(`Runtime setup: ${firstLine(setup)}`);
        say(buildCommand ? `Build command (${service.plan} plan limits): ${firstLine(buildCommand)}` : 'No build command');
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
          cacheDir: path.join(deps.paths.cache, service.name),
        });
        await runBuildCommand(cmd, { timeoutMs: deps.buildTimeoutMs ?? limits.timeoutMs, signal: abort.signal, onOutput: (t) => out.write(t) });
      } else {
        say('No build command: the source is the image');
      }
      store.deployments.update(dep.id, { status: 'ready', imageDir, finishedAt: iso() });
      say(`Build finished in ${((deps.clock.now() - started) / 1000).toFixed(1)} s`);
      promote(dep.id);
      say(`Deployment ${dep.id} is live`);
      const pruned = await pruneImages(service.name, IMAGES_KEPT[service.plan]);
      if (pruned.count) say(`Removed ${pruned.count} old image(s) beyond the ${IMAGES_KEPT[service.plan]} kept for rollback, freeing ${formatBytes(pruned.bytes)}`);
    } catch (err) {
      // free the space first: a full disk is a common reason to be here, and every write below needs room
      await fs.rm(imageDir, { recursive: true, force: true }).catch(() => {});
      const coded =
        err instanceof CellhostError ? err : (diskFullError(err) ?? new CellhostError('ERR_INTERNAL', 'the build failed unexpectedly', { cause: err }));
      if (coded.code === 'ERR_INTERNAL') log.error('deploy.build_crashed', { deployment: dep.id, error: describeError(err) });
      const interrupted = coded.code === 'ERR_BUILD_INTERRUPTED';
      say(`\x1b[31mBuild ${interrupted ? 'interrupted' : 'failed'}: ${coded.message}\x1b[0m`);
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
      if (source.kind !== 'git') await fs.rm(source.file, { force: true });
    }
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
    for (const d of doomed) {
      bytes += await dirSize(d.imageDir!);
      await fs.rm(d.imageDir!, { recursive: true, force: true });
      store.deployments.update(d.id, { imageDir: null });
    }
    if (doomed.length) event(service, 'images_pruned', { count: doomed.length, bytes, deploymentIds: doomed.map((d) => d.id) });
    return { count: doomed.length, bytes };
  }

  function promote(id: string): Deployment {
    const dep = store.deployments.get(id);
    if (!dep) throw new CellhostError('ERR_DEPLOYMENT_NOT_FOUND', `no deployment "${id}"`);
    if (!['ready', 'live', 'superseded'].includes(dep.status) || !dep.imageDir) {
      const why = dep.imageDir || !['ready', 'live', 'superseded'].includes(dep.status) ? `is ${dep.status}` : 'has no image any more (older images are removed past the rollback limit)';
      throw new CellhostError('ERR_DEPLOYMENT_NOT_READY', `deployment "${id}" ${why}: only a built image can go live`);
    }
    const service = store.services.get(dep.service)!;
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

  return {
    create(serviceName, source, sourceLabel) {
      const service = store.services.get(serviceName);
      if (!service) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${serviceName}"`);
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
      const out = deps.logs.open(id, deps.logTransform?.(serviceName));
      out.write(`\x1b[1;36m==>\x1b[0m Queued deployment ${id} of ${serviceName}\r\n`);
      event(serviceName, 'deploy_queued', { deploymentId: id, source: sourceLabel });
      deps.queue.enqueue({ id, service: serviceName, run: () => build(dep, source, out) });
      // if the job is cancelled before it runs: close its log and drop its upload
      cancelled.set(id, () => {
        out.write(`\x1b[1;33m==>\x1b[0m Cancelled: a newer deployment replaced this one before its build started\r\n`);
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
        await fs.rm(path.join(deps.paths.images, dep.id), { recursive: true, force: true });
      }
      return stale.length;
    },
    idle: () => deps.queue.idle(),
    abortAll() {
      for (const a of running.values()) a.abort();
    },
  };
}

/** images kept for rollback per plan: the live one and the ones before it */
export const IMAGES_KEPT = { hobby: 3, pro: 20 } as const;

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const st = await fs.lstat(path.join(e.parentPath, e.name)).catch(() => null);
    total += st?.size ?? 0;
  }
  return total;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
