// Names Knative Serving and cellhost's manifests agree on: the annotation keys, and what
// Knative reserves for itself (from its validation of serving.knative.dev/v1).

export const KNATIVE_API = 'serving.knative.dev/v1';
export const DOMAIN_MAPPING_API = 'serving.knative.dev/v1beta1';

export const AUTOSCALING = {
  minScale: 'autoscaling.knative.dev/min-scale',
  maxScale: 'autoscaling.knative.dev/max-scale',
  target: 'autoscaling.knative.dev/target',
  /** how long the last pod stays after the autoscaler decided to scale to zero: the idle timeout */
  retention: 'autoscaling.knative.dev/scale-to-zero-pod-retention-period',
} as const;

/** Knative accepts a retention period of at most an hour */
export const RETENTION_MAX_S = 3600;
/** the defaults of config-defaults' max-revision-timeout-seconds and container-concurrency-max-limit */
export const DEFAULT_MAX_TIMEOUT_S = 600;
export const DEFAULT_MAX_CONCURRENCY = 1000;

/** queue-proxy's and the activator's ports: a user container may not use them */
export const RESERVED_PORTS: readonly number[] = [8008, 8012, 8013, 8022, 9090, 9091];
/** set by Knative itself: a manifest that sets them is rejected */
export const RESERVED_ENV: readonly string[] = ['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'];

/** cellhost's settings that Knative has no field for, kept so an import gets them back */
export const CELLHOST_ANNOTATIONS = {
  runtime: 'cellhost.dev/runtime',
  plan: 'cellhost.dev/plan',
  buildCommand: 'cellhost.dev/build-command',
  startCommand: 'cellhost.dev/start-command',
  rootDir: 'cellhost.dev/root-dir',
  /** exact values: Knative's fields hold whole seconds, and the retention at most an hour */
  requestTimeoutS: 'cellhost.dev/request-timeout-seconds',
  idleTimeoutS: 'cellhost.dev/idle-timeout-seconds',
  /** the deployment the image was made from */
  deployment: 'cellhost.dev/deployment',
} as const;

export const NAME_LABEL = 'app.kubernetes.io/name';

/** the Secret that holds a service's env values */
export const envSecretName = (service: string) => `${service}-env`;
