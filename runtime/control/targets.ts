// What a service should run, derived from its settings and live deployment. Anything that
// changes how an instance starts changes the generation, which makes the pool replace
// instances gracefully.
import crypto from 'node:crypto';
import { RUNTIME_DEFS } from '../../builder/runtimes/index.ts';
import type { Target } from '../instances/pool/types.ts';
import type { Deployment } from '../store/deployments.ts';
import type { Service } from '../store/services.ts';

export function startCommandFor(service: Service, imageDir: string): string {
  return service.startCommand?.trim() || RUNTIME_DEFS[service.runtime].defaultStart(imageDir);
}

export function buildTarget(service: Service, deployment: Deployment, env: Record<string, string>, envVersion: string): Target {
  const imageDir = deployment.imageDir!;
  const command = startCommandFor(service, imageDir);
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
    },
    concurrency: service.concurrency,
    maxInstances: service.maxInstances,
    minInstances: service.minInstances,
    idleTimeoutMs: Math.round(service.idleTimeoutS * 1000),
    healthPath: service.healthPath,
  };
}
