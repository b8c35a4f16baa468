// What Knative Serving documents for the objects the export writes, as far as the export uses
// them: no cluster is available to validate against, so the fields, their types and the rules
// Knative's webhook applies are written down here. Sources: knative/serving
// config/core/300-resources/service.yaml and domain-mapping.yaml (the CRDs' openAPIV3Schema),
// pkg/apis/serving/k8s_validation.go (reserved ports, env names and paths; emptyDir media),
// pkg/apis/autoscaling/annotation_validation.go (annotation values), config-defaults' limits.
// Every key not listed is reported: the export must use only documented fields.

type Spec =
  | 'string'
  | 'integer'
  | 'boolean'
  | 'quantity'
  | { object: Record<string, Spec>; required?: string[] }
  | { map: Spec }
  | { array: Spec };

// the CRD's pattern for resource quantities (x-kubernetes-int-or-string)
const QUANTITY = /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

const objectMeta: Spec = {
  object: { name: 'string', namespace: 'string', labels: { map: 'string' }, annotations: { map: 'string' } },
  required: ['name'],
};

const container: Spec = {
  object: {
    name: 'string',
    image: 'string',
    args: { array: 'string' },
    command: { array: 'string' },
    workingDir: 'string',
    ports: { array: { object: { containerPort: 'integer', name: 'string', protocol: 'string' } } },
    env: {
      array: {
        object: {
          name: 'string',
          value: 'string',
          valueFrom: { object: { secretKeyRef: { object: { name: 'string', key: 'string', optional: 'boolean' }, required: ['key'] } } },
        },
        required: ['name'],
      },
    },
    resources: { object: { limits: { map: 'quantity' }, requests: { map: 'quantity' } } },
    readinessProbe: { object: { httpGet: { object: { path: 'string', port: 'integer' } }, periodSeconds: 'integer' } },
    securityContext: {
      object: {
        allowPrivilegeEscalation: 'boolean',
        capabilities: { object: { add: { array: 'string' }, drop: { array: 'string' } } },
        readOnlyRootFilesystem: 'boolean',
        runAsGroup: 'integer',
        runAsNonRoot: 'boolean',
        runAsUser: 'integer',
        seccompProfile: { object: { type: 'string', localhostProfile: 'string' }, required: ['type'] },
      },
    },
    volumeMounts: { array: { object: { name: 'string', mountPath: 'string', readOnly: 'boolean', subPath: 'string' }, required: ['mountPath', 'name'] } },
  },
};

export const KNATIVE_SERVICE: Spec = {
  object: {
    apiVersion: 'string',
    kind: 'string',
    metadata: objectMeta,
    spec: {
      object: {
        template: {
          object: {
            metadata: { object: { name: 'string', labels: { map: 'string' }, annotations: { map: 'string' } } },
            spec: {
              object: {
                containerConcurrency: 'integer',
                timeoutSeconds: 'integer',
                responseStartTimeoutSeconds: 'integer',
                idleTimeoutSeconds: 'integer',
                containers: { array: container },
                volumes: {
                  array: { object: { name: 'string', emptyDir: { object: { medium: 'string', sizeLimit: 'quantity' } } }, required: ['name'] },
                },
              },
              required: ['containers'],
            },
          },
        },
      },
    },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
};

export const DOMAIN_MAPPING: Spec = {
  object: {
    apiVersion: 'string',
    kind: 'string',
    metadata: objectMeta,
    spec: { object: { ref: { object: { apiVersion: 'string', kind: 'string', name: 'string', namespace: 'string' }, required: ['kind', 'name', 'apiVersion'] } }, required: ['ref'] },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
};

export const SECRET: Spec = {
  object: { apiVersion: 'string', kind: 'string', metadata: objectMeta, type: 'string', data: { map: 'string' }, stringData: { map: 'string' } },
  required: ['apiVersion', 'kind', 'metadata'],
};

/** type errors and undocumented keys, as "path: problem" */
export function checkSchema(value: unknown, spec: Spec, at = '$'): string[] {
  if (spec === 'string') return typeof value === 'string' ? [] : [`${at}: expected a string, got ${JSON.stringify(value)}`];
  if (spec === 'integer') return Number.isInteger(value) ? [] : [`${at}: expected an integer, got ${JSON.stringify(value)}`];
  if (spec === 'boolean') return typeof value === 'boolean' ? [] : [`${at}: expected a boolean, got ${JSON.stringify(value)}`];
  if (spec === 'quantity') return (typeof value === 'string' && QUANTITY.test(value)) || Number.isInteger(value) ? [] : [`${at}: not a quantity: ${JSON.stringify(value)}`];
  if ('array' in spec) {
    if (!Array.isArray(value)) return [`${at}: expected an array`];
    return value.flatMap((v, i) => checkSchema(v, spec.array, `${at}[${i}]`));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: expected an object`];
  const obj = value as Record<string, unknown>;
  if ('map' in spec) return Object.entries(obj).flatMap(([k, v]) => checkSchema(v, spec.map, `${at}.${k}`));
  const errors = (spec.required ?? []).filter((k) => !(k in obj)).map((k) => `${at}.${k}: required`);
  for (const [k, v] of Object.entries(obj)) {
    const sub = spec.object[k];
    errors.push(...(sub ? checkSchema(v, sub, `${at}.${k}`) : [`${at}.${k}: not a documented field`]));
  }
  return errors;
}

const RESERVED_PORTS = [8008, 8012, 8013, 8022, 9090, 9091];
const RESERVED_ENV = ['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'];
const RESERVED_PATHS = ['/', '/dev', '/dev/log'];
const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;
const durationSeconds = (d: string) => [...d.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)].reduce((t, m) => t + Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 0.001 }[m[2] as 'h']!, 0);

/**
 * The webhook's rules for a Service. The limits are config-defaults' (max-revision-timeout-seconds
 * 600, container-concurrency-max-limit 1000) unless the cluster's operator raised them.
 */
export function checkKnativeRules(svc: any, limits: { maxTimeoutS?: number; maxConcurrency?: number } = {}): string[] {
  const maxTimeoutS = limits.maxTimeoutS ?? 600;
  const maxConcurrency = limits.maxConcurrency ?? 1000;
  const errors: string[] = [];
  const spec = svc.spec.template.spec;
  const ann: Record<string, string> = svc.spec.template.metadata?.annotations ?? {};
  if (svc.apiVersion !== 'serving.knative.dev/v1' || svc.kind !== 'Service') errors.push('not a serving.knative.dev/v1 Service');
  if (spec.containers.length !== 1) errors.push('one container expected');
  const c = spec.containers[0];
  const port = c.ports?.[0];
  if (port && RESERVED_PORTS.includes(port.containerPort)) errors.push(`containerPort ${port.containerPort} is reserved`);
  if (port && (port.containerPort < 1 || port.containerPort > 65535)) errors.push('containerPort out of range');
  if (port?.name !== undefined && !['h2c', 'http1'].includes(port.name)) errors.push(`port name ${port.name} not allowed`);
  if (port?.protocol !== undefined && port.protocol !== 'TCP') errors.push('only TCP');
  if (c.name === 'queue-proxy') errors.push('reserved container name');
  for (const e of c.env ?? []) if (RESERVED_ENV.includes(e.name)) errors.push(`env ${e.name} is reserved`);
  for (const e of c.env ?? []) if (e.value !== undefined && e.valueFrom !== undefined) errors.push(`env ${e.name}: value and valueFrom`);
  const volumes = new Map<string, any>((spec.volumes ?? []).map((v: any) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    if (!volumes.has(m.name)) errors.push(`volumeMount ${m.name} has no volume`);
    if (RESERVED_PATHS.includes(m.mountPath)) errors.push(`mountPath ${m.mountPath} is reserved`);
    if (!m.mountPath.startsWith('/')) errors.push('mountPath not absolute');
  }
  for (const v of volumes.values()) if (v.emptyDir?.medium !== undefined && !['', 'Memory'].includes(v.emptyDir.medium)) errors.push('emptyDir medium');
  if (c.securityContext?.capabilities?.add?.length) errors.push('adding capabilities needs a feature flag');
  if (spec.containerConcurrency < 0 || spec.containerConcurrency > maxConcurrency) errors.push(`containerConcurrency outside 0..${maxConcurrency} (container-concurrency-max-limit)`);
  if (spec.timeoutSeconds < 0 || spec.timeoutSeconds > maxTimeoutS) errors.push(`timeoutSeconds outside 0..${maxTimeoutS} (max-revision-timeout-seconds)`);
  const int = (k: string) => (ann[k] === undefined ? undefined : Number(ann[k]));
  const min = int('autoscaling.knative.dev/min-scale');
  const max = int('autoscaling.knative.dev/max-scale');
  for (const [k, v] of [['min-scale', min], ['max-scale', max]] as const) if (v !== undefined && (!Number.isInteger(v) || v < 0)) errors.push(`${k} not a whole number`);
  if (min !== undefined && max !== undefined && max !== 0 && max < min) errors.push('max-scale below min-scale');
  const target = ann['autoscaling.knative.dev/target'];
  if (target !== undefined && !(Number(target) >= 0.01)) errors.push('target below 0.01');
  const retention = ann['autoscaling.knative.dev/scale-to-zero-pod-retention-period'];
  if (retention !== undefined && (!GO_DURATION.test(retention) || durationSeconds(retention) > 3600)) errors.push('retention period not a duration of at most 1h');
  return errors;
}
