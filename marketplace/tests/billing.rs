//! Tenants' own billing, through the API on both backends, against the processor double and an
//! SMTP server on loopback: the journey from trial to suspension and back, downgrades refused
//! with reasons, webhooks replayed, quota alerts, coupons' rules and operators' suspensions.
//! Time passes by calling billing's step ([`Billing::tick`]) at later instants, as the server's
//! periodic run would.

mod billing_support;
mod common;
mod ledger_support;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::clock::{DAY_MS, now_ms};
use reqwest::StatusCode;
use serde_json::{Value, json};

use billing_support::{Billing, api_key, greet, install, next_month};
use ledger_support::{monthly, publish_paid, scalar};
use publishing::developer;

on_both_backends_billing!(
    trial_upgrade_invoice_dunning_suspension_and_back,
    quota_alerts_come_once_per_threshold_and_month,
    coupons_are_checked_and_redeemed_once,
    operators_suspend_and_lift_and_tenants_cannot,
    trials_warn_then_end_without_a_card,
    each_currency_is_invoiced_on_its_own,
);

fn floor_share(price: i64, part: i64, whole: i64) -> i64 {
    i64::try_from(i128::from(price) * i128::from(part) / i128::from(whole)).unwrap_or(i64::MAX)
}

async fn overview(app: &common::TestApp, token: &str) -> Result<Value> {
    Ok(app
        .get("/v1/tenants/acme/billing", Some(token))
        .await?
        .expect(StatusCode::OK)?
        .body)
}

async fn counts(app: &common::TestApp) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT COUNT(*) AS n FROM ledger_transactions",
        "SELECT COUNT(*) AS n FROM invoice_attempts",
        "SELECT COUNT(*) AS n FROM notifications",
        "SELECT COUNT(*) AS n FROM email_outbox",
        "SELECT COUNT(*) AS n FROM invoices WHERE status = 'paid'",
        "SELECT COUNT(*) AS n FROM ledger_charges",
    ] {
        out.push(scalar(app, sql).await?);
    }
    Ok(out)
}

/// The Done-when journey.
async fn trial_upgrade_invoice_dunning_suspension_and_back(b: Billing) -> Result<()> {
    let app = &b.app;
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let paid = publish_paid(app, &operator, &dev, "paid", &monthly(1_000)).await?;
    let metered = publish_paid(
        app,
        &operator,
        &dev,
        "metered",
        "\n[pricing]\nmodel = \"per-1000-invocations\"\namount = 5000\ncurrency = \"USD\"",
    )
    .await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    let made = app
        .post(
            "/v1/tenants",
            Some(&admin),
            json!({"slug": "acme", "name": "Acme Corp"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let tenant_id = made.body["id"].as_str().context("id")?.to_owned();
    let key = api_key(app, &admin, "acme").await?;

    // A trial of pro, once.
    let trial = app
        .post(
            "/v1/tenants/acme/billing/trial",
            Some(&admin),
            json!({"plan": "pro"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        trial.body["outcome"] == "trial_started" && trial.body["plan"] == "pro",
        "{}",
        trial.body
    );
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["status"] == "trialing" && seen["trial_ends_at"].is_string(),
        "{seen}"
    );
    app.post(
        "/v1/tenants/acme/billing/trial",
        Some(&admin),
        json!({"plan": "pro"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "trial_used")?;
    // Paid plugins need pro: the trial grants it at once.
    install(app, &admin, "acme", &paid).await?;
    install(app, &admin, "acme", &metered).await?;

    // A coupon, and a card.
    app.post(
        "/v1/billing/coupons",
        Some(&operator),
        json!({"code": "launch20", "percent_off": 20, "duration": "repeating", "duration_months": 3, "plans": ["pro", "enterprise"]}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.put(
        "/v1/tenants/acme/billing/payment-method",
        Some(&admin),
        json!({"payment_method": "pm_nope"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "unknown_payment_method")?;
    let carded = app
        .put(
            "/v1/tenants/acme/billing/payment-method",
            Some(&admin),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        carded.body["payment_method"] == "visa ending 4242",
        "{}",
        carded.body
    );

    // The trial converts, with the coupon; then an upgrade to enterprise.
    let converted = app
        .put(
            "/v1/tenants/acme/billing/plan",
            Some(&admin),
            json!({"plan": "pro", "coupon": "LAUNCH20"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        converted.body["outcome"] == "upgraded",
        "{}",
        converted.body
    );
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["status"] == "active"
            && seen["coupon"]
                .as_str()
                .is_some_and(|c| c.starts_with("LAUNCH20")),
        "{seen}"
    );
    for _ in 0..40 {
        let (status, body) = greet(app, &key, "acme").await?;
        ensure!(status == StatusCode::OK, "{status} {body}");
    }
    b.flush_usage().await?;
    app.put(
        "/v1/tenants/acme/billing/plan",
        Some(&admin),
        json!({"plan": "enterprise"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let tenant = app
        .get("/v1/tenants/acme", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        tenant.body["plan"] == "enterprise",
        "the upgrade applies at once: {}",
        tenant.body
    );

    // As time would: the trial took the month's first two days, pro the next eight, enterprise
    // and the plugins the rest.
    let month = plinth_marketplace::month::of(now_ms())?;
    let (start, end) = (month.start_ms, month.end_ms);
    let len = end - start;
    for (sql, at) in [
        (
            "UPDATE plan_periods SET starts_at = $1, ends_at = $2 WHERE tenant_id = $3 AND trial = 1",
            (start, Some(start + 2 * DAY_MS)),
        ),
        (
            "UPDATE plan_periods SET starts_at = $1, ends_at = $2 WHERE tenant_id = $3 AND trial = 0 AND plan = 'pro'",
            (start + 2 * DAY_MS, Some(start + 10 * DAY_MS)),
        ),
        (
            "UPDATE plan_periods SET starts_at = $1, ends_at = $2 WHERE tenant_id = $3 AND plan = 'enterprise'",
            (start + 10 * DAY_MS, None),
        ),
        (
            "UPDATE ledger_subscriptions SET started_at = $1, ended_at = $2 WHERE tenant_id = $3",
            (start + 10 * DAY_MS, None),
        ),
    ] {
        let changed = sqlx::query(sql)
            .bind(at.0)
            .bind(at.1)
            .bind(&tenant_id)
            .execute(app.db().pool())
            .await?;
        ensure!(changed.rows_affected() >= 1, "{sql}");
    }
    let pro = floor_share(2_900, 8 * DAY_MS, len);
    let enterprise = floor_share(49_900, len - 10 * DAY_MS, len);
    let plugin = floor_share(1_000, len - 10 * DAY_MS, len);
    let usage = 40 * 5_000 / 1_000;
    let discount = (pro + enterprise) * 20 / 100;
    let total = pro + enterprise + plugin + usage - discount;

    // The card now declines; the month ends and its invoice is issued.
    app.put(
        "/v1/tenants/acme/billing/payment-method",
        Some(&admin),
        json!({"payment_method": "pm_card_chargeCustomerFail"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let t1 = next_month(now_ms())? + 60 * 60 * 1000;
    let report = b.tick(t1).await?;
    ensure!(report.invoices == 1, "{report:?}");
    let list = app
        .get("/v1/tenants/acme/invoices", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    let items = list.body["items"].as_array().context("items")?;
    ensure!(
        items.len() == 1 && items[0]["number"] == "PL-000001" && items[0]["status"] == "open",
        "{}",
        list.body
    );
    let invoice = app
        .get("/v1/tenants/acme/invoices/PL-000001", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    let lines: Vec<(String, i64)> = invoice.body["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or_default().to_owned(),
                l["amount"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = vec![
        ("plan".into(), pro),
        ("plan".into(), enterprise),
        ("plugin".into(), plugin),
        ("usage".into(), usage),
        ("discount".into(), -discount),
    ];
    ensure!(
        lines == want,
        "lines {lines:?}, want {want:?}: {}",
        invoice.body
    );
    ensure!(
        invoice.body["total"] == total && invoice.body["discount"] == discount,
        "{}",
        invoice.body
    );
    ensure!(overview(app, &admin).await?["status"] == "past_due");
    // The month's invocations went to the processor's meter too (both plugins answered each).
    let metered_usage: Vec<_> = b
        .double
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/billing/meter_events")
        .collect();
    ensure!(
        metered_usage.len() == 1 && metered_usage[0].param("payload[value]") == Some("80"),
        "{metered_usage:?}"
    );

    // The PDF says the same.
    let pdf = app
        .get("/v1/tenants/acme/invoices/PL-000001/pdf", Some(&admin))
        .await?;
    ensure!(
        pdf.status == StatusCode::OK && pdf.headers["content-type"] == "application/pdf",
        "{}",
        pdf.status
    );
    let document = lopdf::Document::load_mem(&pdf.bytes)?;
    let text = document.extract_text(&[1])?;
    for needed in [
        "PL-000001".to_owned(),
        "Acme Corp".to_owned(),
        "pro plan".to_owned(),
        "enterprise plan".to_owned(),
        format!("Plugin {paid}"),
        "LAUNCH20".to_owned(),
        plinth_marketplace::ledger::money::format(total, "USD"),
    ] {
        ensure!(text.contains(&needed), "the PDF lacks {needed:?}: {text}");
    }
    // Another tenant's member does not see it.
    let (_, stranger) = app.user("stranger@else.example").await?;
    app.get("/v1/tenants/acme/invoices/PL-000001/pdf", Some(&stranger))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;

    // E-mail: the invoice with its PDF, and the failed payment.
    let mail = b.mail_to("admin@acme.example");
    let invoice_mail = mail
        .iter()
        .find(|m| m.subject().contains("PL-000001") && !m.attachments().is_empty())
        .with_context(|| {
            format!(
                "no invoice e-mail: {:?}",
                mail.iter().map(|m| m.subject()).collect::<Vec<_>>()
            )
        })?;
    ensure!(invoice_mail.attachments()[0].2.starts_with(b"%PDF"));
    let failures = |b: &Billing| {
        b.mail_to("admin@acme.example")
            .iter()
            .filter(|m| m.subject().starts_with("Payment failed"))
            .count()
    };
    ensure!(
        failures(&b) == 1,
        "one payment-failed e-mail after the first decline: {:?}",
        b.mail_to("admin@acme.example")
            .iter()
            .map(|m| m.subject())
            .collect::<Vec<_>>()
    );
    let (status, _) = greet(app, &key, "acme").await?;
    ensure!(status == StatusCode::OK, "past due is not suspended yet");

    // Dunning: retried a day later, declined again.
    let report = b.tick(t1 + DAY_MS + 60_000).await?;
    ensure!(
        report.retried == 1 && report.suspended == 0 && report.invoices == 0,
        "a finished month is not walked again: {report:?}"
    );
    ensure!(failures(&b) == 2, "a second payment-failed e-mail");
    // Past the grace period: suspended. Plugins answer 402; installs and data stay.
    let report = b.tick(t1 + 6 * DAY_MS).await?;
    ensure!(report.suspended == 1, "{report:?}");
    let (status, body) = greet(app, &key, "acme").await?;
    ensure!(
        status == StatusCode::PAYMENT_REQUIRED && body["error"]["code"] == "payment_required",
        "{status} {body}"
    );
    let http = app.get(&format!("/p/acme/{paid}/x"), Some(&key)).await?;
    ensure!(
        http.status == StatusCode::PAYMENT_REQUIRED,
        "plugin HTTP: {} {}",
        http.status,
        http.body
    );
    let installs = app
        .get("/v1/tenants/acme/installs", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        installs.body["items"].as_array().map(Vec::len) == Some(2),
        "{}",
        installs.body
    );
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["suspended"]
            .as_str()
            .is_some_and(|s| s.contains("unpaid invoice")),
        "{seen}"
    );
    ensure!(
        b.mail_to("admin@acme.example")
            .iter()
            .any(|m| m.subject().to_lowercase().contains("suspended"))
    );

    // A working card pays at once and restores the tenant.
    app.put(
        "/v1/tenants/acme/billing/payment-method",
        Some(&admin),
        json!({"payment_method": "pm_card_visa"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["status"] == "active" && seen["suspended"].is_null(),
        "{seen}"
    );
    let (status, body) = greet(app, &key, "acme").await?;
    ensure!(
        status == StatusCode::OK,
        "restored at once: {status} {body}"
    );
    let invoice = app
        .get("/v1/tenants/acme/invoices/PL-000001", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(invoice.body["status"] == "paid", "{}", invoice.body);
    b.tick(t1 + 6 * DAY_MS + 60_000).await?;
    ensure!(
        b.mail_to("admin@acme.example")
            .iter()
            .any(|m| m.subject().contains("active again"))
    );

    // A correction: an operator credits 10.00 of the plan back, refunded by the processor.
    let credit = "/v1/tenants/acme/invoices/PL-000001/credit-notes";
    app.post(
        credit,
        Some(&admin),
        json!({"amount": 1_000, "reason": "Outage on the 3rd"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    let too_much = app
        .post(
            credit,
            Some(&operator),
            json!({"amount": pro + enterprise, "reason": "all"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_amount")?;
    ensure!(
        too_much.message().contains("`amount`"),
        "{}",
        too_much.message()
    );
    let note = app
        .post(
            credit,
            Some(&operator),
            json!({"amount": 1_000, "reason": "Outage on the 3rd"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let processor_note = sqlx::query_scalar::<_, Option<String>>(
        "SELECT processor_note FROM credit_notes WHERE id = $1",
    )
    .bind(note.body["id"].as_str().context("id")?)
    .fetch_one(app.db().pool())
    .await?
    .context("the processor's credit note")?;
    let at_processor = b
        .double
        .credit_note(&processor_note)
        .context("the double has it")?;
    ensure!(at_processor["total"] == 1_000, "{at_processor}");
    let invoice = app
        .get("/v1/tenants/acme/invoices/PL-000001", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        invoice.body["credited"] == 1_000 && invoice.body["status"] == "paid",
        "{}",
        invoice.body
    );
    ensure!(ledger_support::balance(app, "refunds:USD").await? == 1_000);
    ledger_support::assert_sound(app).await?;

    // Every webhook the processor sent, delivered twice more, changes nothing.
    let before = counts(app).await?;
    for _ in 0..2 {
        let statuses = b.replay_events().await?;
        ensure!(statuses.iter().all(|s| s == "duplicate"), "{statuses:?}");
    }
    ensure!(counts(app).await? == before, "replays changed something");

    // The ledger and the audit log are sound.
    ledger_support::assert_sound(app).await?;
    let audit = app
        .get("/v1/audit/verify", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(audit.body["sound"] == true, "{}", audit.body);
    let platform_revenue = ledger_support::balance(app, "platform_revenue:USD").await?;
    ensure!(
        platform_revenue <= -(pro + enterprise - discount),
        "the plan's part is platform revenue: {platform_revenue}"
    );

    // A downgrade to free is refused while paid plugins are installed, then scheduled.
    let refused = app
        .put(
            "/v1/tenants/acme/billing/plan",
            Some(&admin),
            json!({"plan": "free"}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "downgrade_blocked")?;
    let reasons = refused.body["error"]["details"]["reasons"]
        .as_array()
        .context("reasons")?;
    ensure!(
        reasons.iter().any(|r| r["quota"] == "paid_plugins"),
        "{}",
        refused.body
    );
    for plugin in [&paid, &metered] {
        app.delete(&format!("/v1/tenants/acme/installs/{plugin}"), Some(&admin))
            .await?
            .expect(StatusCode::NO_CONTENT)?;
    }
    let scheduled = app
        .put(
            "/v1/tenants/acme/billing/plan",
            Some(&admin),
            json!({"plan": "free"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        scheduled.body["outcome"] == "downgrade_scheduled"
            && scheduled.body["pending_plan"] == "free",
        "{}",
        scheduled.body
    );
    let report = b.tick(next_month(t1)? + 60 * 60 * 1000).await?;
    ensure!(report.plans_changed == 1, "{report:?}");
    let tenant = app
        .get("/v1/tenants/acme", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(tenant.body["plan"] == "free", "{}", tenant.body);
    ledger_support::assert_sound(app).await?;
    let actions = app.audit_actions(&operator).await?;
    for action in [
        "billing.trial_started",
        "billing.plan_upgraded",
        "invoice.issued",
        "invoice.payment_failed",
        "tenant.suspended",
        "invoice.paid",
        "billing.restored",
        "billing.downgrade_scheduled",
        "billing.plan_downgraded",
    ] {
        ensure!(
            actions.iter().any(|a| a == action),
            "no audit entry {action}: {actions:?}"
        );
    }
    Ok(())
}

/// The thresholds of the quota alerts in tenant `acme`'s inbox.
async fn alerts(app: &common::TestApp, admin: &str) -> Result<Vec<i64>> {
    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(admin))
        .await?
        .expect(StatusCode::OK)?;
    Ok(inbox.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|n| n["kind"] == "quota_alert")
        .map(|n| n["payload"]["threshold"].as_i64().unwrap_or_default())
        .collect())
}

/// 80% and 100% of the month's invocations, each told once (inbox and e-mail).
async fn quota_alerts_come_once_per_threshold_and_month(b: Billing) -> Result<()> {
    let app = &b.app;
    let operator = app.operator().await?;
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"invocations_per_month": 10}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let hello = publish_paid(app, &operator, &dev, "hello", "").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.post(
        "/v1/tenants",
        Some(&admin),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    install(app, &admin, "acme", &hello).await?;
    let key = api_key(app, &admin, "acme").await?;
    for _ in 0..7 {
        ensure!(greet(app, &key, "acme").await?.0 == StatusCode::OK);
    }
    b.flush_usage().await?;
    ensure!(b.tick(now_ms()).await?.alerts == 0, "70% raises nothing");
    ensure!(greet(app, &key, "acme").await?.0 == StatusCode::OK);
    b.flush_usage().await?;
    ensure!(b.tick(now_ms()).await?.alerts == 1);
    ensure!(b.tick(now_ms()).await?.alerts == 0, "once per threshold");
    ensure!(alerts(app, &admin).await? == vec![80]);
    for _ in 0..2 {
        ensure!(greet(app, &key, "acme").await?.0 == StatusCode::OK);
    }
    b.flush_usage().await?;
    ensure!(b.tick(now_ms()).await?.alerts == 1);
    let mut seen = alerts(app, &admin).await?;
    seen.sort_unstable();
    ensure!(seen == vec![80, 100], "{seen:?}");
    let mail = b.mail_to("admin@acme.example");
    ensure!(
        mail.iter()
            .filter(|m| m.text().contains("invocations"))
            .count()
            == 2,
        "{:?}",
        mail.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    // Settled e-mail is pruned by housekeeping; nothing queued goes with it.
    let pruned = plinth_marketplace::billing::outbox::prune(app.db(), now_ms() + 1).await?;
    ensure!(pruned == 2, "{pruned} pruned");
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM email_outbox").await? == 0);
    Ok(())
}

/// Coupons: fields checked by name; expiry, plans and redemption limits enforced; redeeming the
/// held coupon again changes nothing.
async fn coupons_are_checked_and_redeemed_once(b: Billing) -> Result<()> {
    let app = &b.app;
    let operator = app.operator().await?;
    for (body, field) in [
        (
            json!({"code": "X", "percent_off": 10, "duration": "once"}),
            "`code`",
        ),
        (
            json!({"code": "ZERO", "percent_off": 0, "duration": "once"}),
            "`percent_off`",
        ),
        (
            json!({"code": "BOTH", "percent_off": 10, "amount_off": 100, "currency": "USD", "duration": "once"}),
            "`percent_off`",
        ),
        (
            json!({"code": "REP", "percent_off": 10, "duration": "repeating"}),
            "`duration_months`",
        ),
        (
            json!({"code": "NOCUR", "amount_off": 100, "duration": "once"}),
            "`currency`",
        ),
        (
            json!({"code": "PLAN", "percent_off": 10, "duration": "once", "plans": ["gold"]}),
            "`plans`",
        ),
    ] {
        let refused = app
            .post("/v1/billing/coupons", Some(&operator), body)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_coupon")?;
        ensure!(
            refused.message().contains(field),
            "{field}: {}",
            refused.message()
        );
    }
    app.post("/v1/billing/coupons", Some(&operator), json!({"code": "ONCE", "amount_off": 500, "currency": "USD", "duration": "once", "max_redemptions": 1, "plans": ["pro"]}))
        .await?.expect(StatusCode::CREATED)?;
    app.post(
        "/v1/billing/coupons",
        Some(&operator),
        json!({"code": "ONCE", "percent_off": 5, "duration": "once"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "coupon_exists")?;
    app.post("/v1/billing/coupons", Some(&operator), json!({"code": "OLD", "percent_off": 5, "duration": "forever", "expires_at": "2020-01-01T00:00:00Z"}))
        .await?.expect(StatusCode::CREATED)?;
    let (_, admin) = app.user("admin@acme.example").await?;
    let (_, other) = app.user("admin@other.example").await?;
    app.post(
        "/v1/billing/coupons",
        Some(&admin),
        json!({"code": "MINE", "percent_off": 5, "duration": "once"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    for (token, slug) in [(&admin, "acme"), (&other, "other")] {
        app.post(
            "/v1/tenants",
            Some(token),
            json!({"slug": slug, "name": slug}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        app.put(
            &format!("/v1/tenants/{slug}/billing/payment-method"),
            Some(token),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    app.get("/v1/coupons/ONCE?plan=enterprise", Some(&admin))
        .await?
        .expect_error(StatusCode::CONFLICT, "coupon_not_for_plan")?;
    app.get("/v1/coupons/OLD?plan=pro", Some(&admin))
        .await?
        .expect_error(StatusCode::CONFLICT, "coupon_expired")?;
    let shown = app
        .get("/v1/coupons/once?plan=pro", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        shown.body["description"] == "5.00 USD off the plan on the next invoice",
        "{}",
        shown.body
    );
    app.put(
        "/v1/tenants/acme/billing/plan",
        Some(&admin),
        json!({"plan": "pro", "coupon": "OLD"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "coupon_expired")?;
    let tenant = app
        .get("/v1/tenants/acme", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        tenant.body["plan"] == "free",
        "a refused coupon changes nothing: {}",
        tenant.body
    );
    app.put(
        "/v1/tenants/acme/billing/plan",
        Some(&admin),
        json!({"plan": "pro", "coupon": "ONCE"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    // The held coupon again: nothing new.
    app.put(
        "/v1/tenants/acme/billing/plan",
        Some(&admin),
        json!({"plan": "pro", "coupon": "ONCE"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let coupons = app
        .get("/v1/billing/coupons", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    let once = coupons.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|c| c["code"] == "ONCE")
        .context("ONCE")?;
    ensure!(once["redemptions"] == 1, "{once}");
    app.put(
        "/v1/tenants/other/billing/plan",
        Some(&other),
        json!({"plan": "pro", "coupon": "ONCE"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "coupon_exhausted")?;
    // Upgrading without a payment method is refused, naming what is missing.
    let (_, third) = app.user("admin@third.example").await?;
    app.post(
        "/v1/tenants",
        Some(&third),
        json!({"slug": "third", "name": "third"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.put(
        "/v1/tenants/third/billing/plan",
        Some(&third),
        json!({"plan": "pro"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "payment_method_required")?;
    let count = scalar(app, "SELECT COUNT(*) AS n FROM coupon_redemptions").await?;
    ensure!(count == 1, "{count} redemptions");
    Ok(())
}

/// Operators suspend and lift (audited); tenants' own admins cannot; a suspended tenant's events
/// answer 402 and its data stays.
async fn operators_suspend_and_lift_and_tenants_cannot(b: Billing) -> Result<()> {
    let app = &b.app;
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let hello = publish_paid(app, &operator, &dev, "hello", "").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.post(
        "/v1/tenants",
        Some(&admin),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    install(app, &admin, "acme", &hello).await?;
    let key = api_key(app, &admin, "acme").await?;
    app.put(
        "/v1/tenants/acme/suspension",
        Some(&admin),
        json!({"reason": "no"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.put(
        "/v1/tenants/acme/suspension",
        Some(&operator),
        json!({"reason": "Abuse report 42"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.put(
        "/v1/tenants/acme/suspension",
        Some(&operator),
        json!({"reason": "again"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "already_suspended")?;
    let (status, body) = greet(app, &key, "acme").await?;
    ensure!(
        status == StatusCode::PAYMENT_REQUIRED
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("operator")),
        "{status} {body}"
    );
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["suspended"]
            .as_str()
            .is_some_and(|s| s.contains("operator")),
        "{seen}"
    );
    app.delete("/v1/tenants/acme/suspension", Some(&admin))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.delete("/v1/tenants/acme/suspension", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(greet(app, &key, "acme").await?.0 == StatusCode::OK);
    let actions = app.audit_actions(&operator).await?;
    ensure!(
        actions.iter().any(|a| a == "tenant.suspended")
            && actions.iter().any(|a| a == "tenant.unsuspended"),
        "{actions:?}"
    );
    Ok(())
}

/// A trial is announced ending once, then ends: without a card the tenant is back on free.
async fn trials_warn_then_end_without_a_card(b: Billing) -> Result<()> {
    let app = &b.app;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.post(
        "/v1/tenants",
        Some(&admin),
        json!({"slug": "acme", "name": "Acme"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        "/v1/tenants/acme/billing/trial",
        Some(&admin),
        json!({"plan": "free"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "no_trial")?;
    app.post(
        "/v1/tenants/acme/billing/trial",
        Some(&admin),
        json!({"plan": "pro"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let start = now_ms();
    ensure!(
        b.tick(start + 10 * DAY_MS).await?.trials_warned == 0,
        "not yet: 4 days left"
    );
    ensure!(b.tick(start + 12 * DAY_MS).await?.trials_warned == 1);
    ensure!(
        b.tick(start + 12 * DAY_MS + 1).await?.trials_warned == 0,
        "once"
    );
    let warned = b.mail_to("admin@acme.example");
    ensure!(
        warned.iter().any(|m| m.subject().contains("trial")),
        "{:?}",
        warned.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    let report = b.tick(start + 15 * DAY_MS).await?;
    ensure!(report.trials_ended == 1, "{report:?}");
    let tenant = app
        .get("/v1/tenants/acme", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(tenant.body["plan"] == "free", "{}", tenant.body);
    let seen = overview(app, &admin).await?;
    ensure!(
        seen["status"] == "free" && seen["trial_available"] == false,
        "{seen}"
    );
    // Nothing to invoice: the trial was free.
    let report = b.tick(next_month(start + 15 * DAY_MS)? + 60_000).await?;
    let list = app
        .get("/v1/tenants/acme/invoices", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        list.body["items"].as_array().is_some_and(Vec::is_empty),
        "{report:?} {}",
        list.body
    );
    Ok(())
}

/// A plugin priced in another currency than the plan is billed on an invoice of its own, not
/// left out; both are paid and posted.
async fn each_currency_is_invoiced_on_its_own(b: Billing) -> Result<()> {
    let app = &b.app;
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let euro = publish_paid(
        app,
        &operator,
        &dev,
        "euro",
        "\n[pricing]\nmodel = \"monthly\"\namount = 800\ncurrency = \"EUR\"",
    )
    .await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    let made = app
        .post(
            "/v1/tenants",
            Some(&admin),
            json!({"slug": "acme", "name": "Acme"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let tenant_id = made.body["id"].as_str().context("id")?.to_owned();
    app.put(
        "/v1/tenants/acme/billing/payment-method",
        Some(&admin),
        json!({"payment_method": "pm_card_visa"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.put(
        "/v1/tenants/acme/billing/plan",
        Some(&admin),
        json!({"plan": "pro"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    install(app, &admin, "acme", &euro).await?;
    let start = plinth_marketplace::month::of(now_ms())?.start_ms;
    for sql in [
        "UPDATE plan_periods SET starts_at = $1 WHERE tenant_id = $2 AND plan = 'pro'",
        "UPDATE ledger_subscriptions SET started_at = $1 WHERE tenant_id = $2",
    ] {
        sqlx::query(sql)
            .bind(start)
            .bind(&tenant_id)
            .execute(app.db().pool())
            .await?;
    }
    let report = b.tick(next_month(now_ms())? + 60_000).await?;
    ensure!(report.invoices == 2, "{report:?}");
    let list = app
        .get("/v1/tenants/acme/invoices", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    let mut seen: Vec<(String, i64, String)> = list.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|i| {
            (
                i["currency"].as_str().unwrap_or_default().to_owned(),
                i["total"].as_i64().unwrap_or_default(),
                i["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    ensure!(
        seen == vec![
            ("EUR".to_owned(), 800, "paid".to_owned()),
            ("USD".to_owned(), 2_900, "paid".to_owned())
        ],
        "{seen:?}"
    );
    ensure!(ledger_support::balance(app, "platform_revenue:USD").await? == -2_900);
    ledger_support::assert_sound(app).await?;
    Ok(())
}
