// A service's settings as a Knative Service (serving.knative.dev/v1): one revision template
// with the image by digest, the same scaling, timeouts and limits, env from its Secret.
import { CellhostError } from '../core/errors.ts';
import { APP_DIR } from './image-config.ts';
import type { ExportItem } from './model.ts';
import {
  AUTOSCALING,
  CELLHOST_ANNOTATIONS,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MAX_TIMEOUT_S,
  envSecretName,
  KNATIVE_API,
  NAME_LABEL,
  RESERVED_ENV,
  RESERVED_PORTS,
  RETENTION_MAX_S,
} from './knative-names.ts';
import { resourcesFor } from './resources.ts';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** variables an instance here gets from the platform, whatever the service sets: in the image */
const PLATFORM_ENV = ['CELLHOST_SERVICE', 'CELLHOST_DEPLOYMENT', 'CELLHOST_MEMORY_MB'];

/** the env names that go into the Secret, and warnings for those Knative or the image set instead */
export function exportedEnvNames(env: Record<string, string>): { names: string[]; warnings: string[] } {
  const names: string[] = [];
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (RESERVED_ENV.includes(name)) warnings.push(`env ${name} is not exported: Knative sets it itself (as cellhost sets PORT)`);
    else if (PLATFORM_ENV.includes(name)) warnings.push(`env ${name} is not exported: the image sets it, as cellhost does`);
    else names.push(name);
  }
  return { names, warnings };
}

const seconds = (s: number) => String(Number(s.toFixed(3)));

export function knativeServiceFor(item: ExportItem, image: string, namespace: string): { manifest: Manifest; warnings: string[] } {
  const s = item.service;
  const warnings: string[] = [];
  if (RESERVED_PORTS.includes(s.port)) {
    throw new CellhostError(
      'ERR_EXPORT_UNMAPPABLE',
      `service "${s.name}" serves on port ${s.port}, which Knative reserves (${RESERVED_PORTS.join(', ')}): change the service's port (an app that listens on $PORT needs nothing else)`,
    );
  }
  if (item.systemPackages) {
    warnings.push(
      `${s.name}: its live build installed system packages (${item.systemPackages.slice(0, 8).join(', ')}${item.systemPackages.length > 8 ? ' …' : ''}) in a system layer, which the exported image does not carry: install them in its base image`,
    );
  }
  const timeoutSeconds = Math.max(1, Math.ceil(s.requestTimeoutS));
  if (timeoutSeconds > DEFAULT_MAX_TIMEOUT_S) {
    warnings.push(`${s.name}: timeoutSeconds ${timeoutSeconds} is above Knative's default max-revision-timeout-seconds (${DEFAULT_MAX_TIMEOUT_S}): raise it in the config-defaults ConfigMap`);
  }
  if (s.concurrency > DEFAULT_MAX_CONCURRENCY) {
    warnings.push(`${s.name}: containerConcurrency ${s.concurrency} is above Knative's default container-concurrency-max-limit (${DEFAULT_MAX_CONCURRENCY}): raise it in the config-defaults ConfigMap`);
  }
  if (s.idleTimeoutS > RETENTION_MAX_S) {
    warnings.push(`${s.name}: the idle timeout (${s.idleTimeoutS} s) is longer than Knative's longest scale-to-zero retention: the last pod stays ${RETENTION_MAX_S} s`);
  }
  const env = exportedEnvNames(item.env);
  warnings.push(...env.warnings.map((w) => `${s.name}: ${w}`));

  const annotations: Record<string, string> = {
    [CELLHOST_ANNOTATIONS.runtime]: s.runtime,
    [CELLHOST_ANNOTATIONS.plan]: s.plan,
    [CELLHOST_ANNOTATIONS.requestTimeoutS]: seconds(s.requestTimeoutS),
    [CELLHOST_ANNOTATIONS.idleTimeoutS]: seconds(s.idleTimeoutS),
    [CELLHOST_ANNOTATIONS.deployment]: item.deploymentId,
  };
  if (s.buildCommand !== null) annotations[CELLHOST_ANNOTATIONS.buildCommand] = s.buildCommand;
  if (s.startCommand !== null) annotations[CELLHOST_ANNOTATIONS.startCommand] = s.startCommand;
  if (s.rootDir !== null) annotations[CELLHOST_ANNOTATIONS.rootDir] = s.rootDir;

  const container: Record<string, unknown> = {
    name: 'app',
    image,
    ports: [{ containerPort: s.port }],
    ...(env.names.length
      ? { env: env.names.map((name) => ({ name, valueFrom: { secretKeyRef: { name: envSecretName(s.name), key: name } } })) }
      : {}),
    resources: resourcesFor(s.memoryMb),
    ...(s.healthPath ? { readinessProbe: { httpGet: { path: s.healthPath } } } : {}),
    // as instances run here: not root, no privileges, everything read-only but /tmp
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
    workingDir: APP_DIR,
  };

  const manifest: Manifest = {
    apiVersion: KNATIVE_API,
    kind: 'Service',
    metadata: { name: s.name, namespace, labels: { [NAME_LABEL]: s.name }, annotations },
    spec: {
      template: {
        metadata: {
          labels: { [NAME_LABEL]: s.name },
          annotations: {
            [AUTOSCALING.minScale]: String(s.minInstances),
            [AUTOSCALING.maxScale]: String(s.maxInstances),
            // a new instance when the running ones are full, as here
            [AUTOSCALING.target]: String(s.concurrency),
            [AUTOSCALING.retention]: `${Math.min(Math.ceil(s.idleTimeoutS), RETENTION_MAX_S)}s`,
          },
        },
        spec: {
          containerConcurrency: s.concurrency,
          timeoutSeconds,
          containers: [container],
          // /tmp in memory, sized and counted as the instance's memory, as here
          volumes: [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: `${s.memoryMb}Mi` } }],
        },
      },
    },
  };
  return { manifest, warnings };
}
