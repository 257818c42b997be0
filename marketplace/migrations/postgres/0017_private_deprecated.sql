-- Private plugins, review waivers and deprecation.
--
-- A plugin with a row in `private_plugins` is seen and installed only by the tenants of its
-- `plugin_audience` (and by its publisher and operators); everyone else gets a 404, as for a
-- plugin that does not exist. The declaration may come before the plugin's first version, so
-- it is keyed by the plugin id, not by a `plugins` row. Who sees what is decided in one place:
-- `catalog::Visibility`.
CREATE TABLE private_plugins (
    plugin_id    TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE plugin_audience (
    plugin_id TEXT NOT NULL REFERENCES private_plugins (plugin_id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, tenant_id)
);
CREATE INDEX plugin_audience_tenant ON plugin_audience (tenant_id, plugin_id);

-- 1 while the plugin has a row in `private_plugins` (kept by `catalog::audience::mark`), so a
-- search filters public plugins on a column instead of probing `private_plugins` per row.
ALTER TABLE plugins ADD COLUMN private BIGINT NOT NULL DEFAULT 0;

-- An operator may waive human review of a publisher's private plugins (audited).
ALTER TABLE publishers ADD COLUMN review_waived_at BIGINT;
ALTER TABLE publishers ADD COLUMN review_waived_by TEXT;

-- A publisher's (or an operator's) deprecation of a plugin or of a range of its versions.
CREATE TABLE deprecations (
    plugin_id       TEXT PRIMARY KEY REFERENCES plugins (id) ON DELETE CASCADE,
    versions        TEXT,
    message         TEXT NOT NULL,
    replacement     TEXT,
    blocks_installs BIGINT NOT NULL,
    deprecated_by   TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- Set while the whole plugin is deprecated: search ranks it below every other match.
ALTER TABLE plugins ADD COLUMN deprecated_at BIGINT;

-- `sort=rating` now ranks a deprecated plugin below the others (catalog::search, Sort::Rating's
-- key expression, which a unit test holds this index to).
DROP INDEX plugins_rating;
CREATE INDEX plugins_rating ON plugins (((CASE WHEN rating_count = 0 THEN -1 ELSE (10 * 3000 + rating_sum * 1000) / (10 + rating_count) END) - (CASE WHEN deprecated_at IS NULL THEN 0 ELSE 1000000000000000 END)) DESC, id);

-- `sort=installs` and `sort=recent` rank a deprecated plugin below the others too: their
-- indexes follow the new key expressions (held to them by the same unit test).
DROP INDEX plugins_installs;
DROP INDEX plugins_updated;
CREATE INDEX plugins_installs ON plugins ((installs - (CASE WHEN deprecated_at IS NULL THEN 0 ELSE 1000000000000000 END)) DESC, id);
CREATE INDEX plugins_updated ON plugins ((updated_at - (CASE WHEN deprecated_at IS NULL THEN 0 ELSE 1000000000000000 END)) DESC, id);
