//! The revenue-share ledger over HTTP, on both backends: a paid install to a payout end to end,
//! the webhook's signature checks, duplicates and reconciliation, refunds, disputes, payout
//! runs retried after a crash, usage statements, statements' privacy, and `verify`; and in
//! [`ledger_cases`], money under concurrency, disorder and tampering.

mod common;
mod ledger_cases;
mod ledger_support;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::audit::Actor;
use plinth_marketplace::ledger::payouts;
use plinth_package::PricingModel;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use ledger_support::{
    Ledger, SECRET, assert_sound, charge_refunded, deliver, deliver_signed, dispute, end_holds,
    invoice_paid, now_secs, pricing, publish_paid, scalar, send, subscribe, subscribed, this_month,
    transactions, world,
};
use publishing::developer;

on_both_backends_ledger!(with_host: paid_install_to_payout_end_to_end);
on_both_backends!(the_webhook_answers_503_without_a_secret);
on_both_backends_ledger!(without_host:
    bad_signatures_and_stale_timestamps_post_nothing,
    the_same_event_five_times_at_once_posts_once,
    unknown_subscriptions_are_kept_for_reconciliation,
    a_refund_larger_than_the_charge_is_refused,
    a_dispute_freezes_the_publishers_part_until_closed,
    a_payout_run_retried_after_a_crash_pays_each_publisher_once,
    usage_is_billed_once_per_tenant_plugin_and_month,
    statements_are_private_and_checked,
    payouts_and_reports_are_for_operators,
    verify_names_the_first_broken_invariant,
);

/// A server started without `--billing-webhook-secret` takes no events.
async fn the_webhook_answers_503_without_a_secret(app: common::TestApp) -> Result<()> {
    let event = invoice_paid("evt_1", "in_1", "sub_1", 100, "ch_1");
    ledger_support::deliver_signed(&app, &event, SECRET, now_secs())
        .await?
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "billing_not_configured")?;
    ensure!(scalar(&app, "SELECT COUNT(*) AS n FROM billing_events").await? == 0);
    Ok(())
}

/// The Done-when journey: a paid plugin installed, a signed `invoice.paid`, the split on the
/// statement, a partial refund reversed proportionally, nothing paid inside the hold, one
/// payout file line after it, the payout marked paid, and the ledger sound.
async fn paid_install_to_payout_end_to_end(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let w = world(app).await?;
    let shown = app
        .get(&format!("/v1/plugins/{}/versions/0.1.0", w.plugin), None)
        .await?
        .expect(StatusCode::OK)?;
    let digest = shown.body["permissions_digest"]
        .as_str()
        .context("digest")?;
    app.post(
        "/v1/tenants/acme/installs",
        Some(&w.admin),
        json!({"plugin": w.plugin, "permissions_digest": digest, "config": {}}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let subscriptions = app
        .get("/v1/tenants/acme/subscriptions", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    let items = subscriptions.body["items"].as_array().context("items")?;
    ensure!(items.len() == 1, "one subscription: {}", subscriptions.body);
    ensure!(items[0]["status"] == "active" && items[0]["amount"] == 10_000);
    let subscription = items[0]["id"].as_str().context("id")?.to_owned();

    // 100.00 paid: the first 50.00 of lifetime gross at 0%, the rest at 15% → platform 7.50;
    // the publisher bears the 0.30 fee.
    let paid = deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?;
    let paid = paid.expect(StatusCode::OK)?;
    ensure!(paid.body["status"] == "applied", "{}", paid.body);

    let month = this_month()?;
    let path = format!("/v1/publishers/labs/statements?month={month}");
    let statement = app
        .get(&path, Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        statement.body["currencies"]
            .as_array()
            .is_some_and(|c| c.len() == 1),
        "{}",
        statement.body
    );
    let usd = &statement.body["currencies"][0];
    let line = &usd["plugins"][0];
    ensure!(
        usd["currency"] == "USD" && line["plugin"] == "labs.paid",
        "{}",
        statement.body
    );
    ensure!(
        line["gross"] == 10_000
            && line["platform_share"] == 750
            && line["fees"] == 30
            && line["net"] == 9_220,
        "the split: {line}"
    );
    ensure!(usd["closing_balance"] == 9_220 && usd["held"] == 9_220 && usd["available"] == 0);

    // A partial refund of 25.00 reverses 25% of each part: floor(750 × 2500 / 10000) = 187
    // from the platform, 2313 from the publisher.
    deliver(app, &charge_refunded("evt_2", "ch_1", 2_500))
        .await?
        .expect(StatusCode::OK)?;
    let statement = app
        .get(&path, Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let usd = &statement.body["currencies"][0];
    let line = &usd["plugins"][0];
    ensure!(
        line["refunds"] == 2_500 && line["refunds_platform"] == 187 && line["net"] == 6_907,
        "after the refund: {line}"
    );
    ensure!(usd["closing_balance"] == 6_907 && usd["held"] == 6_907);
    let csv = app
        .get(&format!("{path}&format=csv"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let csv = String::from_utf8(csv.bytes)?;
    ensure!(
        csv.lines().nth(1).is_some_and(|l| l.starts_with(&format!(
            "{month},USD,labs.paid,10000,750,30,2500,187,6907,0,6907,6907,0,0,0,0"
        ))),
        "{csv}"
    );

    // Inside the hold nothing is paid.
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "early"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        run.body["payouts"].as_array().is_some_and(Vec::is_empty),
        "{}",
        run.body
    );

    // After it, one publisher, one line.
    end_holds(app).await?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "2026-11-a"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let payouts = run.body["payouts"].as_array().context("payouts")?;
    ensure!(
        payouts.len() == 1 && payouts[0]["amount"] == 6_907,
        "{}",
        run.body
    );
    let payout_id = payouts[0]["id"].as_str().context("payout id")?.to_owned();
    let file = std::fs::read_to_string(ledger.files.path().join("payouts/2026-11-a.csv"))?;
    let lines: Vec<&str> = file.lines().collect();
    ensure!(lines.len() == 2, "header and one line: {file}");
    ensure!(
        lines[1].ends_with(",labs,6907,USD,plinth-2026-11-a-labs-USD"),
        "{file}"
    );
    let json_file: serde_json::Value = serde_json::from_slice(&std::fs::read(
        ledger.files.path().join("payouts/2026-11-a.json"),
    )?)?;
    ensure!(
        json_file["payouts"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    );

    let statement = app
        .get(&path, Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let usd = &statement.body["currencies"][0];
    ensure!(
        usd["closing_balance"] == 0 && usd["in_transit"] == 6_907 && usd["paid_out"] == 6_907,
        "{usd}"
    );
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "payout_sent")),
        "{}",
        inbox.body
    );
    let audit = app
        .get("/v1/audit?action=payout.created", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(audit.body["items"].as_array().is_some_and(|i| i.len() == 1));
    let audit = app
        .get("/v1/audit?action=ledger.refunded", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(audit.body["items"].as_array().is_some_and(|i| i.len() == 1));

    // Settled: paid once; paid again changes nothing; failed after paid is refused.
    let marked = app
        .post(
            &format!("/v1/payouts/{payout_id}/paid"),
            Some(&w.operator),
            json!({}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(marked.body["status"] == "paid");
    let before = transactions(app).await?;
    app.post(
        &format!("/v1/payouts/{payout_id}/paid"),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(transactions(app).await? == before);
    app.post(
        &format!("/v1/payouts/{payout_id}/failed"),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "payout_settled")?;

    let revenue = app
        .get(
            &format!("/v1/ledger/revenue?month={month}"),
            Some(&w.operator),
        )
        .await?
        .expect(StatusCode::OK)?;
    let usd = &revenue.body["currencies"][0];
    ensure!(
        usd["gross"] == 10_000
            && usd["platform_revenue"] == 780
            && usd["refunds"] == 187
            && usd["fees"] == 30
            && usd["net"] == 563
            && usd["publishers_owed"] == 0
            && usd["paid_out"] == 6_907,
        "{usd}"
    );
    let verified = app
        .get("/v1/ledger/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(verified.body["sound"] == true, "{}", verified.body);

    // Uninstalling ends the subscription.
    app.delete(
        &format!("/v1/tenants/acme/installs/{}", w.plugin),
        Some(&w.admin),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    let subscriptions = app
        .get("/v1/tenants/acme/subscriptions", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(subscriptions.body["items"][0]["status"] == "ended");
    assert_sound(app).await
}

async fn nothing_stored(ledger: &Ledger) -> Result<()> {
    let app = &ledger.app;
    ensure!(transactions(app).await? == 0, "a transaction was posted");
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM billing_events").await? == 0);
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM ledger_charges").await? == 0);
    Ok(())
}

async fn bad_signatures_and_stale_timestamps_post_nothing(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (_, subscription) = subscribed(&ledger).await?;
    let event = invoice_paid("evt_sig", "in_sig", &subscription, 10_000, "ch_sig");
    let payload = serde_json::to_vec(&event)?;

    deliver_signed(app, &event, "whsec_wrong", now_secs())
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    send(app, payload.clone(), None)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "missing_signature")?;
    send(app, payload.clone(), Some("v1=abcd"))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_signature_header")?;
    // A body changed after signing.
    let signed =
        plinth_marketplace::ledger::webhook::signature_header(SECRET, now_secs(), &payload)?;
    let mut tampered = event.clone();
    tampered["data"]["object"]["amount_paid"] = json!(1_000_000);
    send(app, serde_json::to_vec(&tampered)?, Some(&signed))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    // A genuine delivery captured and replayed after the 5-minute tolerance.
    let captured =
        plinth_marketplace::ledger::webhook::signature_header(SECRET, now_secs() - 301, &payload)?;
    send(app, payload.clone(), Some(&captured))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "signature_expired")?;
    // A timestamp in the future is as stale.
    deliver_signed(app, &event, SECRET, now_secs() + 600)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "signature_expired")?;
    nothing_stored(&ledger).await?;

    // The same delivery signed now is taken once; its replay within the window changes nothing.
    let fresh =
        plinth_marketplace::ledger::webhook::signature_header(SECRET, now_secs(), &payload)?;
    let first = send(app, payload.clone(), Some(&fresh))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(first.body["status"] == "applied");
    let posted = transactions(app).await?;
    let replay = send(app, payload, Some(&fresh))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(replay.body["status"] == "duplicate", "{}", replay.body);
    ensure!(transactions(app).await? == posted);

    // Malformed events are named by field.
    let mut bad = invoice_paid("evt_bad", "in_bad", &subscription, 10_000, "ch_bad");
    bad["data"]["object"]["amount_paid"] = json!("lots");
    let reply = deliver(app, &bad)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_event")?;
    ensure!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("amount_paid"))
    );
    assert_sound(app).await
}

async fn the_same_event_five_times_at_once_posts_once(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (_, subscription) = subscribed(&ledger).await?;
    let event = invoice_paid("evt_dup", "in_dup", &subscription, 10_000, "ch_dup");
    let replies = tokio::join!(
        deliver(app, &event),
        deliver(app, &event),
        deliver(app, &event),
        deliver(app, &event),
        deliver(app, &event),
    );
    let mut applied = 0;
    for reply in [replies.0, replies.1, replies.2, replies.3, replies.4] {
        let reply = reply?.expect(StatusCode::OK)?;
        match reply.body["status"].as_str() {
            Some("applied") => applied += 1,
            Some("duplicate") => {}
            other => anyhow::bail!("unexpected status {other:?}"),
        }
    }
    ensure!(applied == 1, "{applied} deliveries applied");
    ensure!(
        scalar(
            app,
            "SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'charge'"
        )
        .await?
            == 1
    );
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM billing_events").await? == 1);
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM ledger_charges").await? == 1);
    assert_sound(app).await
}

async fn unknown_subscriptions_are_kept_for_reconciliation(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    world(app).await?;
    // An invoice of a subscription not known waits for it (202), stored.
    let reply = deliver(
        app,
        &invoice_paid("evt_x", "in_x", "sub_unknown", 500, "ch_x"),
    )
    .await?
    .expect(StatusCode::ACCEPTED)?;
    ensure!(reply.body["status"] == "pending", "{}", reply.body);
    let stored = sqlx::query("SELECT status, payload FROM billing_events WHERE id = 'evt_x'")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(stored.try_get::<String, _>("status")? == "pending");
    ensure!(
        stored
            .try_get::<String, _>("payload")?
            .contains("sub_unknown")
    );
    let refund = deliver(app, &charge_refunded("evt_y", "ch_unknown", 100))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    ensure!(refund.body["status"] == "pending");
    // One that names no subscription can never match: stored unmatched at once.
    let mut nameless = invoice_paid("evt_n", "in_n", "x", 500, "ch_n");
    nameless["data"]["object"]["subscription"] = serde_json::Value::Null;
    let reply = deliver(app, &nameless).await?.expect(StatusCode::OK)?;
    ensure!(reply.body["status"] == "unmatched", "{}", reply.body);
    let other = json!({"id": "evt_z", "type": "customer.created", "created": now_secs(),
                       "data": {"object": {"id": "cus_1"}}});
    let ignored = deliver(app, &other).await?.expect(StatusCode::OK)?;
    ensure!(ignored.body["status"] == "ignored");
    ensure!(transactions(app).await? == 0);
    Ok(())
}

async fn a_refund_larger_than_the_charge_is_refused(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (_, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_p", "in_p", &subscription, 10_000, "ch_p"),
    )
    .await?
    .expect(StatusCode::OK)?;
    let posted = transactions(app).await?;
    deliver(app, &charge_refunded("evt_r1", "ch_p", 10_001))
        .await?
        .expect_error(StatusCode::CONFLICT, "refund_exceeds_charge")?;
    ensure!(transactions(app).await? == posted, "nothing posted");
    ensure!(
        scalar(
            app,
            "SELECT COUNT(*) AS n FROM billing_events WHERE id = 'evt_r1'"
        )
        .await?
            == 0
    );

    // Two partial refunds then the rest: the reversals sum to each part exactly.
    for (event, total) in [("evt_r2", 3_333), ("evt_r3", 6_666), ("evt_r4", 10_000)] {
        deliver(app, &charge_refunded(event, "ch_p", total))
            .await?
            .expect(StatusCode::OK)?;
    }
    // An older event arriving late changes nothing.
    let late = deliver(app, &charge_refunded("evt_r5", "ch_p", 3_333))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        late.body["note"]
            .as_str()
            .is_some_and(|n| n.contains("nothing new"))
    );
    let charge = sqlx::query(
        "SELECT refunded, reversed_platform, platform_share FROM ledger_charges WHERE reference = 'in_p'",
    )
    .fetch_one(app.db().pool())
    .await?;
    ensure!(charge.try_get::<i64, _>("refunded")? == 10_000);
    ensure!(
        charge.try_get::<i64, _>("reversed_platform")?
            == charge.try_get::<i64, _>("platform_share")?
    );
    // The publisher is left owing only the fee it bore.
    ensure!(
        scalar(
            app,
            "SELECT balance AS n FROM ledger_accounts WHERE kind = 'publisher_held'"
        )
        .await?
            == 30
    );
    deliver(app, &charge_refunded("evt_r6", "ch_p", 10_001))
        .await?
        .expect_error(StatusCode::CONFLICT, "refund_exceeds_charge")?;
    assert_sound(app).await
}

async fn a_dispute_freezes_the_publishers_part_until_closed(ledger: Ledger) -> Result<()> {
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
    deliver(
        app,
        &dispute(
            "evt_d1",
            "charge.dispute.created",
            "dp_1",
            "ch_a",
            10_000,
            "needs_response",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    // ch_a: platform 750, publisher 9250 − 30 fee = 9220 frozen.
    ensure!(
        scalar(
            app,
            "SELECT -balance AS n FROM ledger_accounts WHERE kind = 'publisher_frozen'"
        )
        .await?
            == 9_220
    );
    // A refund reported while the dispute is open waits for it to close.
    let waiting = deliver(app, &charge_refunded("evt_d2", "ch_a", 100))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    ensure!(waiting.body["status"] == "pending", "{}", waiting.body);
    // After the hold only the undisputed charge is paid.
    end_holds(app).await?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "d-1"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    // ch_b: 10000 at 15% (lifetime above 50.00) = 1500 platform, 8500 − 30 = 8470.
    ensure!(run.body["payouts"][0]["amount"] == 8_470, "{}", run.body);
    // Won: the frozen part returns, the waiting refund of 1.00 is applied (floor(750 × 100 /
    // 10000) = 7 from the platform, 93 from the publisher), and the rest is paid next time.
    deliver(
        app,
        &dispute(
            "evt_d3",
            "charge.dispute.closed",
            "dp_1",
            "ch_a",
            10_000,
            "won",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "d-2"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(run.body["payouts"][0]["amount"] == 9_127, "{}", run.body);
    ensure!(
        scalar(
            app,
            "SELECT COUNT(*) AS n FROM billing_events WHERE id = 'evt_d2' AND status = 'applied'"
        )
        .await?
            == 1
    );

    // Lost: a third charge, disputed and lost, is reversed like a full refund.
    deliver(
        app,
        &invoice_paid("evt_c", "in_c", &subscription, 10_000, "ch_c"),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(
        app,
        &dispute(
            "evt_d4",
            "charge.dispute.created",
            "dp_2",
            "ch_c",
            10_000,
            "needs_response",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(
        app,
        &dispute(
            "evt_d5",
            "charge.dispute.closed",
            "dp_2",
            "ch_c",
            10_000,
            "lost",
        ),
    )
    .await?
    .expect(StatusCode::OK)?;
    let charge = sqlx::query("SELECT charged_back FROM ledger_charges WHERE reference = 'in_c'")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(charge.try_get::<i64, _>("charged_back")? == 10_000);
    ensure!(
        scalar(
            app,
            "SELECT balance AS n FROM ledger_accounts WHERE kind = 'publisher_frozen'"
        )
        .await?
            == 0
    );
    assert_sound(app).await
}

async fn a_payout_run_retried_after_a_crash_pays_each_publisher_once(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    let other = developer(app, "dev@tools.example", "tools").await?;
    let tools_plugin = publish_paid(
        app,
        &w.operator,
        &other,
        "paid",
        &ledger_support::monthly(4_000),
    )
    .await?;
    let tools_subscription = subscribe(
        app,
        &w.tenant_id,
        &tools_plugin,
        &pricing(PricingModel::Monthly, 4_000)?,
    )
    .await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(
        app,
        &invoice_paid("evt_2", "in_2", &tools_subscription, 4_000, "ch_2"),
    )
    .await?
    .expect(StatusCode::OK)?;
    end_holds(app).await?;

    // The run crashes after paying the first publisher: no file, not finished.
    let settings = &app.state.settings().ledger;
    let operator = Actor::System;
    ensure!(!payouts::start_run(app.db(), "crashy").await?);
    plinth_marketplace::ledger::charges::release_due(app.db(), plinth_marketplace::clock::now_ms())
        .await?;
    let eligible = payouts::eligible(app.db(), settings.payout_threshold).await?;
    ensure!(eligible.len() == 2, "{eligible:?}");
    let (publisher, currency) = &eligible[0];
    let first = payouts::pay(app.db(), settings, "crashy", publisher, currency, &operator)
        .await?
        .context("paid")?;
    ensure!(!ledger.files.path().join("payouts/crashy.csv").exists());

    // The operator retries the run: the rest is paid, nobody twice.
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "crashy"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let paid = run.body["payouts"].as_array().context("payouts")?;
    ensure!(paid.len() == 2, "{}", run.body);
    ensure!(paid.iter().any(|p| p["id"] == first.id.as_str()));
    let amounts: Vec<i64> = paid.iter().filter_map(|p| p["amount"].as_i64()).collect();
    ensure!(
        amounts.contains(&9_220) && amounts.contains(&3_970),
        "{amounts:?}"
    );
    let file = std::fs::read_to_string(ledger.files.path().join("payouts/crashy.csv"))?;
    ensure!(file.lines().count() == 3, "{file}");
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM payouts").await? == 2);

    // Again, and under a new run id: nothing more.
    let posted = transactions(app).await?;
    let again = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "crashy"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        again.body["payouts"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    );
    let next = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "next"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(next.body["payouts"].as_array().is_some_and(Vec::is_empty));
    ensure!(transactions(app).await? == posted);
    // Paying the same publisher in the crashed run again answers the first payout.
    let repeat = payouts::pay(app.db(), settings, "crashy", publisher, currency, &operator)
        .await?
        .context("the first payout")?;
    ensure!(repeat.id == first.id);
    ensure!(transactions(app).await? == posted);

    // A failed payout returns the money; the next run pays it again.
    app.post(
        &format!("/v1/payouts/{}/failed", first.id),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let retry = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "retry"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        retry.body["payouts"][0]["amount"] == first.amount,
        "{}",
        retry.body
    );
    assert_sound(app).await
}

async fn usage_is_billed_once_per_tenant_plugin_and_month(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let w = world(app).await?;
    let metered = publish_paid(
        app,
        &w.operator,
        &w.dev,
        "metered",
        "\n[pricing]\nmodel = \"per-1000-invocations\"\namount = 50\ncurrency = \"USD\"",
    )
    .await?;
    subscribe(
        app,
        &w.tenant_id,
        &metered,
        &pricing(PricingModel::Per1000Invocations, 50)?,
    )
    .await?;
    // Metered last month (backdate the subscription into it), 123,456 invocations over two
    // versions: floor(123456 × 50 / 1000) = 6172.
    let last = plinth_marketplace::month::of(
        plinth_marketplace::month::parse("month", &this_month()?)?.start_ms - 1,
    )?;
    sqlx::query("UPDATE ledger_subscriptions SET started_at = $1")
        .bind(last.start_ms)
        .execute(app.db().pool())
        .await?;
    for (version, invocations) in [("0.1.0", 100_000_i64), ("0.2.0", 23_456)] {
        sqlx::query(
            "INSERT INTO usage_counters (tenant_id, plugin_id, version, month, invocations, failures, \
             wall_time_us, fuel, kv_bytes_written, outbound_requests) VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0)",
        )
        .bind(&w.tenant_id)
        .bind(&metered)
        .bind(version)
        .bind(&last.key)
        .bind(invocations)
        .execute(app.db().pool())
        .await?;
    }
    let billed = app
        .post(
            "/v1/billing/usage-statements",
            Some(&w.operator),
            json!({"month": last.key}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let charges = billed.body["charges"].as_array().context("charges")?;
    ensure!(
        charges.len() == 1 && charges[0]["amount"] == 6_172 && charges[0]["new"] == true,
        "{}",
        billed.body
    );
    let charge_id = charges[0]["charge_id"]
        .as_str()
        .context("charge id")?
        .to_owned();
    let again = app
        .post(
            "/v1/billing/usage-statements",
            Some(&w.operator),
            json!({"month": last.key}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(again.body["charges"][0]["new"] == false);
    ensure!(scalar(app, "SELECT COUNT(*) AS n FROM ledger_charges").await? == 1);
    ensure!(
        scalar(
            app,
            "SELECT balance AS n FROM ledger_accounts WHERE kind = 'tenant_receivable'"
        )
        .await?
            == 6_172
    );
    app.post(
        "/v1/billing/usage-statements",
        Some(&w.operator),
        json!({"month": this_month()?}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "month_not_ended")?;
    app.post(
        "/v1/billing/usage-statements",
        Some(&w.operator),
        json!({"month": "2026-13"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    app.post(
        "/v1/billing/usage-statements",
        Some(&w.dev.token),
        json!({"month": last.key}),
    )
    .await?
    .expect(StatusCode::FORBIDDEN)?;

    // The processor's invoice for it settles the receivable.
    let mut paid = invoice_paid("evt_u", "in_u", "ignored", 6_172, "ch_u");
    paid["data"]["object"]["subscription"] = serde_json::Value::Null;
    paid["data"]["object"]["metadata"] = json!({"plinth_charge": charge_id});
    let reply = deliver(app, &paid).await?.expect(StatusCode::OK)?;
    ensure!(reply.body["status"] == "applied", "{}", reply.body);
    ensure!(
        scalar(
            app,
            "SELECT balance AS n FROM ledger_accounts WHERE kind = 'tenant_receivable'"
        )
        .await?
            == 0
    );
    // It is refundable by its processor charge id.
    deliver(app, &charge_refunded("evt_u2", "ch_u", 172))
        .await?
        .expect(StatusCode::OK)?;
    assert_sound(app).await
}

async fn statements_are_private_and_checked(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    let month = this_month()?;
    let path = format!("/v1/publishers/labs/statements?month={month}");
    let other = developer(app, "dev@tools.example", "tools").await?;
    app.get(&path, Some(&other.token))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get(&path, Some(&w.admin))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get(&path, None)
        .await?
        .expect(StatusCode::UNAUTHORIZED)?;
    // The other publisher's own statement is empty.
    let own = app
        .get(
            &format!("/v1/publishers/tools/statements?month={month}"),
            Some(&other.token),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        own.body["currencies"].as_array().is_some_and(Vec::is_empty),
        "{}",
        own.body
    );
    for bad in ["2026-13", "2026-1", "soon"] {
        app.get(
            &format!("/v1/publishers/labs/statements?month={bad}"),
            Some(&w.dev.token),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    }
    app.get("/v1/publishers/labs/statements", Some(&w.dev.token))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    app.get(&format!("{path}&format=pdf"), Some(&w.dev.token))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    // A month before anything happened shows the balance carried in, not the charges.
    let next = app
        .get(
            "/v1/publishers/labs/statements?month=2099-01",
            Some(&w.dev.token),
        )
        .await?
        .expect(StatusCode::OK)?;
    let usd = &next.body["currencies"][0];
    ensure!(
        usd["opening_balance"] == 9_220 && usd["plugins"].as_array().is_some_and(Vec::is_empty),
        "{}",
        next.body
    );
    Ok(())
}

async fn payouts_and_reports_are_for_operators(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, _) = subscribed(&ledger).await?;
    for token in [&w.dev.token, &w.admin] {
        app.post("/v1/payouts/runs", Some(token), json!({"run_id": "r"}))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
        app.get("/v1/ledger/verify", Some(token))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
        app.get("/v1/ledger/revenue?month=2026-01", Some(token))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
        app.post("/v1/payouts/some-id/paid", Some(token), json!({}))
            .await?
            .expect(StatusCode::FORBIDDEN)?;
    }
    app.post("/v1/payouts/runs", None, json!({"run_id": "r"}))
        .await?
        .expect(StatusCode::UNAUTHORIZED)?;
    for bad in ["../escape", "", "a b", &"x".repeat(65)] {
        app.post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": bad}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    }
    app.post("/v1/payouts/runs", Some(&w.operator), json!({"run": "x"}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    app.post("/v1/payouts/nope/paid", Some(&w.operator), json!({}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // The tenant's subscriptions are its members' only.
    let (_, stranger) = app.user("stranger@else.example").await?;
    app.get("/v1/tenants/acme/subscriptions", Some(&stranger))
        .await?
        .expect(StatusCode::NOT_FOUND)?;
    // Every route is documented.
    let document = app
        .get("/openapi.json", None)
        .await?
        .expect(StatusCode::OK)?;
    for route in [
        "/v1/billing/webhook",
        "/v1/billing/usage-statements",
        "/v1/payouts/runs",
        "/v1/payouts/{id}/paid",
        "/v1/payouts/{id}/failed",
        "/v1/publishers/{ns}/statements",
        "/v1/ledger/revenue",
        "/v1/ledger/verify",
        "/v1/tenants/{tenant}/subscriptions",
    ] {
        ensure!(
            document.body["paths"][route].is_object(),
            "{route} is not in /openapi.json"
        );
    }
    Ok(())
}

async fn verify_names_the_first_broken_invariant(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    assert_sound(app).await?;
    // A cached balance edited.
    sqlx::query("UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'platform_revenue'")
        .execute(app.db().pool())
        .await?;
    broken(app, &w.operator, "cached_balance").await?;
    sqlx::query("UPDATE ledger_accounts SET balance = balance - 1 WHERE kind = 'platform_revenue'")
        .execute(app.db().pool())
        .await?;
    // A posting edited: the transaction no longer balances.
    sqlx::query(
        "UPDATE ledger_postings SET amount = amount + 5 WHERE account_id LIKE 'processor_clearing:%'",
    )
    .execute(app.db().pool())
    .await?;
    broken(app, &w.operator, "balanced").await?;
    Ok(())
}

/// Fails unless `GET /v1/ledger/verify` reports `invariant` broken.
async fn broken(app: &common::TestApp, operator: &str, invariant: &str) -> Result<()> {
    let status = app
        .get("/v1/ledger/verify", Some(operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        status.body["sound"] == false && status.body["violation"]["invariant"] == invariant,
        "expected {invariant}: {}",
        status.body
    );
    Ok(())
}
