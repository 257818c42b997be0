-- The platform's own billing (issue 25): plan prices and trials, each tenant's billing account
-- at the processor, the spans of time it spent on each plan (what proration reads), coupons and
-- their redemptions, invoices with their lines, payment attempts and credit notes, suspension,
-- quota alerts, and the outbox of e-mail.
ALTER TABLE plans ADD COLUMN price_monthly INTEGER NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE plans ADD COLUMN trial_days INTEGER NOT NULL DEFAULT 0;
UPDATE plans SET price_monthly = 2900, trial_days = 14 WHERE name = 'pro';
UPDATE plans SET price_monthly = 49900, trial_days = 14 WHERE name = 'enterprise';

-- Set while a tenant is suspended: `payment` (dunning ran out) or `operator`.
ALTER TABLE tenants ADD COLUMN suspended_at INTEGER;
ALTER TABLE tenants ADD COLUMN suspended_reason TEXT;

CREATE TABLE billing_accounts (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    customer             TEXT,
    payment_method       TEXT,
    payment_brand        TEXT,
    payment_last4        TEXT,
    -- free | trialing | active | past_due
    status               TEXT NOT NULL,
    trial_used           INTEGER NOT NULL DEFAULT 0,
    trial_ends_at        INTEGER,
    trial_warned         INTEGER NOT NULL DEFAULT 0,
    pending_plan         TEXT REFERENCES plans (name),
    pending_plan_at      INTEGER,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    past_due_since       INTEGER,
    updated_at           INTEGER NOT NULL
);

-- What the tenant was on, when, and at what price: invoices prorate the plan over these.
CREATE TABLE plan_periods (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    plan          TEXT NOT NULL,
    price_monthly INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    trial         INTEGER NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER
);
CREATE INDEX plan_periods_tenant ON plan_periods (tenant_id, starts_at);
CREATE UNIQUE INDEX plan_periods_open ON plan_periods (tenant_id) WHERE ends_at IS NULL;

CREATE TABLE coupons (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE,
    percent_off      INTEGER,
    amount_off       INTEGER,
    currency         TEXT,
    -- once | repeating | forever
    duration         TEXT NOT NULL,
    duration_months  INTEGER,
    expires_at       INTEGER,
    max_redemptions  INTEGER,
    redemptions      INTEGER NOT NULL DEFAULT 0,
    plans            TEXT NOT NULL,
    active           INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL
);

-- One coupon per tenant at a time; redeeming the same code again changes nothing.
CREATE TABLE coupon_redemptions (
    id             TEXT PRIMARY KEY,
    coupon_id      TEXT NOT NULL REFERENCES coupons (id),
    tenant_id      TEXT NOT NULL,
    redeemed_at    INTEGER NOT NULL,
    months_applied INTEGER NOT NULL DEFAULT 0,
    ended_at       INTEGER,
    UNIQUE (coupon_id, tenant_id)
);
CREATE UNIQUE INDEX coupon_redemptions_current ON coupon_redemptions (tenant_id) WHERE ended_at IS NULL;

CREATE TABLE invoices (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    number             TEXT NOT NULL UNIQUE,
    period             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    subtotal           INTEGER NOT NULL,
    discount           INTEGER NOT NULL,
    total              INTEGER NOT NULL,
    credited           INTEGER NOT NULL DEFAULT 0,
    -- open | paid | void
    status             TEXT NOT NULL,
    coupon_id          TEXT,
    processor_invoice  TEXT,
    processor_charge   TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    -- When the latest collection attempt was made: when its decline counts from.
    last_attempt_at    INTEGER,
    next_attempt_at    INTEGER,
    issued_at          INTEGER NOT NULL,
    paid_at            INTEGER,
    UNIQUE (tenant_id, period, currency)
);
CREATE INDEX invoices_status ON invoices (status, next_attempt_at);

CREATE TABLE invoice_lines (
    invoice_id      TEXT NOT NULL REFERENCES invoices (id),
    line            INTEGER NOT NULL,
    -- plan | plugin | usage | discount
    kind            TEXT NOT NULL,
    description     TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    plugin_id       TEXT,
    subscription_id TEXT,
    usage_charge_id TEXT,
    PRIMARY KEY (invoice_id, line)
);

-- Months whose invoicing finished: later runs skip them (collection continues per invoice).
CREATE TABLE billing_runs (
    month       TEXT PRIMARY KEY,
    invoices    INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);

-- Invoice numbers: PL-000001, PL-000002, … in the order invoices are issued.
CREATE TABLE invoice_numbers (
    id   TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);
INSERT INTO invoice_numbers (id, next) VALUES ('invoices', 1);

-- Each failed attempt to collect an invoice, once (the answer and the webhook agree on it).
CREATE TABLE invoice_attempts (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    attempt    INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    code       TEXT,
    at         INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, attempt)
);

CREATE TABLE credit_notes (
    id                TEXT PRIMARY KEY,
    invoice_id        TEXT NOT NULL REFERENCES invoices (id),
    tenant_id         TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    reason            TEXT NOT NULL,
    processor_note    TEXT,
    created_at        INTEGER NOT NULL
);

-- An alert per tenant, quota, month and threshold, at most once.
CREATE TABLE quota_alerts (
    tenant_id TEXT NOT NULL,
    quota     TEXT NOT NULL,
    month     TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota, month, threshold)
);

CREATE TABLE email_outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    template        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    invoice_id      TEXT,
    -- queued | sent | failed
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);
