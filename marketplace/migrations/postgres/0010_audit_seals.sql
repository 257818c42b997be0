-- Seals: each entry's hash, and the head's position, HMAC'd under the audit key, which is kept
-- outside the database (marketplace/src/audit/key.rs). With the key out of reach, an entry
-- cannot be edited and every later hash recomputed without the seals showing it. Entries
-- written before this migration have none; `plinth serve` seals such a log at start by
-- appending an entry whose seal vouches, through its hash, for all before it.
ALTER TABLE audit_log ADD COLUMN seal TEXT;
ALTER TABLE audit_head ADD COLUMN seal TEXT;
