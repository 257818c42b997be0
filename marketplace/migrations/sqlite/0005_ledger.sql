-- The revenue-share ledger: double-entry accounts and immutable transactions of postings
-- (amounts are signed integer minor units: a debit is positive, a credit negative; the
-- postings of a transaction sum to zero per currency), paid-install subscriptions, charges
-- with their split, processor events, disputes and payouts.

CREATE TABLE ledger_accounts (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    owner_id   TEXT,
    currency   TEXT NOT NULL,
    -- Cached: the sum of the account's postings, updated in the transaction that posts.
    balance    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner_id, kind);

CREATE TABLE ledger_transactions (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    publisher_id    TEXT,
    tenant_id       TEXT,
    plugin_id       TEXT,
    charge_id       TEXT,
    reverses        TEXT REFERENCES ledger_transactions (id),
    memo            TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX ledger_transactions_publisher ON ledger_transactions (publisher_id, created_at);
CREATE INDEX ledger_transactions_created ON ledger_transactions (created_at);

CREATE TABLE ledger_postings (
    seq            INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    account_id     TEXT NOT NULL REFERENCES ledger_accounts (id),
    currency       TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX ledger_postings_transaction ON ledger_postings (transaction_id);
CREATE INDEX ledger_postings_account ON ledger_postings (account_id, created_at);

-- A paid install: what the processor's invoices refer to (`subscription` = id).
CREATE TABLE ledger_subscriptions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    plugin_id    TEXT NOT NULL,
    publisher_id TEXT NOT NULL,
    model        TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE UNIQUE INDEX ledger_subscriptions_active ON ledger_subscriptions (tenant_id, plugin_id)
    WHERE status = 'active';

-- A charge and its split: the gross, the platform's and the publisher's parts (which sum to
-- the gross), the processor fee and who bore it, what was refunded so far, and when the
-- publisher's part becomes available.
CREATE TABLE ledger_charges (
    id                TEXT PRIMARY KEY,
    reference         TEXT NOT NULL UNIQUE,
    processor_charge  TEXT,
    processor_invoice TEXT,
    source            TEXT NOT NULL,
    subscription_id   TEXT,
    tenant_id         TEXT NOT NULL,
    plugin_id         TEXT NOT NULL,
    publisher_id      TEXT NOT NULL,
    currency          TEXT NOT NULL,
    gross             INTEGER NOT NULL,
    platform_share    INTEGER NOT NULL,
    publisher_share   INTEGER NOT NULL,
    fee               INTEGER NOT NULL,
    publisher_fee     INTEGER NOT NULL,
    policy_version    INTEGER NOT NULL,
    refunded          INTEGER NOT NULL DEFAULT 0,
    refunded_platform INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,
    paid_at           INTEGER,
    available_at      INTEGER,
    released_at       INTEGER,
    period            TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX ledger_charges_publisher ON ledger_charges (publisher_id, currency);
CREATE INDEX ledger_charges_processor_charge ON ledger_charges (processor_charge);
CREATE INDEX ledger_charges_processor_invoice ON ledger_charges (processor_invoice);
CREATE INDEX ledger_charges_release ON ledger_charges (released_at, available_at);

-- Processor events as received (signature checked), by the processor's event id: a duplicate
-- changes nothing; one that matches nothing is kept for reconciliation.
CREATE TABLE billing_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL,
    note        TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX billing_events_status ON billing_events (status, received_at);

CREATE TABLE ledger_disputes (
    id           TEXT PRIMARY KEY,
    charge_id    TEXT NOT NULL REFERENCES ledger_charges (id),
    amount       INTEGER NOT NULL,
    frozen       INTEGER NOT NULL,
    frozen_from  TEXT NOT NULL,
    status       TEXT NOT NULL,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE UNIQUE INDEX ledger_disputes_open ON ledger_disputes (charge_id) WHERE status = 'open';

CREATE TABLE payout_runs (
    id          TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    file_csv    TEXT,
    file_json   TEXT
);

CREATE TABLE payouts (
    id             TEXT PRIMARY KEY,
    run_id         TEXT NOT NULL REFERENCES payout_runs (id),
    publisher_id   TEXT NOT NULL,
    currency       TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    reference      TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    created_at     INTEGER NOT NULL,
    settled_at     INTEGER,
    UNIQUE (run_id, publisher_id, currency)
);
CREATE INDEX payouts_publisher ON payouts (publisher_id, created_at);
