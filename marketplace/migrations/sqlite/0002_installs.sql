-- Installs: a tenant's consent to one version's exact permission set, with its configuration
-- (secret values sealed), running in the host.
CREATE TABLE installs (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plugin_id          TEXT NOT NULL REFERENCES plugins (id),
    version            TEXT NOT NULL,
    permissions_digest TEXT NOT NULL,
    config             TEXT NOT NULL,
    enabled            INTEGER NOT NULL,
    update_policy      TEXT NOT NULL,
    created_by         TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (tenant_id, plugin_id)
);
CREATE INDEX installs_plugin ON installs (plugin_id);
