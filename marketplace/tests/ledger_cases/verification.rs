//! `verify` re-derives each charge (finding 5 of issue 18); statements reconcile from their own
//! fields after a failed payout, and money changes are in the audit log (finding 6).

use anyhow::{Context, Result, ensure};
use plinth_marketplace::ledger::accounts::{AccountKey, AccountKind};
use plinth_marketplace::ledger::posting::{self, NewTransaction, Posting};
use plinth_marketplace::ledger::{charges, lock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::ledger_support::{
    Ledger, assert_sound, charge_refunded, deliver, dispute, end_holds, invoice_paid, subscribed,
    this_month,
};
use crate::on_both_backends_ledger;

on_both_backends_ledger!(without_host:
    verify_names_a_refund_posted_from_a_stale_start,
    verify_names_a_balanced_move_inside_one_charge,
    verify_names_a_split_its_policy_does_not_give,
    verify_names_money_moved_outside_charges_and_payouts,
    a_statement_shows_failed_payouts_and_reconciles,
    money_changes_are_in_the_audit_log,
);

/// Fails unless `GET /v1/ledger/verify` reports `invariant` broken; the violation.
async fn broken(app: &TestApp, operator: &str, invariant: &str) -> Result<Value> {
    let status = app
        .get("/v1/ledger/verify", Some(operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        status.body["sound"] == false && status.body["violation"]["invariant"] == invariant,
        "expected {invariant}: {}",
        status.body
    );
    Ok(status.body["violation"].clone())
}

/// The state finding 1 left behind: a refund "to 30,000,000" posted from the starting point 0
/// after one "to 3,903,906" had been applied, its guarded update losing — balanced, cached
/// balances right, and the old `verify` passed it.
async fn verify_names_a_refund_posted_from_a_stale_start(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 30_000_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(app, &charge_refunded("evt_2", "ch_1", 3_903_906))
        .await?
        .expect(StatusCode::OK)?;
    assert_sound(app).await?;
    let mut tx = lock::begin(app.db()).await?;
    let charge = charges::by_reference(&mut tx, "in_1")
        .await?
        .context("the charge")?;
    // What the losing refund posted: the whole 30,000,000 reversed from 0.
    let platform = charge.platform_share;
    posting::post(
        &mut tx,
        NewTransaction {
            idempotency_key: "refund:in_1:30000000".to_owned(),
            kind: "refund",
            publisher_id: Some(charge.publisher_id.clone()),
            charge_id: Some(charge.id.clone()),
            memo: "a refund that lost the race".to_owned(),
            postings: vec![
                Posting::debit(AccountKey::platform(AccountKind::Refunds, "USD"), platform),
                Posting::debit(charge.publisher_account(), 30_000_000 - platform),
                Posting::credit(
                    AccountKey::platform(AccountKind::ProcessorClearing, "USD"),
                    30_000_000,
                ),
            ],
            ..NewTransaction::default()
        },
    )
    .await?;
    tx.commit().await?;
    let violation = broken(app, &w.operator, "charge_postings").await?;
    let problem = violation["problem"].as_str().context("problem")?;
    ensure!(
        violation["subject"]
            .as_str()
            .is_some_and(|s| s.contains("in_1") && s.contains(&charge.id)),
        "{violation}"
    );
    // Clearing should hold 30,000,000 − 30 − 3,903,906 from this charge; it holds 30,000,000
    // less again.
    ensure!(
        problem.contains("account processor_clearing:USD")
            && problem.contains("26096064")
            && problem.contains("-3903936"),
        "{problem}"
    );
    Ok(())
}

/// 50.00 moved from the publisher's held part to platform revenue inside the charge's own
/// transaction, cached balances moved alike: balanced and cached, named only by re-derivation.
async fn verify_names_a_balanced_move_inside_one_charge(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    assert_sound(app).await?;
    for (account, amount) in [
        ("publisher_held:%", 5_000_i64),
        ("platform_revenue:%", -5_000),
    ] {
        for sql in [
            "UPDATE ledger_postings SET amount = amount + $1 WHERE account_id LIKE $2",
            "UPDATE ledger_accounts SET balance = balance + $1 WHERE id LIKE $2",
        ] {
            sqlx::query(sql)
                .bind(amount)
                .bind(account)
                .execute(app.db().pool())
                .await?;
        }
    }
    let violation = broken(app, &w.operator, "charge_postings").await?;
    let problem = violation["problem"].as_str().context("problem")?;
    // Revenue should be −(750 + 30) = −780; it is −5780.
    ensure!(
        problem.contains("account platform_revenue:USD")
            && problem.contains("-780")
            && problem.contains("-5780"),
        "{problem}"
    );
    Ok(())
}

async fn verify_names_a_split_its_policy_does_not_give(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    sqlx::query(
        "UPDATE ledger_charges SET platform_share = platform_share - 1, \
         publisher_share = publisher_share + 1",
    )
    .execute(app.db().pool())
    .await?;
    let violation = broken(app, &w.operator, "split").await?;
    ensure!(
        violation["problem"]
            .as_str()
            .is_some_and(|p| p.contains("750") && p.contains("749")),
        "{violation}"
    );
    Ok(())
}

/// A balanced transaction of neither a charge nor a payout — platform revenue moved to a
/// publisher's available balance — is named, though it balances and its balances are cached.
async fn verify_names_money_moved_outside_charges_and_payouts(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    let mut tx = lock::begin(app.db()).await?;
    posting::post(
        &mut tx,
        NewTransaction {
            idempotency_key: "gift:1".to_owned(),
            kind: "release",
            memo: "a gift".to_owned(),
            postings: vec![
                Posting::debit(
                    AccountKey::platform(AccountKind::PlatformRevenue, "USD"),
                    5_000,
                ),
                Posting::credit(
                    AccountKey::owned(AccountKind::PublisherAvailable, "someone", "USD"),
                    5_000,
                ),
            ],
            ..NewTransaction::default()
        },
    )
    .await?;
    tx.commit().await?;
    let violation = broken(app, &w.operator, "unattached").await?;
    ensure!(
        violation["problem"]
            .as_str()
            .is_some_and(|p| p.contains("gift:1")),
        "{violation}"
    );
    Ok(())
}

/// A payout that failed shows on the month's statement — listed as failed, its amount returned
/// — and the statement reconciles from its own fields: closing = opening + net − paid out +
/// returned, and in transit = opening in transit + paid out − returned − confirmed.
async fn a_statement_shows_failed_payouts_and_reconciles(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    end_holds(app).await?;
    let first = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "a"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let failed = first.body["payouts"][0]["id"]
        .as_str()
        .context("payout")?
        .to_owned();
    app.post(
        &format!("/v1/payouts/{failed}/failed"),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let second = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "b"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let paid = second.body["payouts"][0]["id"]
        .as_str()
        .context("payout")?
        .to_owned();
    app.post(
        &format!("/v1/payouts/{paid}/paid"),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let path = format!("/v1/publishers/labs/statements?month={}", this_month()?);
    let statement = app
        .get(&path, Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let usd = &statement.body["currencies"][0];
    let n = |field: &str| usd[field].as_i64().unwrap_or(i64::MIN);
    ensure!(
        n("paid_out") == 18_440 && n("returned") == 9_220 && n("confirmed") == 9_220,
        "{usd}"
    );
    ensure!(
        n("closing_balance")
            == n("opening_balance") + usd["total"]["net"].as_i64().unwrap_or(0) - n("paid_out")
                + n("returned"),
        "{usd}"
    );
    ensure!(
        n("in_transit") == n("opening_in_transit") + n("paid_out") - n("returned") - n("confirmed"),
        "{usd}"
    );
    let statuses: Vec<&str> = usd["payouts"]
        .as_array()
        .context("payouts")?
        .iter()
        .filter_map(|p| p["status"].as_str())
        .collect();
    ensure!(statuses == ["failed", "paid"], "{usd}");
    let csv = app
        .get(&format!("{path}&format=csv"), Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let csv = String::from_utf8(csv.bytes)?;
    ensure!(
        csv.lines().next().is_some_and(
            |header| header.ends_with(",paid_out,opening_in_transit,returned,confirmed")
        ),
        "{csv}"
    );
    ensure!(
        csv.lines()
            .nth(1)
            .is_some_and(|line| line.ends_with(",0,18440,0,9220,9220")),
        "{csv}"
    );
    assert_sound(app).await
}

/// Paid invoices, refunds, disputes and payouts are each in the audit log, and it verifies.
async fn money_changes_are_in_the_audit_log(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    deliver(
        app,
        &invoice_paid("evt_1", "in_1", &subscription, 10_000, "ch_1"),
    )
    .await?
    .expect(StatusCode::OK)?;
    deliver(app, &charge_refunded("evt_2", "ch_1", 1_000))
        .await?
        .expect(StatusCode::OK)?;
    for (event, kind, status) in [
        ("evt_3", "charge.dispute.created", "needs_response"),
        ("evt_4", "charge.dispute.closed", "lost"),
    ] {
        deliver(app, &dispute(event, kind, "dp_1", "ch_1", 2_000, status))
            .await?
            .expect(StatusCode::OK)?;
    }
    end_holds(app).await?;
    let run = app
        .post(
            "/v1/payouts/runs",
            Some(&w.operator),
            json!({"run_id": "r"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    let payout = run.body["payouts"][0]["id"]
        .as_str()
        .context("payout")?
        .to_owned();
    app.post(
        &format!("/v1/payouts/{payout}/paid"),
        Some(&w.operator),
        json!({}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let log = app
        .get("/v1/audit", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "ledger.charged",
        "ledger.refunded",
        "ledger.dispute_opened",
        "ledger.dispute_closed",
        "ledger.charged_back",
        "payout.created",
        "payout.paid",
    ] {
        ensure!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let charged = log.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|e| e["action"] == "ledger.charged")
        .context("charged")?;
    ensure!(
        charged["details"]["gross"] == 10_000 && charged["details"]["invoice"] == "in_1",
        "{charged}"
    );
    let verified = app
        .get("/v1/audit/verify", Some(&w.operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(verified.body["sound"] == true, "{}", verified.body);
    assert_sound(app).await
}
