-- Each plan's share of a host and the budget of one inbound event (issue: a bounded, fair
-- data plane). Existing plans get the defaults of the seeded plan of the same position.
ALTER TABLE plans ADD COLUMN max_invocations_per_event BIGINT NOT NULL DEFAULT 32;
ALTER TABLE plans ADD COLUMN max_concurrent_calls BIGINT NOT NULL DEFAULT 4;
ALTER TABLE plans ADD COLUMN max_instance_slots BIGINT NOT NULL DEFAULT 64;
ALTER TABLE plans ADD COLUMN memory_share_mb BIGINT NOT NULL DEFAULT 256;

UPDATE plans SET max_invocations_per_event = 256, max_concurrent_calls = 16,
    max_instance_slots = 512, memory_share_mb = 2048 WHERE name = 'pro';
UPDATE plans SET max_invocations_per_event = 1024, max_concurrent_calls = 64,
    max_instance_slots = 2048, memory_share_mb = 8192 WHERE name = 'enterprise';
