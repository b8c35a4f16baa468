// A service's cron jobs as Kubernetes CronJobs that call the service over the cluster's network,
// as cellhost's cron calls it through its router.
import { NAME_LABEL } from './knative-names.ts';
import type { Manifest } from './knative-service.ts';
import type { ExportItem } from './model.ts';

/** a small maintained image with curl, running as a non-root user */
export const CRON_CALLER_IMAGE = 'docker.io/curlimages/curl:8.11.1';
/** Kubernetes adds an 11-character suffix to a CronJob's Jobs: names stop at 52 */
const CRONJOB_NAME_MAX = 52;
/** a failed call is retried, as cellhost's cron delivers at least once */
const RETRIES = 2;

export function cronJobsFor(item: ExportItem, namespace: string): Manifest[] {
  const s = item.service;
  return item.cronJobs.map((job) => {
    const url = `http://${s.name}.${namespace}.svc.cluster.local${job.path}`;
    return {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: `${s.name}-${job.name}`.slice(0, CRONJOB_NAME_MAX).replace(/-+$/, ''), namespace, labels: { [NAME_LABEL]: s.name } },
      spec: {
        schedule: job.schedule,
        ...(job.timeZone ? { timeZone: job.timeZone } : {}),
        jobTemplate: {
          spec: {
            backoffLimit: RETRIES,
            template: {
              metadata: { labels: { [NAME_LABEL]: s.name } },
              spec: {
                restartPolicy: 'Never',
                containers: [
                  {
                    name: 'call',
                    image: CRON_CALLER_IMAGE,
                    args: ['--fail', '--silent', '--show-error', '--request', job.method ?? 'GET', '--max-time', String(Math.max(1, Math.ceil(s.requestTimeoutS))), url],
                    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
                  },
                ],
              },
            },
          },
        },
      },
    };
  });
}
