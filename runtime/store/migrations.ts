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
  ALTER TABLE services ADD COLUMN subuid_base INTEGER;
  CREATE UNIQUE INDEX services_subuid ON services(subuid_base);
  CREATE TABLE retired_subuids (
    base INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    retired_at TEXT NOT NULL
  );
  ALTER TABLE deployments ADD COLUMN system_layer TEXT;
  `,
];
