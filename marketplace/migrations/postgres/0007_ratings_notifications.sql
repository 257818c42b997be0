-- Ratings with replies and moderation; install history (who may rate); webhooks with their
-- delivery outbox. Times are Unix milliseconds (UTC).

-- When each tenant had each plugin installed: a row per install, closed on uninstall. An
-- uninstall deletes the `installs` row, so this is what remembers that a tenant used a plugin.
CREATE TABLE install_spans (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plugin_id      TEXT NOT NULL REFERENCES plugins (id),
    installed_at   BIGINT NOT NULL,
    uninstalled_at BIGINT
);
CREATE INDEX install_spans_tenant_plugin ON install_spans (tenant_id, plugin_id);
INSERT INTO install_spans (id, tenant_id, plugin_id, installed_at)
    SELECT id, tenant_id, plugin_id, created_at FROM installs;

-- One rating per tenant per plugin; `plugins.rating_sum`/`rating_count` follow it in the same
-- transaction. Hiding hides the text, not the stars.
CREATE TABLE ratings (
    plugin_id     TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    stars         BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    body          TEXT,
    rated_by      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    hidden_at     BIGINT,
    hidden_by     TEXT,
    hidden_reason TEXT,
    reply         TEXT,
    replied_by    TEXT,
    replied_at    BIGINT,
    PRIMARY KEY (plugin_id, tenant_id)
);
CREATE INDEX ratings_plugin_updated ON ratings (plugin_id, updated_at DESC, tenant_id);

-- A webhook of a tenant or a publisher (at most one each). The secret signs deliveries.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    owner_kind TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (owner_kind, owner_id)
);

-- One delivery of one notification to one webhook, written in the notification's transaction.
-- `status` is pending, delivered or failed; a pending row is due at `next_attempt_at` (a
-- deliverer that claims it moves that forward by a lease, so no two deliver it at once).
CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    notification_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    last_attempt_at BIGINT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
CREATE INDEX webhook_outbox_webhook ON webhook_outbox (webhook_id, created_at);
