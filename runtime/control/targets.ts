// What a service should run, derived from its settings and live deployment, and keeping the
// pool's target in step with it. Anything that changes how an instance starts changes the
// generation, which makes the pool replace instances gracefully.
import crypto from 'node:crypto';
import { parseEdgeStart, RUNTIME_DEFS } from '../../builder/runtimes/index.ts';
import { CellhostError } from '../core/errors.ts';
import type { Pool, Target } from '../instances/pool/types.ts';
import type { VerifyOptions, VerifyOutcome } from '../instances/pool/verify.ts';
import type { Store } from '../store/index.ts';
import { layerDirOf } from '../sandbox/system-layer.ts';
import type { Deployment } from '../store/deployments.ts';
import type { Service } from '../store/services.ts';

/**
 * The service's own start command, else the default worked out from the image after its build
 * (never here: reading an image is slow and untrusted, and this runs on every sync), else the
 * runtime's fallback when the image was built for another runtime than the service's now.
 */
export function startCommandFor(service: Service, deployment: Deployment): string {
  const own = service.startCommand?.trim();
  if (own) return own;
  if (deployment.defaultStart && deployment.runtime === service.runtime) return deployment.defaultStart;
  return RUNTIME_DEFS[service.runtime].fallbackStart;
}

export function buildTarget(service: Service, deployment: Deployment, env: Record<string, string>, envVersion: string): Target {
  const imageDir = deployment.imageDir!;
  const command = startCommandFor(service, deployment);
  const fingerprint = crypto
    .createHash('sha256')
    .update(JSON.stringify([command, service.port, service.memoryMb, service.runtime, service.healthPath, envVersion]))
    .digest('hex')
    .slice(0, 12);
  return {
    generation: `${deployment.id}:${fingerprint}`,
    spec: {
      service: service.name,
      deploymentId: deployment.id,
      imageDir,
      runtime: service.runtime,
      command,
      port: service.port,
      memoryMb: service.memoryMb,
      env,
      ...(deployment.systemLayer ? { systemLayer: layerDirOf(imageDir) } : {}),
      // `cellhost-edge MODULE`: served by the edge host, for an edge service or a node one
      edge: service.runtime === 'node' || service.runtime === 'edge' ? parseEdgeStart(command) : null,
    },
    concurrency: service.concurrency,
    maxInstances: service.maxInstances,
    minInstances: service.minInstances,
    idleTimeoutMs: Math.round(service.idleTimeoutS * 1000),
    healthPath: service.healthPath,
    prewarm: service.prewarm,
  };
}

/**
 * Makes the pool run what the store says is live. Every change that affects it ends here: a
 * deployment going live, a settings or env change, the platform's start.
 */
export interface TargetSync {
  /** make the pool run what is live now; `standby` unless it is the platform's start */
  sync(service: string, standby?: boolean): void;
  /** every service, at the platform's start */
  syncAll(): void;
  /** the service is being deleted: the pool gets nothing of it, whatever changes meanwhile (a
   *  build that ends), until release() */
  withhold(service: string): void;
  release(service: string): void;
  /**
   * the start check: a built deployment started once, outside the service's rotation, as it
   * would run with `service`'s settings (a build's manifest applied) and its env now; then kept
   * frozen as the service's prewarmed instance when one is wanted, else stopped
   */
  verify(service: Service, deploymentId: string, opts?: VerifyOptions): Promise<VerifyOutcome>;
  /**
   * after the platform's start: the services that served requests get their prewarmed instance
   * again, most recently used first, one at a time, until the budget keeps no more
   */
  prewarmRecent(lastUsed: readonly { service: string; at: number }[]): Promise<void>;
}

export interface TargetSyncDeps {
  store: Store;
  pool: Pick<Pool, 'setTarget' | 'verify' | 'prewarm'>;
  /** the service's variables and a version that changes whenever they do */
  envFor(service: string): { vars: Record<string, string>; version: string };
}

export function createTargetSync(deps: TargetSyncDeps): TargetSync {
  const { store, pool } = deps;
  const withheld = new Set<string>();

  function sync(name: string, standby = true): void {
    const s = withheld.has(name) ? undefined : store.services.get(name);
    const dep = s?.liveDeploymentId ? store.deployments.get(s.liveDeploymentId) : undefined;
    if (!s || !dep?.imageDir) {
      pool.setTarget(name, null);
      return;
    }
    const env = deps.envFor(name);
    pool.setTarget(name, buildTarget(s, dep, env.vars, env.version), { standby });
  }

  return {
    sync,
    syncAll() {
      for (const s of store.services.list()) sync(s.name, false);
    },
    verify(service, deploymentId, opts) {
      const dep = store.deployments.get(deploymentId);
      if (!dep?.imageDir) throw new CellhostError('ERR_DEPLOYMENT_NOT_READY', `deployment "${deploymentId}" has no image to start`);
      const env = deps.envFor(service.name);
      return pool.verify(service.name, buildTarget(service, dep, env.vars, env.version), opts);
    },
    async prewarmRecent(lastUsed) {
      for (const { service, at } of lastUsed) {
        const s = withheld.has(service) ? undefined : store.services.get(service);
        const dep = s?.liveDeploymentId ? store.deployments.get(s.liveDeploymentId) : undefined;
        if (!s || !dep?.imageDir || !s.prewarm || s.minInstances > 0) continue;
        const env = deps.envFor(service);
        const outcome = await pool.prewarm(service, buildTarget(s, dep, env.vars, env.version), { reason: 'restart', lastUsedAt: at });
        // every service after this one was used less recently: none of them would be kept either
        if (outcome.kind === 'no-room' || (outcome.kind === 'off' && /CELLHOST_PREWARM_MB|shutting down/.test(outcome.reason))) return;
      }
    },
    withhold: (name) => void withheld.add(name),
    release: (name) => void withheld.delete(name),
  };
}
