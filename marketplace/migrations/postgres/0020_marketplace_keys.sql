-- Marketplace key rotation (`plinth admin rotate-key`): the countersigning keys state
-- statements name, so hosts follow a rotation. A key with `retire_at` in the past, or revoked
-- (compromised), is named no more; with no row at all, a server names only its own key.
CREATE TABLE marketplace_keys (
    public_key TEXT PRIMARY KEY,
    added_at   BIGINT NOT NULL,
    retire_at  BIGINT,
    revoked    BIGINT NOT NULL DEFAULT 0
);
