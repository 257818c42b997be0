-- Ratings belong to a person: one per account per plugin, whatever the number of their
-- tenants, addressed by an id (replies and moderation name it; a tenant's slug is never shown).
-- Of the ratings made before, for each (plugin, account) the most recently changed one is kept;
-- the others, and ratings by members of the plugin's own publisher, are removed, and every
-- plugin's aggregates are counted again.
CREATE TABLE ratings_by_person (
    id            TEXT PRIMARY KEY,
    plugin_id     TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rated_by      TEXT NOT NULL,
    stars         INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    body          TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    hidden_at     INTEGER,
    hidden_by     TEXT,
    hidden_reason TEXT,
    reply         TEXT,
    replied_by    TEXT,
    replied_at    INTEGER,
    UNIQUE (plugin_id, rated_by)
);

INSERT INTO ratings_by_person (id, plugin_id, tenant_id, rated_by, stars, body, created_at,
                               updated_at, hidden_at, hidden_by, hidden_reason, reply,
                               replied_by, replied_at)
SELECT lower(hex(randomblob(16))), r.plugin_id, r.tenant_id, r.rated_by, r.stars, r.body,
       r.created_at, r.updated_at, r.hidden_at, r.hidden_by, r.hidden_reason, r.reply,
       r.replied_by, r.replied_at
FROM ratings r
WHERE NOT EXISTS (SELECT 1 FROM ratings o
                  WHERE o.plugin_id = r.plugin_id AND o.rated_by = r.rated_by
                    AND (o.updated_at > r.updated_at
                         OR (o.updated_at = r.updated_at AND o.tenant_id > r.tenant_id)))
  AND NOT EXISTS (SELECT 1 FROM plugins p
                  JOIN publisher_members m ON m.publisher_id = p.publisher_id
                  WHERE p.id = r.plugin_id AND m.user_id = r.rated_by);

DROP TABLE ratings;
ALTER TABLE ratings_by_person RENAME TO ratings;
CREATE INDEX ratings_plugin_updated ON ratings (plugin_id, updated_at DESC, id);
CREATE INDEX ratings_tenant ON ratings (tenant_id);

UPDATE plugins SET
    rating_sum = COALESCE((SELECT SUM(r.stars) FROM ratings r WHERE r.plugin_id = plugins.id), 0),
    rating_count = (SELECT COUNT(*) FROM ratings r WHERE r.plugin_id = plugins.id);

-- Signing keys are registered with a proof of possession: the key signs a challenge issued for
-- one publisher and that key (open for minutes, used once). Keys registered before have no
-- proof (`proven_at` NULL): they keep signing for their publisher, and give way to a publisher
-- that proves it holds the key.
ALTER TABLE publisher_keys ADD COLUMN proven_at INTEGER;

CREATE TABLE key_challenges (
    challenge    TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    public_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX key_challenges_publisher ON key_challenges (publisher_id, created_at);
CREATE INDEX key_challenges_expiry ON key_challenges (expires_at);
