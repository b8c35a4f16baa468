// The image's config: the same start command, environment and working dir an instance gets
// here, as a non-root user, with the serving port exposed.
import { appArgv, platformEnv } from '../instances/launcher.ts';
import { runtimePathEnv } from '../sandbox/runtime-env.ts';
import type { BaseImage, ExportItem } from './model.ts';

export const APP_DIR = '/app';
/** a numeric non-root user (distroless' "nonroot"): Kubernetes' runAsNonRoot can check a number */
export const IMAGE_UID = 65532;

export interface ImageConfig {
  cmd: string[];
  env: Record<string, string>;
  workingDir: string;
  user: string;
  exposedPorts: string[];
  labels: Record<string, string>;
  /** on the image manifest */
  annotations: Record<string, string>;
  /** the build's time, so the same build on the same base gives the same config */
  created: string;
}

export function imageConfigFor(item: ExportItem, base: BaseImage): ImageConfig {
  const s = item.service;
  const spec = {
    instanceId: 'image',
    service: s.name,
    deploymentId: item.deploymentId,
    imageDir: APP_DIR,
    runtime: s.runtime,
    command: item.startCommand,
    port: s.port,
    memoryMb: s.memoryMb,
    env: {},
  };
  return {
    cmd: appArgv(spec),
    // what every instance gets (HOME and TMPDIR in /tmp, PORT, CELLHOST_*), with the PATH the
    // image's own toolchain is found on instead of this host's toolchain dirs
    env: { ...platformEnv(spec, s.port, '/tmp', APP_DIR), ...runtimePathEnv(s.runtime, APP_DIR, []) },
    workingDir: APP_DIR,
    user: `${IMAGE_UID}:${IMAGE_UID}`,
    exposedPorts: [`${s.port}/tcp`],
    labels: {
      'org.opencontainers.image.title': s.name,
      'org.opencontainers.image.version': item.deploymentId,
    },
    annotations: {
      'org.opencontainers.image.base.name': base.ref.replace(/@sha256:[a-f0-9]+$/, ''),
      'org.opencontainers.image.base.digest': base.digest,
    },
    created: item.builtAt,
  };
}
