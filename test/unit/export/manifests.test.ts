// The mapping from a service to Knative objects, without images or a registry.
import { describe, expect, it } from 'vitest';
import { SERVICE_DEFAULTS } from '../../../runtime/control/service-settings.ts';
import { defaultBaseImage } from '../../../runtime/export/base-images.ts';
import { cronJobsFor } from '../../../runtime/export/cron-jobs.ts';
import { envSecretFor } from '../../../runtime/export/env-secret.ts';
import { parseBaseImageFlags, parseImageRef, parseRegistry } from '../../../runtime/export/image-ref.ts';
import { knativeServiceFor } from '../../../runtime/export/knative-service.ts';
import type { ExportItem } from '../../../runtime/export/model.ts';
import { resourcesFor } from '../../../runtime/export/resources.ts';
import type { Service } from '../../../runtime/store/services.ts';

function item(settings: Partial<Service> = {}, extra: Partial<ExportItem> = {}): ExportItem {
  const service: Service = {
    ...SERVICE_DEFAULTS,
    runtime: 'node',
    name: 'web',
    uid: 2_000_000_000,
    subuidBase: null,
    explicitSettings: [],
    liveDeploymentId: 'd-0123456789ab',
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: '2026-12-01T00:00:00.000Z',
    ...settings,
  };
  return { service, deploymentId: 'd-0123456789ab', builtAt: '2026-12-01T00:00:00.000Z', imageDir: '/nonexistent', startCommand: 'node app.js', env: {}, cronJobs: [], ...extra };
}

describe('a service whose live build has a system layer', () => {
  it('is exported with a warning naming the packages the image does not carry', () => {
    const layered = knativeServiceFor(item({}, { systemPackages: ['hello 2.10-3'] }), 'registry.example/web', 'default').warnings;
    const plain = knativeServiceFor(item(), 'registry.example/web', 'default').warnings;
    expect(layered.filter((w) => !plain.includes(w))).toEqual([expect.stringContaining('installed system packages (hello 2.10-3) in a system layer, which the exported image does not carry')]);
  });
});

describe('resources follow memory as here', () => {
  it('limits: the memory size, and memory / 1769 MB of a core; requests: a tenth of the CPU, at most 128 Mi', () => {
    expect(resourcesFor(1769)).toEqual({ limits: { memory: '1769Mi', cpu: '1000m' }, requests: { memory: '128Mi', cpu: '100m' } });
    expect(resourcesFor(128)).toEqual({ limits: { memory: '128Mi', cpu: '72m' }, requests: { memory: '128Mi', cpu: '7m' } });
    expect(resourcesFor(3538).limits.cpu).toBe('2000m');
    expect(resourcesFor(7076).limits.cpu).toBe('4000m');
  });
});

describe('knativeServiceFor', () => {
  it('refuses a port Knative reserves, naming it', () => {
    expect(() => knativeServiceFor(item({ port: 9090 }), 'r/web@sha256:x', 'default')).toThrow(expect.objectContaining({ code: 'ERR_EXPORT_UNMAPPABLE', message: expect.stringContaining('port 9090') }));
  });

  it('warns about what a default Knative install refuses or caps', () => {
    const { warnings, manifest } = knativeServiceFor(item({ requestTimeoutS: 900, concurrency: 5000, idleTimeoutS: 86400 }), 'r/web@sha256:x', 'default');
    expect(warnings.join('\n')).toMatch(/timeoutSeconds 900 .*max-revision-timeout-seconds/);
    expect(warnings.join('\n')).toMatch(/containerConcurrency 5000 .*container-concurrency-max-limit/);
    expect(warnings.join('\n')).toMatch(/idle timeout \(86400 s\).*3600 s/);
    const tmpl = (manifest.spec as any).template;
    expect(tmpl.metadata.annotations['autoscaling.knative.dev/scale-to-zero-pod-retention-period']).toBe('3600s');
    expect(manifest.metadata.annotations!['cellhost.dev/idle-timeout-seconds']).toBe('86400');
    expect(tmpl.spec.timeoutSeconds).toBe(900);
  });

  it('rounds a fractional timeout up to whole seconds and keeps the exact value', () => {
    const { manifest } = knativeServiceFor(item({ requestTimeoutS: 0.25 }), 'r/web@sha256:x', 'ns');
    expect((manifest.spec as any).template.spec.timeoutSeconds).toBe(1);
    expect(manifest.metadata.annotations!['cellhost.dev/request-timeout-seconds']).toBe('0.25');
    expect(manifest.metadata.namespace).toBe('ns');
  });

  it('leaves out env names Knative or the image set, with a warning; the Secret holds the rest', () => {
    const it1 = item({ requestTimeoutS: 60 }, { env: { PORT: '1', K_SERVICE: 'x', CELLHOST_SERVICE: 'y', API_KEY: 's3cret' } });
    const { manifest, warnings } = knativeServiceFor(it1, 'r/web@sha256:x', 'default');
    expect((manifest.spec as any).template.spec.containers[0].env).toEqual([{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'web-env', key: 'API_KEY' } } }]);
    expect(warnings).toHaveLength(3);
    expect(JSON.stringify(manifest)).not.toContain('s3cret');
    expect(envSecretFor(it1, 'default')!.data).toEqual({ API_KEY: Buffer.from('s3cret').toString('base64') });
    expect(envSecretFor(item(), 'default')).toBeNull();
  });
});

describe('cron jobs (an input cellhost does not fill yet)', () => {
  it('become CronJobs that call the service in the cluster', () => {
    const jobs = cronJobsFor(item({ requestTimeoutS: 30 }, { cronJobs: [{ name: 'nightly', schedule: '0 3 * * *', path: '/tasks/cleanup?x=1', method: 'POST', timeZone: 'Europe/Paris' }] }), 'apps');
    expect(jobs).toHaveLength(1);
    const job = jobs[0] as any;
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'web-nightly', namespace: 'apps' }, spec: { schedule: '0 3 * * *', timeZone: 'Europe/Paris' } });
    const args: string[] = job.spec.jobTemplate.spec.template.spec.containers[0].args;
    expect(args).toEqual(['--fail', '--silent', '--show-error', '--request', 'POST', '--max-time', '30', 'http://web.apps.svc.cluster.local/tasks/cleanup?x=1']);
    expect(cronJobsFor(item(), 'apps')).toEqual([]);
  });
});

describe('references', () => {
  it('registry paths and image references', () => {
    expect(parseRegistry('docker://registry.example.com:5000/team/')).toBe('registry.example.com:5000/team');
    expect(() => parseRegistry('Registry.Example.com/Team')).toThrow(/--registry/);
    expect(() => parseRegistry('https://r.example.com')).toThrow();
    expect(parseImageRef('127.0.0.1:5000/base/node:20')).toEqual({ name: '127.0.0.1:5000/base/node', tag: '20', digest: undefined });
    const d = 'sha256:' + 'a'.repeat(64);
    expect(parseImageRef(`docker.io/library/node:20@${d}`)).toEqual({ name: 'docker.io/library/node', tag: '20', digest: d });
    expect(() => parseImageRef('node@sha256:short')).toThrow();
    expect(parseBaseImageFlags(['node=r/n:1', 'go=docker://r/g@' + d])).toEqual({ node: 'r/n:1', go: 'r/g@' + d });
    expect(() => parseBaseImageFlags(['java=r/j:1'])).toThrow(/RUNTIME=REF/);
  });

  it('default bases match the host Debian release and toolchain versions', () => {
    const host = { debian: 'bookworm', node: '20.20.2', python: '3.11' };
    expect(defaultBaseImage('node', host)).toEqual({ ref: 'docker.io/library/node:20-bookworm-slim', links: {} });
    expect(defaultBaseImage('python', host)).toEqual({ ref: 'docker.io/library/python:3.11-slim-bookworm', links: { '/usr/bin/python3': '/usr/local/bin/python3' } });
    expect(defaultBaseImage('go', host).ref).toBe('docker.io/library/debian:bookworm-slim');
    expect(defaultBaseImage('rust', host).ref).toBe('docker.io/library/debian:bookworm-slim');
  });
});
