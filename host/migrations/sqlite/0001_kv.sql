-- The kv capability's storage (host-owned; every table is prefixed `kv_`).
--
-- Keys are TEXT compared with SQLite's default BINARY collation (memcmp), which for UTF-8 is
-- code-point order: the order `list_keys` promises. Values are BLOBs.

CREATE TABLE kv_entries (
    tenant TEXT NOT NULL,
    plugin TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
) WITHOUT ROWID;

-- One row per namespace that has ever been written: the running totals the quota is checked
-- against. `bytes` is the sum over the namespace's entries of (key bytes + value bytes).
-- Maintained in the same transaction as every change to kv_entries.
CREATE TABLE kv_usage (
    tenant TEXT    NOT NULL,
    plugin TEXT    NOT NULL,
    bytes  INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    keys   INTEGER NOT NULL DEFAULT 0 CHECK (keys >= 0),
    PRIMARY KEY (tenant, plugin)
) WITHOUT ROWID;
