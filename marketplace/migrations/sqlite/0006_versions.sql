-- Versions: update history for rollback, pinning, yanks and blocks with reasons, appeals,
-- and change of control (a plugin whose next version needs a full review).

-- The version an install ran before its last update, with that version's grant and
-- configuration: what a tenant rollback returns to. Cleared when the install leaves a version
-- it must not return to (rollbacks, security yanks).
ALTER TABLE installs ADD COLUMN previous_version TEXT;
ALTER TABLE installs ADD COLUMN previous_permissions_digest TEXT;
ALTER TABLE installs ADD COLUMN previous_config TEXT;
-- A pinned install is never updated automatically.
ALTER TABLE installs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;

ALTER TABLE versions ADD COLUMN yank_reason_code TEXT;
ALTER TABLE versions ADD COLUMN yank_security INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN yanked_by TEXT;

ALTER TABLE plugins ADD COLUMN block_reason_code TEXT;
ALTER TABLE plugins ADD COLUMN block_reason TEXT;
ALTER TABLE plugins ADD COLUMN blocked_by TEXT;
-- Change of control: set when the publisher gains an owner or a signing key; the plugin's next
-- version needs a full review and automatic updates pause until one is approved.
ALTER TABLE plugins ADD COLUMN full_review_reason TEXT;
ALTER TABLE plugins ADD COLUMN full_review_since INTEGER;

-- A publisher's appeal of a yank or a block, once per yank or block (`action_at` is the
-- yank's or block's time; `version` is '' for a block).
CREATE TABLE appeals (
    id           TEXT PRIMARY KEY,
    plugin_id    TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    publisher_id TEXT NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    target       TEXT NOT NULL,
    version      TEXT NOT NULL,
    action_at    INTEGER NOT NULL,
    actioned_by  TEXT,
    text         TEXT NOT NULL,
    filed_by     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    decision     TEXT,
    reason       TEXT,
    decided_by   TEXT,
    decided_at   INTEGER,
    UNIQUE (plugin_id, target, version, action_at)
);
CREATE INDEX appeals_pending ON appeals (decided_at, created_at);
