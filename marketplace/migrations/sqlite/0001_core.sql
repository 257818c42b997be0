-- Accounts, tenants and plans, publishers and keys, submissions, catalog, notifications.
-- Ids are UUIDv7 text; times are Unix milliseconds (UTC); JSON is text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE plans (
    name                         TEXT PRIMARY KEY,
    position                     INTEGER NOT NULL,
    max_installs                 INTEGER NOT NULL,
    invocations_per_month        INTEGER NOT NULL,
    kv_bytes                     INTEGER NOT NULL,
    memory_mb                    INTEGER NOT NULL,
    fuel_per_call                INTEGER,
    timeout_ms                   INTEGER NOT NULL,
    outbound_requests_per_minute INTEGER NOT NULL,
    api_requests_per_minute      INTEGER NOT NULL,
    paid_plugins                 INTEGER NOT NULL
);

INSERT INTO plans VALUES
    ('free',       1,   5,     100000,   1048576,  64, NULL, 1000,    60,   600, 0),
    ('pro',        2,  50,   10000000,  67108864, 128, NULL, 5000,   600,  6000, 1),
    ('enterprise', 3, 500, 1000000000, 1073741824, 256, NULL, 15000, 6000, 60000, 1);

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL REFERENCES plans (name),
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    purge_after INTEGER
);

CREATE TABLE tenant_members (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE publishers (
    id         TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE publisher_members (
    publisher_id TEXT NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (publisher_id, user_id)
);

CREATE TABLE publisher_keys (
    id           TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    public_key   TEXT NOT NULL UNIQUE,
    fingerprint  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- Bearer credentials: log-in sessions and API keys. Only the sha256 of a token is stored.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    publisher_id TEXT REFERENCES publishers (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);

-- Package bytes, content-addressed by the sha256 of the bytes.
CREATE TABLE artifacts (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE submissions (
    id              TEXT PRIMARY KEY,
    publisher_id    TEXT NOT NULL REFERENCES publishers (id),
    plugin_id       TEXT NOT NULL,
    version         TEXT NOT NULL,
    digest          TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL REFERENCES artifacts (sha256),
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

-- A version is taken while it is in review or approved: exactly one such submission wins.
CREATE UNIQUE INDEX submissions_live_version ON submissions (plugin_id, version)
    WHERE status IN ('in_review', 'approved');
CREATE INDEX submissions_queue ON submissions (status, created_at);
CREATE INDEX submissions_plugin ON submissions (plugin_id);

CREATE TABLE plugins (
    id             TEXT PRIMARY KEY,
    publisher_id   TEXT NOT NULL REFERENCES publishers (id),
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    categories     TEXT NOT NULL,
    pricing_model  TEXT NOT NULL,
    latest_version TEXT NOT NULL,
    installs       INTEGER NOT NULL DEFAULT 0,
    rating_sum     INTEGER NOT NULL DEFAULT 0,
    rating_count   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    blocked_at     INTEGER
);
CREATE INDEX plugins_installs ON plugins (installs DESC, id);
CREATE INDEX plugins_updated ON plugins (updated_at DESC, id);
CREATE INDEX plugins_pricing ON plugins (pricing_model);

CREATE TABLE plugin_categories (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    category  TEXT NOT NULL,
    PRIMARY KEY (plugin_id, category)
);
CREATE INDEX plugin_categories_category ON plugin_categories (category, plugin_id);

-- The capabilities the latest version asks for (kv, config, events, http), for filtering.
CREATE TABLE plugin_capabilities (
    plugin_id  TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    capability TEXT NOT NULL,
    PRIMARY KEY (plugin_id, capability)
);
CREATE INDEX plugin_capabilities_capability ON plugin_capabilities (capability, plugin_id);

CREATE TABLE versions (
    plugin_id          TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    version            TEXT NOT NULL,
    digest             TEXT NOT NULL,
    artifact_sha256    TEXT NOT NULL REFERENCES artifacts (sha256),
    manifest           TEXT NOT NULL,
    permissions_digest TEXT NOT NULL,
    changelog          TEXT,
    readme             TEXT,
    submission_id      TEXT NOT NULL REFERENCES submissions (id),
    published_at       INTEGER NOT NULL,
    yanked_at          INTEGER,
    yank_reason        TEXT,
    PRIMARY KEY (plugin_id, version)
);

-- The inbox of a tenant or a publisher, written in the transaction of the change it reports.
CREATE TABLE notifications (
    id             TEXT PRIMARY KEY,
    recipient_kind TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    message        TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    read_at        INTEGER
);
CREATE INDEX notifications_recipient ON notifications (recipient_kind, recipient_id, created_at);

-- Full-text search over the catalog, kept in step with `plugins` by the catalog module. A
-- plugin's row in `plugin_search` has the rowid it is given in `plugin_search_rows`, so it can
-- be replaced by rowid (the FTS table's `plugin_id` column is not indexed).
CREATE TABLE plugin_search_rows (
    rowid     INTEGER PRIMARY KEY,
    plugin_id TEXT NOT NULL UNIQUE REFERENCES plugins (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE plugin_search USING fts5 (
    plugin_id UNINDEXED,
    name,
    description,
    categories,
    tokenize = 'unicode61 remove_diacritics 2'
);
