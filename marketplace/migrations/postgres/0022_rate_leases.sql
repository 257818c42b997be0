-- Deployment-wide tenant rates (issue 24, part 3). Each row counts how many requests of one
-- tenant's rate ('api' or 'outbound') in one minute window (`window_start`, ms since the
-- epoch) the processes have leased; `last_grant` is what the latest lease was granted, for
-- RETURNING. UNLOGGED: written on a tenant's every few requests, needed for a minute only; a
-- crash of the database empties it, which costs at most one window counted afresh.
CREATE UNLOGGED TABLE rate_leases (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    leased BIGINT NOT NULL,
    last_grant BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, window_start)
);
