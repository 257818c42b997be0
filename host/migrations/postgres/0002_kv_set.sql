-- One kv write in one round trip: the namespace's usage row is locked (and the tenant's
-- advisory lock taken, when a tenant-wide quota applies) only for as long as this statement
-- runs on the server, never across round trips to the client. Concurrent writers of one
-- namespace then queue for microseconds, not for the client's round trips.
--
-- The quota decision is the Rust `charge` and `charge_tenant` of `host/src/kv/mod.rs`, which
-- SQLite's writer runs; the kv_store tests run every quota case on both backends, so the two
-- stay the same rule. A refusal raises SQLSTATE PK001 (message: the quota's name; detail:
-- "<limit> <would use>"), which aborts the statement: nothing is written, not even a usage row.
--
-- Each statement of a VOLATILE function takes a fresh snapshot under READ COMMITTED, so the
-- reads after the lock see everything the previous writer committed.
--
-- The write commits without waiting for its WAL to reach the disk (synchronous_commit off for
-- this transaction only): the locks are released before the flush, so writers of one namespace
-- no longer queue behind each other's fsync. A crash of the PostgreSQL server (not of Plinth)
-- can lose the last fraction of a second of kv writes, never half of one: the same bargain as
-- the SQLite kv store's `synchronous = NORMAL` makes on a power cut (docs/operator.md).
CREATE FUNCTION kv_set(
    p_tenant TEXT,
    p_plugin TEXT,
    p_key TEXT,
    p_value BYTEA,
    p_max_bytes BIGINT,
    p_max_keys BIGINT,
    p_tenant_max_bytes BIGINT
) RETURNS VOID LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_bytes BIGINT;
    current_keys BIGINT;
    old_value_len BIGINT;
    after_bytes BIGINT;
    after_keys BIGINT;
    others BIGINT;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF p_tenant_max_bytes IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('plinth-kv:' || p_tenant, 0));
    END IF;
    INSERT INTO kv_usage (tenant, plugin) VALUES (p_tenant, p_plugin)
        ON CONFLICT (tenant, plugin) DO UPDATE SET bytes = kv_usage.bytes
        RETURNING bytes, keys INTO current_bytes, current_keys;
    SELECT octet_length(value) INTO old_value_len FROM kv_entries
        WHERE tenant = p_tenant AND plugin = p_plugin AND key = p_key;

    after_bytes := GREATEST(
        current_bytes - COALESCE(octet_length(p_key) + old_value_len, 0), 0
    ) + octet_length(p_key) + octet_length(p_value);
    after_keys := current_keys + CASE WHEN old_value_len IS NULL THEN 1 ELSE 0 END;
    IF after_bytes > p_max_bytes AND after_bytes > current_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'PK001', MESSAGE = 'bytes',
            DETAIL = p_max_bytes || ' ' || after_bytes;
    END IF;
    IF p_max_keys IS NOT NULL AND after_keys > p_max_keys AND after_keys > current_keys THEN
        RAISE EXCEPTION USING ERRCODE = 'PK001', MESSAGE = 'keys',
            DETAIL = p_max_keys || ' ' || after_keys;
    END IF;
    IF p_tenant_max_bytes IS NOT NULL AND after_bytes > current_bytes THEN
        SELECT COALESCE(SUM(bytes), 0) INTO others FROM kv_usage
            WHERE tenant = p_tenant AND plugin <> p_plugin;
        IF others + after_bytes > p_tenant_max_bytes THEN
            RAISE EXCEPTION USING ERRCODE = 'PK001', MESSAGE = 'tenant bytes',
                DETAIL = p_tenant_max_bytes || ' ' || (others + after_bytes);
        END IF;
    END IF;

    INSERT INTO kv_entries (tenant, plugin, key, value)
        VALUES (p_tenant, p_plugin, p_key, p_value)
        ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = EXCLUDED.value;
    UPDATE kv_usage SET bytes = after_bytes, keys = after_keys
        WHERE tenant = p_tenant AND plugin = p_plugin;
END;
$$;
