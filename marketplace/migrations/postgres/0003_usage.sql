-- Usage metering: the host's per-call counters, summed per tenant, plugin, version and UTC
-- calendar month ('YYYY-MM'). Flushed batches are added, never replaced.
CREATE TABLE usage_counters (
    tenant_id          TEXT NOT NULL,
    plugin_id          TEXT NOT NULL,
    version            TEXT NOT NULL,
    month              TEXT NOT NULL,
    invocations        BIGINT NOT NULL,
    failures           BIGINT NOT NULL,
    wall_time_us       BIGINT NOT NULL,
    fuel               BIGINT NOT NULL,
    kv_bytes_written   BIGINT NOT NULL,
    outbound_requests  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, version, month)
);
CREATE INDEX usage_counters_month ON usage_counters (tenant_id, month);
