//! Processor events before what they concern (finding 2 of issue 18): they wait, stored, and
//! are applied in the processor's order when it arrives; what never arrives is reported.

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use crate::ledger_support::{
    Ledger, assert_sound, balance, charge_refunded, deliver, dispute, end_holds, invoice_paid,
    scalar, subscribed,
};
use crate::on_both_backends_ledger;

on_both_backends_ledger!(without_host:
    a_refund_before_its_payment_waits_and_applies,
    a_dispute_closed_before_it_opened_applies_after_the_opening,
    what_never_arrives_is_reported_to_operators,
    stored_events_are_listed_for_operators_only,
);

/// The status of stored event `id`.
async fn status(ledger: &Ledger, id: &str) -> Result<String> {
    Ok(
        sqlx::query("SELECT status FROM billing_events WHERE id = $1")
            .bind(id)
            .fetch_one(ledger.app.db().pool())
            .await?
            .try_get("status")?,
    )
}

/// What all publishers have frozen.
async fn frozen(ledger: &Ledger) -> Result<i64> {
    scalar(
        &ledger.app,
        "SELECT COALESCE(CAST(SUM(balance) AS BIGINT), 0) AS n FROM ledger_accounts \
         WHERE kind = 'publisher_frozen'",
    )
    .await
}

/// The issue's case: a refund before its payment was lost for good. Now it waits (202), its
/// redelivery is tried again rather than answered `duplicate`, and the payment applies it.
async fn a_refund_before_its_payment_waits_and_applies(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    let refund = charge_refunded("evt_r", "ch_1", 3_000);
    let waiting = deliver(app, &refund).await?.expect(StatusCode::ACCEPTED)?;
    ensure!(waiting.body["status"] == "pending", "{}", waiting.body);
    let again = deliver(app, &refund).await?.expect(StatusCode::ACCEPTED)?;
    ensure!(again.body["status"] == "pending", "{}", again.body);
    deliver(
        app,
        &invoice_paid("evt_p", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(status(&ledger, "evt_r").await? == "applied");
    let duplicate = deliver(app, &refund).await?.expect(StatusCode::OK)?;
    ensure!(
        duplicate.body["status"] == "duplicate",
        "{}",
        duplicate.body
    );
    // 100.00 paid less the 0.30 fee, 30.00 refunded.
    ensure!(balance(app, "processor_clearing:USD").await? == 6_970);
    // After the hold the publisher is paid what is left: 9220 − (3000 − floor(750 × 0.3)).
    end_holds(app).await?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "r"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(run.body["payouts"][0]["amount"] == 6_445, "{}", run.body);
    assert_sound(app).await
}

/// A dispute closed (lost) before it was opened waits for its opening, then both apply, in
/// that order; a refund reported while another charge's dispute is open waits for it to close.
/// Nothing stays frozen, and the payout is what is left.
async fn a_dispute_closed_before_it_opened_applies_after_the_opening(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    for (event, invoice, charge) in [("evt_a", "in_a", "ch_a"), ("evt_b", "in_b", "ch_b")] {
        deliver(
            app,
            &invoice_paid(event, invoice, &subscription, 10_000, charge),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    let closed = dispute(
        "evt_c",
        "charge.dispute.closed",
        "dp_a",
        "ch_a",
        4_000,
        "lost",
    );
    deliver(app, &closed).await?.expect(StatusCode::ACCEPTED)?;
    deliver(
        app,
        &dispute(
            "evt_o",
            "charge.dispute.created",
            "dp_a",
            "ch_a",
            4_000,
            "needs_response",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(status(&ledger, "evt_c").await? == "applied");
    let row = sqlx::query(
        "SELECT d.status, c.charged_back FROM ledger_disputes d \
         JOIN ledger_charges c ON c.id = d.charge_id WHERE d.id = 'dp_a'",
    )
    .fetch_one(app.db().pool())
    .await?;
    ensure!(row.try_get::<String, _>("status")? == "lost");
    ensure!(row.try_get::<i64, _>("charged_back")? == 4_000);
    ensure!(frozen(&ledger).await? == 0);

    // ch_b: a dispute opens; a refund created before it arrives after it and waits; the
    // dispute is won and the refund applies.
    deliver(
        app,
        &dispute(
            "evt_bo",
            "charge.dispute.created",
            "dp_b",
            "ch_b",
            10_000,
            "needs_response",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(app, &charge_refunded("evt_br", "ch_b", 2_000))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    deliver(
        app,
        &dispute(
            "evt_bc",
            "charge.dispute.closed",
            "dp_b",
            "ch_b",
            10_000,
            "won",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(status(&ledger, "evt_br").await? == "applied");
    ensure!(frozen(&ledger).await? == 0);
    // ch_a: 9220 less the publisher's part of 40.00 lost (4000 − floor(750 × 0.4) = 3700);
    // ch_b (15% throughout): 8470 less 2000 − floor(1500 × 0.2) = 1700.
    end_holds(app).await?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "r"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        run.body["payouts"][0]["amount"] == (9_220 - 3_700) + (8_470 - 1_700),
        "{}",
        run.body
    );
    assert_sound(app).await
}

/// Events whose object never arrives are retried by reconciliation, reported unmatched after the
/// deadline — once, in the operators' inbox, the audit log and the list — and still applied if
/// their object arrives after all.
async fn what_never_arrives_is_reported_to_operators(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(app, &charge_refunded("evt_late", "ch_late", 1_000))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    deliver(
        app,
        &invoice_paid("evt_orphan", "in_orphan", "sub_nobody", 500, "ch_orphan"),
    )
    .await?
    .expect(StatusCode::ACCEPTED)?;
    let report = app
        .post("/v1/billing/reconcile", Some(&w.operator), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        report.body["pending"] == 2 && report.body["reported"] == 0,
        "{}",
        report.body
    );
    // Three days and a minute later, as far as the events are concerned.
    sqlx::query("UPDATE billing_events SET received_at = received_at - $1")
        .bind(3 * plinth_marketplace::clock::DAY_MS + 60_000)
        .execute(app.db().pool())
        .await?;
    let report = app
        .post("/v1/billing/reconcile", Some(&w.operator), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        report.body["pending"] == 0
            && report.body["reported"] == 2
            && report.body["unmatched"]
                .as_array()
                .is_some_and(|u| u.len() == 2),
        "{}",
        report.body
    );
    let inbox = app
        .get("/v1/operator/notifications", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    let unmatched: Vec<_> = inbox.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|n| n["kind"] == "billing_event_unmatched")
        .collect();
    ensure!(unmatched.len() == 2, "{}", inbox.body);
    ensure!(
        scalar(
            app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'billing.event_unmatched'"
        )
        .await?
            == 2
    );
    // Reported once.
    let again = app
        .post("/v1/billing/reconcile", Some(&w.operator), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(again.body["reported"] == 0, "{}", again.body);
    // The charge arrives after all: the unmatched refund is applied with it.
    deliver(
        app,
        &invoice_paid("evt_pay", "in_late", &subscription, 10_000, "ch_late"),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(status(&ledger, "evt_late").await? == "applied");
    ensure!(balance(app, "processor_clearing:USD").await? == 10_000 - 30 - 1_000);
    assert_sound(app).await
}

async fn stored_events_are_listed_for_operators_only(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, _) = subscribed(&ledger).await?;
    deliver(app, &charge_refunded("evt_1", "ch_1", 1_000))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let listed = app
        .get("/v1/billing/events?status=pending", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    let items = listed.body["items"].as_array().context("items")?;
    ensure!(
        items.len() == 1
            && items[0]["id"] == "evt_1"
            && items[0]["type"] == "charge.refunded"
            && items[0]["charge"] == "ch_1",
        "{}",
        listed.body
    );
    app.get("/v1/billing/events?status=lost", Some(&w.operator))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    app.get("/v1/billing/events?limit=0", Some(&w.operator))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    for token in [&w.dev.token, &w.admin] {
        app.get("/v1/billing/events", Some(token))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
        app.post("/v1/billing/reconcile", Some(token), json!({}))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
        app.get("/v1/operator/notifications", Some(token))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
    }
    Ok(())
}
