-- Money stays exact under concurrency, disorder and tampering (issue 18).
--
-- `ledger_lock` is the one row every money change locks first (marketplace/src/ledger/lock.rs):
-- on PostgreSQL it serializes money changes as SQLite's write lock already does, so a charge is
-- read and changed by one transaction at a time.
CREATE TABLE ledger_lock (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    taken INTEGER NOT NULL
);
INSERT INTO ledger_lock (id, taken) VALUES (1, 0);

-- The processor's `amount_refunded` counts refunds only; lost disputes are counted apart, so a
-- refund reported after a lost dispute is not mistaken for an old one. `reversed_platform` is
-- the platform's part of both. `lifetime_before` is the publisher's lifetime gross the charge
-- was split at, so `plinth ledger verify` can re-derive the split.
ALTER TABLE ledger_charges ADD COLUMN charged_back INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_charges ADD COLUMN lifetime_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_charges RENAME COLUMN refunded_platform TO reversed_platform;
UPDATE ledger_charges SET charged_back = COALESCE((
    SELECT SUM(-p.amount) FROM ledger_postings p
    JOIN ledger_transactions t ON t.id = p.transaction_id
    WHERE t.charge_id = ledger_charges.id AND t.kind = 'chargeback'
      AND p.account_id LIKE 'processor_clearing:%'), 0);
UPDATE ledger_charges SET refunded = refunded - charged_back;
UPDATE ledger_charges SET lifetime_before = COALESCE((
    SELECT SUM(c.gross) FROM ledger_charges c
    WHERE c.publisher_id = ledger_charges.publisher_id AND c.currency = ledger_charges.currency
      AND (c.created_at < ledger_charges.created_at
           OR (c.created_at = ledger_charges.created_at AND c.id < ledger_charges.id))), 0);

-- Each split policy version's tiers, stored when first used: a version names one policy.
CREATE TABLE ledger_split_policies (
    version    INTEGER PRIMARY KEY,
    tiers      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- Version 1 is the built-in default, the only one `plinth serve` has used.
INSERT INTO ledger_split_policies (version, tiers, created_at) VALUES
    (1, '[{"up_to":100000000,"platform_bps":0},{"up_to":null,"platform_bps":1500}]', 0);

-- Processor events name the charge and invoice they concern, so that one waiting for its
-- object (status `pending`) is applied when that object arrives; `applied_at` and
-- `reported_at` (when operators were told it stays unmatched or was refused).
ALTER TABLE billing_events ADD COLUMN charge_ref TEXT;
ALTER TABLE billing_events ADD COLUMN invoice_ref TEXT;
ALTER TABLE billing_events ADD COLUMN applied_at INTEGER;
ALTER TABLE billing_events ADD COLUMN reported_at INTEGER;
UPDATE billing_events SET
    charge_ref = CASE type
        WHEN 'charge.refunded' THEN json_extract(payload, '$.data.object.id')
        ELSE json_extract(payload, '$.data.object.charge') END,
    invoice_ref = CASE type
        WHEN 'invoice.paid' THEN json_extract(payload, '$.data.object.id')
        ELSE json_extract(payload, '$.data.object.invoice') END
    WHERE json_valid(payload);
UPDATE billing_events SET status = 'pending' WHERE status = 'unmatched';
CREATE INDEX billing_events_charge_ref ON billing_events (charge_ref, status);
CREATE INDEX billing_events_invoice_ref ON billing_events (invoice_ref, status);
CREATE INDEX billing_events_order ON billing_events (status, created, id);

-- When a payout run's payouts were made (in one transaction); its files come after.
ALTER TABLE payout_runs ADD COLUMN paid_at INTEGER;
UPDATE payout_runs SET paid_at = finished_at;
