//! Money changes at once: two refunds of one charge (finding 1 of issue 18), and many requests
//! for one payout run and for its files (findings 3 and 4).

use anyhow::{Context, Result, ensure};
use plinth_marketplace::ledger::payouts;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::ledger_support::{
    self, Ledger, assert_sound, balance, charge_refunded, deliver, deliver_at_once, end_holds,
    invoice_paid, post_at_once, subscribed, transactions,
};
use crate::on_both_backends_ledger;
use crate::publishing::developer;

on_both_backends_ledger!(without_host:
    refunds_of_one_charge_at_once_apply_once,
    one_payout_run_asked_for_at_once_answers_alike,
);

/// Charges refunded at once "to 3,903,906" and "to 30,000,000" (of 30,000,000, the case the
/// issue saw go wrong on PostgreSQL in every run): whatever order the two take, each charge ends
/// refunded exactly once in full, the platform gives back exactly its part, the publisher is
/// left owing only the fee it bore, and `verify` holds.
async fn refunds_of_one_charge_at_once_apply_once(ledger: Ledger) -> Result<()> {
    const GROSS: i64 = 30_000_000;
    const CHARGES: usize = 6;
    let app = &ledger.app;
    let (_, subscription) = subscribed(&ledger).await?;
    for n in 0..CHARGES {
        deliver(
            app,
            &invoice_paid(
                &format!("evt_paid_{n}"),
                &format!("in_{n}"),
                &subscription,
                GROSS,
                &format!("ch_{n}"),
            ),
        )
        .await?
        .expect(StatusCode::OK)?;
    }
    let refunds: Vec<Value> = (0..CHARGES)
        .flat_map(|n| {
            [
                charge_refunded(&format!("evt_part_{n}"), &format!("ch_{n}"), 3_903_906),
                charge_refunded(&format!("evt_full_{n}"), &format!("ch_{n}"), GROSS),
            ]
        })
        .collect();
    for reply in deliver_at_once(app, &refunds).await? {
        let reply = reply.expect(StatusCode::OK)?;
        ensure!(reply.body["status"] == "applied", "{}", reply.body);
    }
    let rows = sqlx::query(
        "SELECT reference, refunded, reversed_platform, platform_share FROM ledger_charges",
    )
    .fetch_all(app.db().pool())
    .await?;
    ensure!(rows.len() == CHARGES);
    let mut platform = 0;
    for row in &rows {
        let reference: String = row.try_get("reference")?;
        let refunded: i64 = row.try_get("refunded")?;
        let reversed: i64 = row.try_get("reversed_platform")?;
        let share: i64 = row.try_get("platform_share")?;
        ensure!(
            refunded == GROSS && reversed == share,
            "{reference}: refunded {refunded}, platform gave back {reversed} of {share}"
        );
        platform += share;
    }
    // Everything went back: clearing holds minus the fees, the platform's refunds its parts,
    // and the publisher owes the 0.30 fee of each charge.
    let fees = i64::try_from(CHARGES)? * 30;
    ensure!(balance(app, "processor_clearing:USD").await? == -fees);
    ensure!(balance(app, "refunds:USD").await? == platform);
    let held = sqlx::query(
        "SELECT CAST(SUM(balance) AS BIGINT) AS n FROM ledger_accounts WHERE kind = 'publisher_held'",
    )
    .fetch_one(app.db().pool())
    .await?
    .try_get::<i64, _>("n")?;
    ensure!(held == fees, "held {held}");
    ensure!(
        ledger_support::scalar(
            app,
            "SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'refund'"
        )
        .await?
            <= i64::try_from(CHARGES)? * 2
    );
    assert_sound(app).await
}

/// Eight requests at once for one new payout run: all answer 200 with the same payouts, each
/// publisher is paid once, and the files are whole — the JSON file JSON, the CSV file CSV — with
/// no temporary file left behind. Then the files rewritten from many tasks at once while being
/// read: every read sees a whole file of the right kind.
async fn one_payout_run_asked_for_at_once_answers_alike(ledger: Ledger) -> Result<()> {
    let app = &ledger.app;
    let (w, subscription) = subscribed(&ledger).await?;
    let other = developer(app, "dev@tools.example", "tools").await?;
    let tools = ledger_support::publish_paid(
        app,
        &w.operator,
        &other,
        "paid",
        &ledger_support::monthly(4_000),
    )
    .await?;
    let tools_subscription = ledger_support::subscribe(
        app,
        &w.tenant_id,
        &tools,
        &ledger_support::pricing(plinth_package::PricingModel::Monthly, 4_000)?,
    )
    .await?;
    for (event, invoice, sub, amount, charge) in [
        ("evt_1", "in_1", &subscription, 10_000, "ch_1"),
        ("evt_2", "in_2", &tools_subscription, 4_000, "ch_2"),
    ] {
        deliver(app, &invoice_paid(event, invoice, sub, amount, charge))
            .await?
            .expect(StatusCode::OK)?;
    }
    end_holds(app).await?;
    let replies = post_at_once(
        app,
        "/v1/payouts/runs",
        &w.operator,
        &json!({"run_id": "r1"}),
        8,
    )
    .await?
    .into_iter()
    .map(|reply| reply.expect(StatusCode::OK))
    .collect::<Result<Vec<_>>>()?;
    let first = &replies[0].body;
    ensure!(
        first["payouts"].as_array().is_some_and(|p| p.len() == 2),
        "{first}"
    );
    for reply in &replies {
        ensure!(reply.body == *first, "{} vs {first}", reply.body);
    }
    ensure!(ledger_support::scalar(app, "SELECT COUNT(*) AS n FROM payouts").await? == 2);
    let dir = ledger.files.path().join("payouts");
    whole_files(&dir, "r1", 2)?;
    let leftovers: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    ensure!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Files rewritten by many writers while readers read them.
    let posted = transactions(app).await?;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let db = app.db().clone();
        let settings = app.state.settings().ledger.clone();
        tasks.push(tokio::spawn(async move {
            payouts::write_files(&db, &settings, "r1")
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }));
        let dir = dir.clone();
        tasks.push(tokio::spawn(async move { whole_files(&dir, "r1", 2) }));
    }
    for task in tasks {
        task.await??;
    }
    whole_files(&dir, "r1", 2)?;
    ensure!(
        transactions(app).await? == posted,
        "writing files posted money"
    );
    assert_sound(app).await
}

/// The run's JSON file is JSON with `payouts` lines, and its CSV file a header and as many.
fn whole_files(dir: &std::path::Path, run: &str, payouts: usize) -> Result<()> {
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{run}.json")))?)
        .context("the JSON payout file is not JSON")?;
    ensure!(
        json["run_id"] == run
            && json["payouts"]
                .as_array()
                .is_some_and(|p| p.len() == payouts),
        "{json}"
    );
    let csv = std::fs::read_to_string(dir.join(format!("{run}.csv")))?;
    let lines: Vec<&str> = csv.lines().collect();
    ensure!(
        lines.len() == payouts + 1 && lines[0] == "payout_id,publisher,amount,currency,reference",
        "{csv}"
    );
    Ok(())
}
