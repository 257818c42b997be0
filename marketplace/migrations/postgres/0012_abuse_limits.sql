-- The marketplace resists abuse (issue 19, items 1 and 2).

-- Who created each tenant, for the per-account limit (NULL for tenants made before).
ALTER TABLE tenants ADD COLUMN created_by TEXT REFERENCES users (id);
CREATE INDEX tenants_created_by ON tenants (created_by);

-- A submission rejected by validation keeps its report but not its package.
ALTER TABLE submissions ALTER COLUMN artifact_sha256 DROP NOT NULL;
UPDATE submissions SET artifact_sha256 = NULL WHERE status = 'rejected_by_validation';
-- The per-publisher limits count a publisher's submissions by status.
CREATE INDEX submissions_publisher ON submissions (publisher_id, status);

-- Packages of submissions rejected by validation, stored before this migration, go.
DELETE FROM artifacts
WHERE sha256 NOT IN (SELECT artifact_sha256 FROM submissions WHERE artifact_sha256 IS NOT NULL)
  AND sha256 NOT IN (SELECT artifact_sha256 FROM versions);
