// What an export works on: one service with its live build, read from the data dir.
import type { Service } from '../store/services.ts';

/**
 * A scheduled HTTP call to the service, as cellhost's cron will define it (a schedule, a path,
 * a method). cellhost has no cron jobs yet: the collector passes an empty list, and the
 * manifest side already turns each entry into a Kubernetes CronJob.
 */
export interface CronJobInput {
  /** unique within the service: a DNS label */
  name: string;
  /** five-field cron expression */
  schedule: string;
  /** request path, starting with / */
  path: string;
  method?: string;
  /** IANA time zone; UTC when absent */
  timeZone?: string;
}

export interface ExportItem {
  service: Service;
  deploymentId: string;
  /** when the live build finished (ISO): the image's creation time */
  builtAt: string;
  /** the live build's /app tree on the host */
  imageDir: string;
  /** what the live build starts with: the service's start command or the runtime's default for it */
  startCommand: string;
  /** decrypted env values: they go only into the Secret manifest */
  env: Record<string, string>;
  cronJobs: CronJobInput[];
  /** packages the live build's system layer installed over the host's (the image does not carry them) */
  systemPackages?: string[];
}

/** the host's registry credentials and CA certificates, as skopeo finds them */
export interface RegistryAccess {
  /** a directory of *.crt (CA) and *.cert/*.key (client) files for registries with a private CA */
  certDir?: string;
  /** environment for skopeo: HOME, XDG_RUNTIME_DIR, REGISTRY_AUTH_FILE, DOCKER_CONFIG locate the logins */
  env: Record<string, string>;
}

/** a base image pinned by digest */
export interface BaseImage {
  /** the reference as given or defaulted, e.g. docker.io/library/node:20-bookworm-slim */
  ref: string;
  /** repository without tag or digest */
  name: string;
  digest: string;
  /** links the app's layer must add for this base, path → target (the default python image keeps its
   *  interpreter in /usr/local/bin, where a venv built against Debian's /usr/bin/python3 does not look) */
  links: Record<string, string>;
}
