// What the web UI is built from: the same control objects the API uses, plus the UI's own
// sessions. Metrics and usage are optional: pages say so when they are not wired in.
import type { Context } from 'hono';
import type { LogHub } from '../builder/log-hub.ts';
import type { Deployments } from '../runtime/control/deployments.ts';
import type { Domains } from '../runtime/control/domains.ts';
import type { EnvControl } from '../runtime/control/env.ts';
import type { CronControl } from '../runtime/cron/control.ts';
import type { TaskControl } from '../runtime/tasks/control.ts';
import type { Services } from '../runtime/control/types.ts';
import type { Logger } from '../runtime/core/log.ts';
import type { LogSink } from '../runtime/logs/sink.ts';
import type { Store } from '../runtime/store/index.ts';
import type { TokenInfo } from '../runtime/store/tokens.ts';
import type { LoginLimiter } from '../runtime/core/login-limiter.ts';
import type { Session, Sessions } from './session.ts';
import type { Previews } from '../runtime/control/previews.ts';
import type { GitUiDeps } from './pages/git.tsx';

/** one sample of a series: t = start of its bucket (epoch ms), v = the value */
export interface Point {
  t: number;
  v: number;
}

export const METRICS_WINDOWS = ['1h', '24h', '7d'] as const;
export type MetricsWindow = (typeof METRICS_WINDOWS)[number];

/** a service's metrics over a window, one point per bucket (a minute, or wider for long windows) */
export interface ServiceMetrics {
  requests: Point[];
  errors4xx: Point[];
  errors5xx: Point[];
  /** ms; buckets without requests have no point */
  latencyP50: Point[];
  latencyP95: Point[];
  latencyP99: Point[];
  coldStarts: Point[];
  /** mean cold start duration in the bucket, ms */
  coldStartMs: Point[];
  /** most instances at once in the bucket */
  instances: Point[];
  gbSeconds: Point[];
}

/** usage for a period, per service and in total, as GET /api/v1/usage answers it */
export interface UsageReport {
  from: string;
  to: string;
  /** a service's numbers include its previews', each also listed in `previews` */
  services: { service: string; requests: number; billedMs: number; gbSeconds: number; coldStarts: number; cost: number; previews?: { service: string; requests: number; billedMs: number; gbSeconds: number; coldStarts: number; cost: number }[] }[];
}

export interface UiDeps {
  store: Store;
  services: Services;
  deployments: Deployments;
  /** build logs */
  logs: LogHub;
  /** runtime logs and events (flushed before a page reads them) */
  sink: LogSink;
  env: EnvControl;
  /** custom domains and certificates; the Domains page says so when absent */
  domains?: Domains;
  /** cron jobs and task queues; pages say so when they are not wired in */
  cron?: CronControl;
  tasks?: TaskControl;
  sessions: Sessions;
  uploadDir: string;
  maxUploadBytes: number;
  now(): string;
  log: Logger;
  metrics?(service: string, window: MetricsWindow): ServiceMetrics | Promise<ServiceMetrics>;
  /** from and to in epoch ms */
  usageReport?(from: number, to: number): UsageReport | Promise<UsageReport>;
  /** failed-login limiter; default 10 failures a minute per source (valid tokens always pass) */
  loginLimiter?: LoginLimiter;
  /** the client's address, for the login limiter; default the socket's peer address */
  remoteAddress?(c: Context): string;
  /** webhooks: the Git tab shows them (with previews) when both are wired in */
  hooks?: GitUiDeps;
  previews?: Previews;
}

export type UiEnv = { Variables: { session: Session; token: TokenInfo } };
