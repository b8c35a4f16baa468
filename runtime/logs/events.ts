// Platform events in words: what the service's log shows for each.

const mb = (bytes: unknown) => `${Math.round(Number(bytes) / 1024 / 1024)} MB`;

const PREWARM_REASONS: Record<string, string> = {
  deploy: 'started ahead for a deployment',
  change: 'started ahead after a change',
  idle: 'kept at its idle timeout',
  restart: 'started ahead after the platform restarted',
};

const seconds = (ms: unknown) => `${(Number(ms) / 1000).toFixed(Number(ms) < 10_000 ? 2 : 0)} s`;

export function describeEvent(event: string, f: Record<string, unknown>): string {
  switch (event) {
    case 'cold_start':
      return f.standby
        ? `instance ${f.instanceId} ready after a cold start of ${f.durationMs} ms (its sandbox was prepared ahead: a standby)`
        : `instance ${f.instanceId} ready after a cold start of ${f.durationMs} ms (${f.prepareMs} ms to prepare its sandbox)`;
    case 'start_failed':
      return `instance ${f.instanceId} failed to start: ${f.message}`;
    case 'crash':
      return `instance ${f.instanceId} crashed: ${f.message}`;
    case 'oom':
      return `instance ${f.instanceId} was killed: out of memory (limit ${f.limitMb} MB)`;
    case 'idle_stop':
      return `instance ${f.instanceId} stopped after ${seconds(f.idleMs)} idle`;
    case 'recycle':
      return `instance ${f.instanceId} recycled: ${f.reason}`;
    case 'backoff':
      return `crash loop: ${f.failures} failed starts in a row, waiting ${seconds(f.delayMs)} before the next (${f.message})`;
    case 'scale_out_held':
      return `${f.queued} request(s) queued on ${f.instances} busy instance(s), but every CPU core of the host is busy: no instance started (it would slow the ones serving); checked again shortly`;
    case 'frozen':
      return `instance ${f.instanceId} frozen after ${seconds(f.idleMs)} idle (memory kept, no CPU, not billed)`;
    case 'thawed':
      return f.prewarmed
        ? `instance ${f.instanceId} (prewarmed: its app started at ${f.startedAt}, before this request) thawed for a request in ${f.thawMs} ms after ${seconds(f.frozenMs)} frozen: no cold start`
        : `instance ${f.instanceId} thawed in ${f.thawMs} ms after ${seconds(f.frozenMs)} frozen`;
    case 'prewarmed':
      return `instance ${f.instanceId} kept as a prewarmed instance (${PREWARM_REASONS[String(f.reason)] ?? f.reason}): its app started at ${f.startedAt}${f.startMs !== null && f.startMs !== undefined ? ` and was ready in ${f.startMs} ms` : ''}, before any request; frozen, holding ${mb(f.memoryBytes)} (prewarmed instances hold ${mb(f.keptBytes)} of ${mb(f.budgetBytes)}); not billed`;
    case 'prewarm_evicted':
      return `prewarmed instance ${f.instanceId} stopped after ${seconds(f.keptMs)}: ${f.why === 'budget' ? 'its memory went to a more recently used service (CELLHOST_PREWARM_MB)' : f.why === 'memory' ? 'the host is short of memory' : 'prewarming was turned off for the service'}`;
    case 'prewarm_skipped':
      return `no prewarmed instance kept (${PREWARM_REASONS[String(f.reason)] ?? f.reason}): ${f.message}`;
    case 'memory_pressure_stop':
      return `instance ${f.instanceId} stopped: the host is short of memory (it was frozen ${seconds(f.frozenMs)})`;
    case 'drain':
      return `instance ${f.instanceId} draining: a newer version takes new requests`;
    case 'stopped':
      return `instance ${f.instanceId} stopped (up ${seconds(f.uptimeMs)})`;
    case 'deploy_queued':
      return `deployment ${f.deploymentId} queued (${f.source})`;
    case 'deploy_building':
      return `deployment ${f.deploymentId} building`;
    case 'deploy_live':
      return `deployment ${f.deploymentId} is live${f.previous ? ` (was ${f.previous})` : ''}`;
    case 'deploy_failed':
      return `deployment ${f.deploymentId} failed: ${f.message}`;
    case 'deploy_interrupted':
      return `deployment ${f.deploymentId} interrupted: ${f.message}`;
    case 'env_changed':
      return `environment changed by ${f.by}: ${(f.names as string[] | undefined)?.join(', ') || '(all removed)'}`;
    case 'service_created':
      return 'service created';
    case 'certificate_issued':
      return `certificate for ${f.domain} issued (${f.challenge}), expires ${f.expiresAt}`;
    case 'certificate_renewed':
      return `certificate for ${f.domain} renewed${f.suggestedByCa ? ` ahead of its dates, as the CA's renewal window asked${f.explanationUrl ? ` (${f.explanationUrl})` : ''}` : ''}, expires ${f.expiresAt}`;
    case 'certificate_failed':
      return `certificate for ${f.domain} ${f.renewal ? 'renewal ' : ''}failed: ${f.reason}${f.nextAttemptAt ? ` (next attempt ${f.nextAttemptAt})` : ''}${f.renewal ? '; the current certificate keeps serving' : ''}`;
    case 'certificate_pending_dns':
      return `certificate for ${f.domain} waits for DNS: ${f.message}`;
    case 'hook_received':
      return `webhook delivery ${f.delivery} (${f.forge ?? '?'} ${f.hookEvent ?? ''}): ${f.action}: ${f.detail}`;
    case 'hook_refused':
      return `webhook delivery ${f.delivery}${f.forge ? ` (${f.forge} ${f.hookEvent ?? ''})` : ''} refused with ${f.status} ${f.code}: ${f.detail}`;
    case 'hook_rate_limited':
      return `webhook deliveries refused: more than ${f.perMinute} a minute`;
    case 'preview_created':
      return `preview ${f.preview} created for branch ${f.branch}`;
    case 'preview_deleted':
      return `preview ${f.preview} of branch ${f.branch} deleted`;
    case 'service_updated':
      return `settings changed${f.by ? ` by ${f.by === 'defaults' ? 'a deployment without a manifest (back to defaults)' : `the live deployment's ${f.by}`}` : ''}: ${(f.fields as string[] | undefined)?.join(', ')}`;
    case 'cron_failed':
      return `cron job ${f.job} failed${f.scheduledAt ? ` (run for ${f.scheduledAt})` : ' (run by hand)'}: ${f.statusCode ? `the app answered ${f.statusCode}` : 'no answer'}${f.error ? ` (${f.error})` : ''}`;
    case 'cron_missed':
      return `cron job ${f.job}: ${f.count} scheduled time(s) missed while the platform was down (${f.from} to ${f.to})`;
    case 'cron_skipped':
      return `cron job ${f.job}: the run for ${f.scheduledAt} was skipped, the previous run was still going`;
    case 'task_dead':
      return `task ${f.taskId} dead-lettered after ${f.attempts} attempt(s): ${f.error}`;
    default:
      return event.replace(/_/g, ' ');
  }
}
