-- Runs are stored in batches (issue 26): one row holds the runs of one tenant that one write
-- stored, compressed, so recording a run costs the event path's cores a share of one insert
-- rather than an insert and an index entry of its own. Runs recorded before this version were
-- kept days at most and are not carried over.
DROP TABLE runs;

-- A tenant's runs written together, whose starts lie within a minute (`first_at` to
-- `last_at`, Unix ms): `body` holds them serialised and LZ4-compressed (`runs::batch`).
-- `id` is the newest run's.
-- `failures` counts the failed ones, so a search for failures skips batches without any.
CREATE TABLE run_batches (
    tenant_id  TEXT NOT NULL,
    last_at    BIGINT NOT NULL,
    id         TEXT NOT NULL,
    first_at   BIGINT NOT NULL,
    runs       BIGINT NOT NULL,
    failures   BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, last_at, id)
);
-- The body is compressed already: stored out of line without PostgreSQL compressing it again.
ALTER TABLE run_batches ALTER COLUMN body SET STORAGE EXTERNAL;

-- A run its tenant shared with the plugin's publisher: a copy (JSON), kept while the tenant
-- keeps the run and until it is unshared.
CREATE TABLE shared_runs (
    tenant_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    plugin_id   TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    shared_at   BIGINT NOT NULL,
    shared_by   TEXT,
    run         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);
CREATE INDEX shared_runs_plugin ON shared_runs (plugin_id, shared_at);
