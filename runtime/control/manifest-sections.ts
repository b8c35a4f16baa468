// The parts of an app manifest that other features apply: custom domains and cron jobs. They are
// validated with the rest of the manifest, and handed to the feature once the deployment is live.
// A platform without that feature says so in the build log instead of pretending to apply them.
import type { Logger } from '../core/log.ts';
import { describeError } from '../core/errors.ts';
import type { CronJob, Manifest } from '../manifest/manifest.ts';

export interface ManifestSectionHooks {
  /** makes the service's custom domains the manifest's; returns lines for the build log */
  domains?(service: string, domains: string[]): Promise<string[]>;
  /** makes the service's cron jobs the manifest's; returns lines for the build log */
  cron?(service: string, jobs: CronJob[]): Promise<string[]>;
}

function describeJob(job: CronJob): string {
  return `${job.name ? `${job.name}: ` : ''}${job.schedule}${job.timezone === 'UTC' ? '' : ` (${job.timezone})`} ${job.method} ${job.path}`;
}

/** applies the domains and cron sections of a live deployment's manifest, through the hooks that exist */
export async function applyManifestSections(
  service: string,
  manifest: Manifest,
  hooks: ManifestSectionHooks,
  out: { say(text: string): void; warn(text: string): void },
  log: Logger,
): Promise<void> {
  const sections = [
    { what: 'domains', items: manifest.domains?.names, shown: manifest.domains?.names.join(', ') || '(none)', apply: hooks.domains && ((s: string) => hooks.domains!(s, manifest.domains!.names)) },
    { what: 'cron jobs', items: manifest.cron?.jobs, shown: manifest.cron?.jobs.map(describeJob).join('; ') || '(none)', apply: hooks.cron && ((s: string) => hooks.cron!(s, manifest.cron!.jobs)) },
  ];
  for (const section of sections) {
    if (!section.items) continue;
    if (!section.apply) {
      out.warn(`${section.what} in ${manifest.file} are not applied by this version: ${section.shown}`);
      log.info('deploy.manifest_section_not_applied', { service, file: manifest.file, section: section.what, count: section.items.length });
      continue;
    }
    try {
      for (const line of await section.apply(service)) out.say(line);
    } catch (err) {
      // the deployment is live already: the section's failure is reported, not a rollback
      out.warn(`${section.what} in ${manifest.file} could not be applied: ${describeError(err)}`);
      log.error('deploy.manifest_section_failed', { service, file: manifest.file, section: section.what, error: describeError(err) });
    }
  }
}
