-- Tenants and developers see what their plugins do (issue 26): run logs, daily usage per
-- install, failure reports.

-- How long a tenant's runs are kept, and how many at most (the oldest go first).
ALTER TABLE plans ADD COLUMN run_retention_days INTEGER NOT NULL DEFAULT 1;
ALTER TABLE plans ADD COLUMN max_runs INTEGER NOT NULL DEFAULT 10000;
UPDATE plans SET run_retention_days = 7, max_runs = 100000 WHERE name = 'pro';
UPDATE plans SET run_retention_days = 30, max_runs = 1000000 WHERE name = 'enterprise';

-- Whether an install's runs keep their payload and output (off unless the tenant turns it on).
ALTER TABLE installs ADD COLUMN capture_runs INTEGER NOT NULL DEFAULT 0;

-- One call through an install. No foreign keys: runs are written in batches after the calls
-- end, and outlive an uninstall until retention drops them; purging a tenant deletes them.
-- The id is a UUIDv7 carrying `started_at`, so one key serves listing a tenant's runs newest
-- first and finding one by id: each run written costs the table and one index.
CREATE TABLE runs (
    id                 TEXT NOT NULL,
    tenant_id          TEXT NOT NULL,
    plugin_id          TEXT NOT NULL,
    version            TEXT NOT NULL,
    entry_kind         TEXT NOT NULL,
    entry              TEXT NOT NULL,
    event_id           TEXT,
    started_at         INTEGER NOT NULL,
    duration_us        INTEGER NOT NULL,
    fuel               INTEGER,
    memory_bytes       INTEGER NOT NULL,
    outbound_requests  INTEGER NOT NULL,
    kv_bytes_written   INTEGER NOT NULL,
    outcome            TEXT NOT NULL,
    error_message      TEXT,
    output_bytes       INTEGER NOT NULL,
    logs               TEXT NOT NULL,
    logs_dropped       INTEGER NOT NULL,
    input              BLOB,
    output             BLOB,
    capture_truncated  INTEGER NOT NULL DEFAULT 0,
    shared_at          INTEGER,
    shared_by          TEXT,
    PRIMARY KEY (tenant_id, started_at, id)
);
CREATE INDEX runs_shared ON runs (plugin_id, shared_at) WHERE shared_at IS NOT NULL;

-- Calls per install and UTC day, by outcome (`ok` or the error code) and duration bucket
-- (bucket b holds durations in [2^(b-1), 2^b) microseconds; 0 holds 0).
CREATE TABLE run_daily (
    tenant_id  TEXT NOT NULL,
    plugin_id  TEXT NOT NULL,
    day        TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    bucket     INTEGER NOT NULL,
    calls      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, day, outcome, bucket)
);
CREATE INDEX run_daily_day ON run_daily (day);

-- Failures of a plugin across tenants, by version and signature; no tenant is named.
CREATE TABLE failure_reports (
    plugin_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    signature   TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version, signature)
);
