// One error type for the whole platform. Codes are stable: never reuse or rename one.
// The table below is the only place a code maps to an HTTP status.

export const ERROR_STATUS = {
  ERR_AUTH_MISSING: 401, // no bearer token or session
  ERR_AUTH_INVALID: 401, // token unknown or revoked
  ERR_AUTH_RATE_LIMITED: 429, // too many failed logins from one address
  ERR_CSRF: 403, // form posted without a valid CSRF token
  ERR_VALIDATION: 400, // a body, query or argument failed validation
  ERR_BODY_MISSING: 400, // a route that needs a body got none
  ERR_BODY_TOO_LARGE: 413, // upload or request body over the configured limit
  ERR_HEADERS_TOO_LARGE: 431, // router: request line over 16 KB or headers over 64 KB
  ERR_HEADERS_TIMEOUT: 408, // router: the client did not send its headers in time
  ERR_BAD_REQUEST: 400, // router: malformed HTTP
  ERR_UNSUPPORTED_MEDIA: 415, // body content type the route does not take
  ERR_NOT_FOUND: 404, // no such route
  ERR_SERVICE_NOT_FOUND: 404, // no service by that name
  ERR_SERVICE_EXISTS: 409, // a service by that name exists already
  ERR_DEPLOYMENT_NOT_FOUND: 404, // no deployment by that id
  ERR_DEPLOYMENT_NOT_READY: 409, // promote of a deployment that has no ready image
  ERR_DEPLOYMENT_NO_SOURCE: 409, // rebuild of a deployment whose uploaded source was not kept
  ERR_TOKEN_NOT_FOUND: 404, // no token by that id
  ERR_ENV_NOT_FOUND: 404, // the service has no variable by that name
  ERR_DOMAIN_INVALID: 400, // not a DNS name: characters, empty or over-long labels, a single label
  ERR_DOMAIN_IP: 400, // an IP address where a domain name is needed
  ERR_DOMAIN_WILDCARD: 400, // a wildcard: only exact names can be attached
  ERR_DOMAIN_UPPERCASE: 400, // capitals: send the name in lowercase
  ERR_DOMAIN_TRAILING_DOT: 400, // a trailing dot: send the name without it
  ERR_DOMAIN_TOO_LONG: 400, // over 253 characters
  ERR_DOMAIN_NOT_PUNYCODE: 400, // an internationalized name in Unicode: send its xn-- form
  ERR_DOMAIN_TAKEN: 409, // the domain belongs to another service, or is a platform name
  ERR_DOMAIN_NOT_FOUND: 404, // the service has no such domain
  ERR_SOURCE_INVALID: 400, // archive corrupt, escaping entries, links out, devices
  ERR_SOURCE_TOO_LARGE: 413, // archive unpacks past the size or entry limit
  ERR_SOURCE_GIT: 400, // git clone or checkout failed
  ERR_SOURCE_GIT_URL: 400, // a git URL cellhost does not clone: a local path, file://, plain http (unless allowed), another transport
  ERR_RUNTIME_UNKNOWN: 400, // runtime not one of python, node, go, rust, edge
  ERR_RUNTIME_MISSING: 422, // the runtime's toolchain is not installed on the host
  ERR_BUILD_FAILED: 422, // build command exited non-zero
  ERR_BUILD_TIMEOUT: 422, // build ran past its plan's time limit
  ERR_BUILD_INTERRUPTED: 500, // platform stopped during the build
  ERR_BUILD_CANCELLED: 409, // superseded by a newer deploy while queued
  ERR_BUILD_TOO_LARGE: 422, // the build's image or dependency cache grew past its plan's limit
  ERR_BUILD_SYSTEM_PACKAGES: 422, // the build installs system packages (apt-get, dpkg) and this host cannot give it a system layer
  ERR_MANIFEST_INVALID: 422, // cellhost.toml / cellhost.json unreadable, not valid, an unknown key or a wrong value (line and key named)
  ERR_ENV_REQUIRED: 422, // variables the manifest requires are not set for the service
  ERR_HOST_UNKNOWN: 404, // router: Host names no service
  ERR_NO_DEPLOYMENT: 503, // router: service has no live deployment yet
  ERR_APP_EXITED: 502, // instance exited before it was ready
  ERR_APP_CRASHED: 502, // instance died while serving the request
  ERR_APP_OOM: 502, // instance killed for memory
  ERR_APP_REFUSED: 502, // upstream connection refused or reset
  ERR_APP_WRONG_PORT: 502, // instance listens, but not where the platform connects (another port, or loopback only)
  ERR_START_TIMEOUT: 504, // instance did not listen within the start timeout
  ERR_REQUEST_TIMEOUT: 504, // app took longer than the request timeout
  ERR_CAPACITY: 503, // max instances busy and the wait queue is full or timed out
  ERR_SHUTTING_DOWN: 503, // platform is stopping
  ERR_KEY_INVALID: 500, // master key missing, malformed or wrong
  ERR_CGROUP_FAILED: 500, // a cgroup could not be created, limited, frozen, emptied or removed
  ERR_NATIVE_ADDON: 500, // an embedded native addon could not be extracted or loaded
  ERR_SANDBOX_SETUP: 500, // bubblewrap sandbox, its uid or a bind of a host path could not be prepared
  ERR_NETNS_SETUP: 500, // a network namespace, veth, shaping or firewall rule could not be set up or removed
  ERR_EXPORT_TOOL_MISSING: 500, // export: skopeo or umoci is not installed on this host
  ERR_EXPORT_NO_BUILD: 409, // export: the service has no live build (deploy it first)
  ERR_EXPORT_BASE_IMAGE: 502, // export: a base image could not be resolved or pulled
  ERR_EXPORT_IMAGE_BUILD: 500, // export: the service's OCI image could not be assembled
  ERR_EXPORT_REGISTRY: 502, // export: the registry refused the push or could not be reached
  ERR_EXPORT_UNMAPPABLE: 422, // export: a setting Knative cannot express (e.g. a port Knative reserves)
  ERR_EXPORT_OUT_NOT_EMPTY: 409, // export: --out names a non-empty directory and --force was not given
  ERR_IMPORT_INVALID: 400, // import: the file is not a Knative Service manifest cellhost can read
  ERR_IMPORT_IMAGE_ONLY: 422, // import: a Knative Service that only names an image (no cellhost runtime to build from)
  ERR_BACKUP_INVALID: 400, // a backup file is truncated, damaged, altered or not a cellhost backup: nothing restored
  ERR_DATA_TOO_NEW: 500, // the data dir's schema is newer than this version knows: refused, nothing changed
  ERR_PREVIEW_NAME: 409, // no free preview service name for a branch (the service's own name leaves no room)
  ERR_HOOK_UNSIGNED: 401, // webhook: no signature or token header of a forge cellhost knows
  ERR_HOOK_SIGNATURE: 401, // webhook: the signature or token does not match the service's webhook secret
  ERR_HOOK_REPLAYED: 409, // webhook: a delivery with this id, or this very body, was accepted before
  ERR_HOOK_MALFORMED: 400, // webhook: the body is not the JSON (or form) the forge's event has
  ERR_HOOK_RATE_LIMITED: 429, // webhook: too many deliveries from this address or for this service
  ERR_DISK_FULL: 507, // the data dir's disk is full: uploads, builds and writes fail until space is freed
  ERR_DISK_LOW: 507, // a build would leave the data disk with less free space than its floor
  ERR_CRON_NOT_FOUND: 404, // the service has no cron job by that name
  ERR_CRON_EXISTS: 409, // the service has a cron job by that name already
  ERR_TASK_NOT_FOUND: 404, // no task by that id
  ERR_TASK_NOT_DEAD: 409, // retry of a task that is not dead-lettered (it is queued, running or done)
  ERR_BODY_TIMEOUT: 408, // router: a task's body did not arrive within its time limit
  ERR_METHOD_NOT_ALLOWED: 405, // router: a task was sent with a method other than POST, PUT, PATCH or DELETE
  ERR_INTERNAL: 500, // anything unexpected; details only in the platform log
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class CellhostError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CellhostError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = opts.details;
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export function isCellhostError(err: unknown): err is CellhostError {
  return err instanceof CellhostError;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** ENOSPC / EDQUOT / SQLITE_FULL as the coded error a user can act on, else null */
export function diskFullError(err: unknown): CellhostError | null {
  const code = (err as { code?: string } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') {
    return new CellhostError('ERR_DISK_FULL', 'the data disk is full: free space (old images, logs) and try again', { cause: err });
  }
  return null;
}
