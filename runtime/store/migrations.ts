// Append only: a shipped migration is never edited, a change is a new entry.
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE services (
    name TEXT PRIMARY KEY,
    runtime TEXT NOT NULL,
    build_command TEXT,
    start_command TEXT,
    port INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    plan TEXT NOT NULL,
    min_instances INTEGER NOT NULL,
    max_instances INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    idle_timeout_s REAL NOT NULL,
    request_timeout_s REAL NOT NULL,
    health_path TEXT,
    root_dir TEXT,
    domains TEXT NOT NULL DEFAULT '[]',
    live_deployment_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    error_code TEXT,
    error TEXT,
    image_dir TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE INDEX deployments_by_service ON deployments(service, seq);
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT
  );
  `,
  `
  CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    ts INTEGER NOT NULL,
    stream TEXT NOT NULL,
    instance_id TEXT,
    deployment_id TEXT,
    event TEXT,
    message TEXT NOT NULL,
    fields TEXT
  );
  CREATE INDEX logs_by_service_ts ON logs(service, ts);
  CREATE INDEX logs_by_service_id ON logs(service, id);
  `,
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE env_vars (
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (service, name)
  );
  ALTER TABLE services ADD COLUMN env_version INTEGER NOT NULL DEFAULT 0;
  `,
  `
  CREATE TABLE service_minutes (
    service TEXT NOT NULL,
    minute INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    s2xx INTEGER NOT NULL DEFAULT 0,
    s3xx INTEGER NOT NULL DEFAULT 0,
    s4xx INTEGER NOT NULL DEFAULT 0,
    s5xx INTEGER NOT NULL DEFAULT 0,
    latency TEXT NOT NULL DEFAULT '{}',
    cold_starts INTEGER NOT NULL DEFAULT 0,
    cold_start_ms REAL NOT NULL DEFAULT 0,
    instances INTEGER NOT NULL DEFAULT 0,
    billed_ms REAL NOT NULL DEFAULT 0,
    gb_ms REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (service, minute)
  );
  `,
  `
  ALTER TABLE services ADD COLUMN uid INTEGER;
  CREATE UNIQUE INDEX services_uid ON services(uid);
  `,
  `
  ALTER TABLE deployments ADD COLUMN runtime TEXT;
  ALTER TABLE deployments ADD COLUMN default_start TEXT;
  CREATE TABLE retired_uids (
    uid INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    retired_at TEXT NOT NULL
  );
  `,
  `
  -- settings set through the API win over an app manifest; a service made before manifests
  -- existed keeps every setting it has that is not the default, so nothing changes for it
  ALTER TABLE services ADD COLUMN explicit_settings TEXT NOT NULL DEFAULT '[]';
  UPDATE services SET explicit_settings = (
    SELECT json_group_array(f) FROM (
      SELECT 'runtime' AS f
      UNION ALL SELECT 'buildCommand' WHERE services.build_command IS NOT NULL
      UNION ALL SELECT 'startCommand' WHERE services.start_command IS NOT NULL
      UNION ALL SELECT 'port' WHERE services.port <> 8080
      UNION ALL SELECT 'memoryMb' WHERE services.memory_mb <> 1024
      UNION ALL SELECT 'plan' WHERE services.plan <> 'hobby'
      UNION ALL SELECT 'minInstances' WHERE services.min_instances <> 0
      UNION ALL SELECT 'maxInstances' WHERE services.max_instances <> 10
      UNION ALL SELECT 'concurrency' WHERE services.concurrency <> 100
      UNION ALL SELECT 'idleTimeoutS' WHERE services.idle_timeout_s <> 300
      UNION ALL SELECT 'requestTimeoutS' WHERE services.request_timeout_s <> 900
      UNION ALL SELECT 'healthPath' WHERE services.health_path IS NOT NULL
    )
  );
  ALTER TABLE deployments ADD COLUMN manifest TEXT;
  `,
  `
  CREATE TABLE service_secrets (
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (service, kind)
  );
  CREATE TABLE cron_jobs (
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT,
    content_type TEXT,
    overlap TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    next_due_at INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, name)
  );
  CREATE TABLE cron_runs (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    job TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_at INTEGER,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER,
    status TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    body_head TEXT,
    FOREIGN KEY (service, job) REFERENCES cron_jobs(service, name) ON DELETE CASCADE
  );
  CREATE INDEX cron_runs_by_job ON cron_runs(service, job, id);
  CREATE INDEX cron_runs_by_status ON cron_runs(status);
  CREATE TABLE task_queues (
    service TEXT PRIMARY KEY REFERENCES services(name) ON DELETE CASCADE,
    workers INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    min_backoff_ms INTEGER NOT NULL,
    max_backoff_ms INTEGER NOT NULL
  );
  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB,
    body_bytes INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX tasks_due ON tasks(status, service, due_at);
  CREATE INDEX tasks_by_service ON tasks(service, status);
  `,
  `
  ALTER TABLE services ADD COLUMN deploy_branch TEXT NOT NULL DEFAULT 'main';
  ALTER TABLE services ADD COLUMN previews INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE env_vars ADD COLUMN preview INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE previews (
    name TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    branch TEXT NOT NULL,
    pull_request INTEGER,
    created_at TEXT NOT NULL,
    deleted_at TEXT
  );
  CREATE UNIQUE INDEX previews_by_branch ON previews(parent, branch) WHERE deleted_at IS NULL;
  CREATE TABLE hook_settings (
    service TEXT PRIMARY KEY REFERENCES services(name) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    repository TEXT,
    credential BLOB,
    credential_kind TEXT,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE hook_deliveries (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    received_at TEXT NOT NULL,
    forge TEXT,
    event TEXT,
    delivery_id TEXT,
    body_sha256 TEXT,
    status INTEGER NOT NULL,
    code TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    ref TEXT,
    commit_sha TEXT,
    deployment_id TEXT
  );
  CREATE INDEX hook_deliveries_by_service ON hook_deliveries(service, id);
  CREATE INDEX hook_deliveries_by_delivery ON hook_deliveries(service, delivery_id);
  CREATE INDEX hook_deliveries_by_body ON hook_deliveries(service, body_sha256);
  `,
  `
  ALTER TABLE services ADD COLUMN https_redirect INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE services ADD COLUMN hsts INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE certificates (
    name TEXT PRIMARY KEY,
    service TEXT,
    status TEXT NOT NULL,
    cert_pem TEXT,
    key BLOB,
    not_before INTEGER,
    not_after INTEGER,
    challenge TEXT,
    error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,
    dns TEXT,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    key BLOB NOT NULL,
    url TEXT NOT NULL,
    email TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE acme_orders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    registered_domain TEXT NOT NULL,
    directory TEXT NOT NULL,
    renewal INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX acme_orders_by_domain ON acme_orders(registered_domain, created_at);
  `,
  `
  ALTER TABLE services ADD COLUMN subuid_base INTEGER;
  CREATE UNIQUE INDEX services_subuid ON services(subuid_base);
  CREATE TABLE retired_subuids (
    base INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    retired_at TEXT NOT NULL
  );
  ALTER TABLE deployments ADD COLUMN system_layer TEXT;
  `,
  `
  ALTER TABLE services ADD COLUMN prewarm INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE service_minutes ADD COLUMN prewarmed_starts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE service_minutes ADD COLUMN prewarmed_start_ms REAL NOT NULL DEFAULT 0;
  ALTER TABLE service_minutes ADD COLUMN last_request_at INTEGER NOT NULL DEFAULT 0;
  `,
];
