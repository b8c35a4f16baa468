// What a service should run, derived from its settings and live deployment. Anything that
// changes how an instance starts changes the generation, which makes the pool replace
// instances gracefully.
import crypto from 'node:crypto';
import { RUNTIME_DEFS } from '../../builder/runtimes/index.ts';
import type { Target } from '../instances/pool.ts';
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
    },
    concurrency: service.concurrency,
    maxInstances: service.maxInstances,
    minInstances: service.minInstances,
    idleTimeoutMs: Math.round(service.idleTimeoutS * 1000),
    healthPath: service.healthPath,
  };
}
