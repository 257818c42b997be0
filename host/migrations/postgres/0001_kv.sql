-- The kv capability's storage (host-owned; every table is prefixed `kv_`).
--
-- Keys use the "C" collation so that comparison and ORDER BY are byte order whatever the
-- database's locale: the order `list_keys` promises and the one its range scans rely on.
-- Values are BYTEA.

CREATE TABLE kv_entries (
    tenant TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    value  BYTEA NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
);

-- One row per namespace that has ever been written: the running totals the quota is checked
-- against. `bytes` is the sum over the namespace's entries of (key bytes + value bytes).
-- Every change to kv_entries first locks this row, then updates it in the same transaction.
CREATE TABLE kv_usage (
    tenant TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    bytes  BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    keys   BIGINT NOT NULL DEFAULT 0 CHECK (keys >= 0),
    PRIMARY KEY (tenant, plugin)
);
