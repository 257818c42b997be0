-- Deployment-wide tenant rates (issue 24, part 3): see the PostgreSQL migration. On SQLite one
-- process serves everything and `plinth serve` keeps rates in memory; the table is here so the
-- lease store has the same schema (and is tested) on both backends.
CREATE TABLE rate_leases (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    leased BIGINT NOT NULL,
    last_grant BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, window_start)
);
