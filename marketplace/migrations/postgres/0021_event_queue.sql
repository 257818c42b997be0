-- Durable asynchronous events (issue 24): accepted now, delivered at least once by any host
-- process, retried with back-off, dead-lettered after the plan's attempts.

-- Attempts one queued event gets before it is dead-lettered, and how many of a tenant's
-- events may wait in the queue at once.
ALTER TABLE plans ADD COLUMN event_attempts BIGINT NOT NULL DEFAULT 5;
ALTER TABLE plans ADD COLUMN max_queued_events BIGINT NOT NULL DEFAULT 1000;
UPDATE plans SET event_attempts = 10, max_queued_events = 10000 WHERE name = 'pro';
UPDATE plans SET event_attempts = 15, max_queued_events = 100000 WHERE name = 'enterprise';

-- One event in the queue: one a caller sent with `"delivery": "async"`, one a plugin emitted
-- while handling a queued event, or one tick of an install's schedule. `pending` is the JSON
-- list of plugins still to deliver to (NULL until the first attempt fans the event out),
-- `failed` those whose delivery failed for good (what a replay delivers again);
-- `budget`/`budget_used` are the invocations the whole tree of a root event may start.
-- A claim is a lease: `lease_token` and `lease_until` (a host that dies loses it when it ends).
CREATE TABLE queued_events (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    root_id         TEXT NOT NULL,
    parent_id       TEXT,
    topic           TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    depth           BIGINT NOT NULL,
    target_plugin   TEXT,
    idempotency_key TEXT,
    request_digest  TEXT,
    schedule_key    TEXT UNIQUE,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    budget          BIGINT NOT NULL,
    budget_used     BIGINT NOT NULL DEFAULT 0,
    pending         TEXT,
    failed          TEXT,
    next_attempt_at BIGINT NOT NULL,
    lease_token     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    last_error      TEXT
);
CREATE UNIQUE INDEX queued_events_idempotency ON queued_events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX queued_events_due ON queued_events (next_attempt_at) WHERE status = 'queued';
CREATE INDEX queued_events_by_root ON queued_events (root_id) WHERE status = 'queued';
CREATE INDEX queued_events_by_tenant ON queued_events (tenant_id, status, created_at);
CREATE INDEX queued_events_finished ON queued_events (finished_at) WHERE finished_at IS NOT NULL;

-- What each attempt did per plugin: `ok`, `retry` (failed, will be tried again), `failed`
-- (failed for good) or `skipped` (the event's budget did not allow the delivery).
CREATE TABLE queued_event_results (
    event_id      TEXT NOT NULL REFERENCES queued_events (id) ON DELETE CASCADE,
    plugin        TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    version       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    output        BYTEA,
    error_code    TEXT,
    error_message TEXT,
    at            BIGINT NOT NULL,
    PRIMARY KEY (event_id, plugin, attempt)
);

-- The last tick of each install's schedule that was queued (`schedule` is its cadence and
-- topic). Advancing it is a compare-and-set, so of several hosts ticking at once one queues
-- the tick; the row is made, without a delivery, the first time any host sees the schedule.
CREATE TABLE schedule_ticks (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plugin_id TEXT NOT NULL,
    schedule  TEXT NOT NULL,
    last_tick BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, schedule)
);
