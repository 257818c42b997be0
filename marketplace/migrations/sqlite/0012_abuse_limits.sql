-- no-transaction
-- The marketplace resists abuse (issue 19, items 1 and 2).
--
-- Runs outside sqlx's transaction: rebuilding `submissions` (SQLite cannot drop a NOT NULL)
-- needs foreign keys off, which SQLite ignores inside a transaction. The rebuild follows
-- SQLite's documented procedure: foreign keys off, one transaction, check, foreign keys on.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

-- Who created each tenant, for the per-account limit (NULL for tenants made before).
ALTER TABLE tenants ADD COLUMN created_by TEXT REFERENCES users (id);
CREATE INDEX tenants_created_by ON tenants (created_by);

-- A submission rejected by validation keeps its report but not its package.
CREATE TABLE submissions_new (
    id              TEXT PRIMARY KEY,
    publisher_id    TEXT NOT NULL REFERENCES publishers (id),
    plugin_id       TEXT NOT NULL,
    version         TEXT NOT NULL,
    digest          TEXT NOT NULL,
    artifact_sha256 TEXT REFERENCES artifacts (sha256),
    manifest        TEXT NOT NULL,
    status          TEXT NOT NULL,
    report          TEXT NOT NULL,
    submitted_by    TEXT NOT NULL REFERENCES users (id),
    created_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    decided_by      TEXT REFERENCES users (id),
    reason_code     TEXT,
    reason          TEXT
);
INSERT INTO submissions_new (id, publisher_id, plugin_id, version, digest, artifact_sha256,
        manifest, status, report, submitted_by, created_at, decided_at, decided_by, reason_code,
        reason)
    SELECT id, publisher_id, plugin_id, version, digest,
        CASE WHEN status = 'rejected_by_validation' THEN NULL ELSE artifact_sha256 END,
        manifest, status, report, submitted_by, created_at, decided_at, decided_by, reason_code,
        reason
    FROM submissions;
DROP TABLE submissions;
ALTER TABLE submissions_new RENAME TO submissions;
CREATE UNIQUE INDEX submissions_live_version ON submissions (plugin_id, version)
    WHERE status IN ('in_review', 'approved');
CREATE INDEX submissions_queue ON submissions (status, created_at);
CREATE INDEX submissions_plugin ON submissions (plugin_id);
-- The per-publisher limits count a publisher's submissions by status.
CREATE INDEX submissions_publisher ON submissions (publisher_id, status);

-- Packages of submissions rejected by validation, stored before this migration, go.
DELETE FROM artifacts
WHERE sha256 NOT IN (SELECT artifact_sha256 FROM submissions WHERE artifact_sha256 IS NOT NULL)
  AND sha256 NOT IN (SELECT artifact_sha256 FROM versions);

COMMIT;
PRAGMA foreign_keys = ON;
