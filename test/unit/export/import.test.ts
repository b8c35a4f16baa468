// Reading Knative manifests back into service settings.
import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseMemoryQuantity, readKnativeManifests } from '../../../runtime/export/knative-import.ts';

const service = (extra: { annotations?: Record<string, string>; template?: Record<string, string>; container?: Record<string, unknown>; spec?: Record<string, unknown> } = {}) => `
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: web
  annotations: ${JSON.stringify({ 'cellhost.dev/runtime': 'node', ...extra.annotations })}
spec:
  template:
    metadata:
      annotations: ${JSON.stringify(extra.template ?? {})}
    spec: ${JSON.stringify({ containers: [{ image: 'r/web@sha256:x', ...extra.container }], ...extra.spec })}
`;

describe('readKnativeManifests', () => {
  it('maps Knative fields back; Knative wins where it was edited, the annotations fill the rest', () => {
    const text = service({
      annotations: { 'cellhost.dev/request-timeout-seconds': '30.5', 'cellhost.dev/idle-timeout-seconds': '7200', 'cellhost.dev/start-command': 'node app.js' },
      template: { 'autoscaling.knative.dev/min-scale': '1', 'autoscaling.knative.dev/maxScale': '4', 'autoscaling.knative.dev/scale-to-zero-pod-retention-period': '1h' },
      container: { ports: [{ containerPort: 3000 }], resources: { limits: { memory: '1Gi' } }, readinessProbe: { httpGet: { path: '/healthz' } } },
      spec: { containerConcurrency: 50, timeoutSeconds: 31 },
    });
    const { services } = readKnativeManifests([{ file: 'web.yaml', text }]);
    expect(services[0]!.body).toMatchObject({
      name: 'web', runtime: 'node', startCommand: 'node app.js', port: 3000, memoryMb: 1024, concurrency: 50,
      minInstances: 1, maxInstances: 4, requestTimeoutS: 30.5, idleTimeoutS: 7200, healthPath: '/healthz',
    });
    // timeoutSeconds edited to something else than the export wrote: it wins
    const edited = readKnativeManifests([{ file: 'w.yaml', text: service({ annotations: { 'cellhost.dev/request-timeout-seconds': '30.5' }, spec: { timeoutSeconds: 90 } }) }]);
    expect(edited.services[0]!.body.requestTimeoutS).toBe(90);
  });

  it('refuses a Service that only names an image', () => {
    const text = `apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\nspec: {template: {spec: {containers: [{image: ghcr.io/knative/helloworld-go:latest}]}}}\n`;
    expect(() => readKnativeManifests([{ file: 'h.yaml', text }])).toThrow(
      expect.objectContaining({ code: 'ERR_IMPORT_IMAGE_ONLY', message: expect.stringContaining('ghcr.io/knative/helloworld-go:latest') }),
    );
  });

  it('env from a Secret in the files; a missing Secret or key is an error', () => {
    const withEnv = service({ container: { env: [{ name: 'A', value: 'plain' }, { name: 'B', valueFrom: { secretKeyRef: { name: 'web-env', key: 'B' } } }] } });
    const secret = `apiVersion: v1\nkind: Secret\nmetadata: {name: web-env}\ndata: {B: ${Buffer.from('from secret').toString('base64')}}\n`;
    expect(readKnativeManifests([{ file: 'web.yaml', text: withEnv }, { file: 'web.env.yaml', text: secret }]).services[0]!.env).toEqual({ A: 'plain', B: 'from secret' });
    expect(() => readKnativeManifests([{ file: 'web.yaml', text: withEnv }])).toThrow(expect.objectContaining({ code: 'ERR_IMPORT_INVALID', message: expect.stringContaining('Secret "web-env"') }));
  });

  it('domains from DomainMappings; CronJobs and other kinds are reported, not imported', () => {
    const text = `${service()}---\napiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata: {name: web.example.com}\nspec: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: web}}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: web-nightly}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n`;
    const { services, notes } = readKnativeManifests([{ file: 'all.yaml', text }]);
    expect(services[0]!.body.domains).toEqual(['web.example.com']);
    expect(notes).toEqual(['all.yaml: CronJob web-nightly not imported: cellhost has no cron jobs yet', 'all.yaml: ConfigMap other ignored (not a Knative Service, Secret or serving.knative.dev/v1beta1 DomainMapping)']);
  });

  it('bad files: not YAML, no Service, a setting out of range', () => {
    expect(() => readKnativeManifests([{ file: 'x.yaml', text: 'a: [1' }])).toThrow(expect.objectContaining({ code: 'ERR_IMPORT_INVALID' }));
    expect(() => readKnativeManifests([{ file: 'x.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n' }])).toThrow(/no Knative Service/);
    expect(() => readKnativeManifests([{ file: 'x.yaml', text: service({ container: { resources: { limits: { memory: '64Mi' } } } }) }])).toThrow(/memoryMb/);
    expect(() => readKnativeManifests([{ file: 'x.yaml', text: service({ annotations: { 'cellhost.dev/runtime': 'java' } }) }])).toThrow(/runtime/);
  });
});

describe('quantities and durations', () => {
  it('memory quantities in MB of 2^20 bytes', () => {
    expect(parseMemoryQuantity('256Mi')).toBe(256);
    expect(parseMemoryQuantity('2Gi')).toBe(2048);
    expect(parseMemoryQuantity(String(512 * 2 ** 20))).toBe(512);
    expect(parseMemoryQuantity('1G')).toBe(954);
    expect(parseMemoryQuantity('lots')).toBeNull();
  });
  it('Go durations in seconds', () => {
    expect(parseGoDuration('300s')).toBe(300);
    expect(parseGoDuration('1h30m')).toBe(5400);
    expect(parseGoDuration('1.5s')).toBe(1.5);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('5 minutes')).toBeNull();
  });
});
