-- Staged rollouts: a new version reaches auto-updating installs stage by stage (a percentage
-- of tenants, then a soak time), pauses by itself when an updated install is rolled back by
-- its breaker, and can be halted (the kill switch rolls the updated installs back).
-- `stages` is JSON: [{"percent": 5, "soak_minutes": 60}, …, {"percent": 100}].
CREATE TABLE rollouts (
    plugin_id        TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    version          TEXT NOT NULL,
    stages           TEXT NOT NULL,
    stage            INTEGER NOT NULL,
    state            TEXT NOT NULL,
    held             INTEGER NOT NULL,
    stage_started_at INTEGER,
    reason           TEXT,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version)
);
CREATE INDEX rollouts_state ON rollouts (state, stage_started_at);

-- The installs a rollout updated: the ones its kill switch rolls back.
CREATE TABLE rollout_updates (
    plugin_id  TEXT NOT NULL,
    version    TEXT NOT NULL,
    install_id TEXT NOT NULL REFERENCES installs (id) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version, install_id),
    FOREIGN KEY (plugin_id, version) REFERENCES rollouts (plugin_id, version) ON DELETE CASCADE
);
