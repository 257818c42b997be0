-- The platform's own billing (issue 25): plan prices and trials, each tenant's billing account
-- at the processor, the spans of time it spent on each plan (what proration reads), coupons and
-- their redemptions, invoices with their lines, payment attempts and credit notes, suspension,
-- quota alerts, and the outbox of e-mail.
ALTER TABLE plans ADD COLUMN price_monthly BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE plans ADD COLUMN trial_days BIGINT NOT NULL DEFAULT 0;
UPDATE plans SET price_monthly = 2900, trial_days = 14 WHERE name = 'pro';
UPDATE plans SET price_monthly = 49900, trial_days = 14 WHERE name = 'enterprise';

-- Set while a tenant is suspended: `payment` (dunning ran out) or `operator`.
ALTER TABLE tenants ADD COLUMN suspended_at BIGINT;
ALTER TABLE tenants ADD COLUMN suspended_reason TEXT;

CREATE TABLE billing_accounts (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    customer             TEXT,
    payment_method       TEXT,
    payment_brand        TEXT,
    payment_last4        TEXT,
    -- free | trialing | active | past_due
    status               TEXT NOT NULL,
    trial_used           BIGINT NOT NULL DEFAULT 0,
    trial_ends_at        BIGINT,
    trial_warned         BIGINT NOT NULL DEFAULT 0,
    pending_plan         TEXT REFERENCES plans (name),
    pending_plan_at      BIGINT,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0,
    past_due_since       BIGINT,
    updated_at           BIGINT NOT NULL
);

-- What the tenant was on, when, and at what price: invoices prorate the plan over these.
CREATE TABLE plan_periods (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    plan          TEXT NOT NULL,
    price_monthly BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    trial         BIGINT NOT NULL,
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT
);
CREATE INDEX plan_periods_tenant ON plan_periods (tenant_id, starts_at);
CREATE UNIQUE INDEX plan_periods_open ON plan_periods (tenant_id) WHERE ends_at IS NULL;

CREATE TABLE coupons (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE,
    percent_off      BIGINT,
    amount_off       BIGINT,
    currency         TEXT,
    -- once | repeating | forever
    duration         TEXT NOT NULL,
    duration_months  BIGINT,
    expires_at       BIGINT,
    max_redemptions  BIGINT,
    redemptions      BIGINT NOT NULL DEFAULT 0,
    plans            TEXT NOT NULL,
    active           BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL
);

-- One coupon per tenant at a time; redeeming the same code again changes nothing.
CREATE TABLE coupon_redemptions (
    id             TEXT PRIMARY KEY,
    coupon_id      TEXT NOT NULL REFERENCES coupons (id),
    tenant_id      TEXT NOT NULL,
    redeemed_at    BIGINT NOT NULL,
    months_applied BIGINT NOT NULL DEFAULT 0,
    ended_at       BIGINT,
    UNIQUE (coupon_id, tenant_id)
);
CREATE UNIQUE INDEX coupon_redemptions_current ON coupon_redemptions (tenant_id) WHERE ended_at IS NULL;

CREATE TABLE invoices (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    number             TEXT NOT NULL UNIQUE,
    period             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    subtotal           BIGINT NOT NULL,
    discount           BIGINT NOT NULL,
    total              BIGINT NOT NULL,
    credited           BIGINT NOT NULL DEFAULT 0,
    -- open | paid | void
    status             TEXT NOT NULL,
    coupon_id          TEXT,
    processor_invoice  TEXT,
    processor_charge   TEXT,
    attempts           BIGINT NOT NULL DEFAULT 0,
    -- When the latest collection attempt was made: when its decline counts from.
    last_attempt_at    BIGINT,
    next_attempt_at    BIGINT,
    issued_at          BIGINT NOT NULL,
    paid_at            BIGINT,
    UNIQUE (tenant_id, period, currency)
);
CREATE INDEX invoices_status ON invoices (status, next_attempt_at);

CREATE TABLE invoice_lines (
    invoice_id      TEXT NOT NULL REFERENCES invoices (id),
    line            BIGINT NOT NULL,
    -- plan | plugin | usage | discount
    kind            TEXT NOT NULL,
    description     TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    plugin_id       TEXT,
    subscription_id TEXT,
    usage_charge_id TEXT,
    PRIMARY KEY (invoice_id, line)
);

-- Months whose invoicing finished: later runs skip them (collection continues per invoice).
CREATE TABLE billing_runs (
    month       TEXT PRIMARY KEY,
    invoices    BIGINT NOT NULL,
    finished_at BIGINT NOT NULL
);

-- Invoice numbers: PL-000001, PL-000002, … in the order invoices are issued.
CREATE TABLE invoice_numbers (
    id   TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
INSERT INTO invoice_numbers (id, next) VALUES ('invoices', 1);

-- Each failed attempt to collect an invoice, once (the answer and the webhook agree on it).
CREATE TABLE invoice_attempts (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    attempt    BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    code       TEXT,
    at         BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, attempt)
);

CREATE TABLE credit_notes (
    id                TEXT PRIMARY KEY,
    invoice_id        TEXT NOT NULL REFERENCES invoices (id),
    tenant_id         TEXT NOT NULL,
    amount            BIGINT NOT NULL,
    reason            TEXT NOT NULL,
    processor_note    TEXT,
    created_at        BIGINT NOT NULL
);

-- An alert per tenant, quota, month and threshold, at most once.
CREATE TABLE quota_alerts (
    tenant_id TEXT NOT NULL,
    quota     TEXT NOT NULL,
    month     TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    at        BIGINT NOT NULL,
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
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);

-- Row-level security as 0023 gives every tenant-scoped table; lines and attempts follow their
-- invoice.
DO $$
DECLARE
    scoped TEXT;
BEGIN
    FOREACH scoped IN ARRAY ARRAY['billing_accounts', 'plan_periods', 'coupon_redemptions',
        'invoices', 'credit_notes', 'quota_alerts', 'email_outbox']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', scoped);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', scoped);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING ('
            || 'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR tenant_id = current_setting(''plinth.tenant'', true)) WITH CHECK ('
            || 'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR tenant_id = current_setting(''plinth.tenant'', true))', scoped);
    END LOOP;
    FOREACH scoped IN ARRAY ARRAY['invoice_lines', 'invoice_attempts']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', scoped);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', scoped);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING ('
            || 'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR EXISTS (SELECT 1 FROM invoices parent WHERE parent.id = %I.invoice_id)) '
            || 'WITH CHECK (current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR EXISTS (SELECT 1 FROM invoices parent WHERE parent.id = %I.invoice_id))',
            scoped, scoped, scoped);
    END LOOP;
END
$$;
