//! `plinth ledger verify` through the real binary, on SQLite: sound after charges, refunds and a
//! payout; non-zero naming the charge, the account and both amounts once 1.00 is moved inside
//! one charge's transaction (balanced, cached balances moved alike); non-zero naming the
//! invariant once a posting is tampered with.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Db;
use plinth_marketplace::audit::Actor;
use plinth_marketplace::audit::key::AuditKey;
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::ledger::LedgerSettings;
use plinth_marketplace::ledger::charges::{self, NewCharge};

fn verify(data_dir: &std::path::Path, json: bool) -> Result<(bool, String, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
    command
        .args(["ledger", "verify", "--data-dir"])
        .arg(data_dir);
    if json {
        command.arg("--json");
    }
    let output = command.env_remove("PLINTH_DATABASE_URL").output()?;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verify_passes_then_names_a_tampered_transaction() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ok, stdout, stderr) = verify(dir.path(), false)?;
    ensure!(
        ok && stdout.starts_with("ledger sound: 0 transactions"),
        "{stdout}{stderr}"
    );

    let db = Db::open_data_dir(dir.path())
        .await?
        .with_audit_key(AuditKey::load_or_create(dir.path())?);
    let settings = LedgerSettings {
        hold_ms: 0,
        payout_dir: dir.path().join("payouts"),
        ..LedgerSettings::default()
    };
    sqlx::query(
        "INSERT INTO publishers (id, namespace, name, created_at) VALUES ('p1', 'labs', 'Labs', 0)",
    )
    .execute(db.pool())
    .await?;
    let mut tx = plinth_marketplace::ledger::lock::begin(&db).await?;
    let (charge, _) = charges::record(
        &mut tx,
        &settings,
        NewCharge {
            reference: "in_1",
            processor_charge: Some("ch_1"),
            processor_invoice: Some("in_1"),
            source: "subscription",
            subscription_id: None,
            tenant_id: "t1",
            plugin_id: "labs.paid",
            publisher_id: "p1",
            currency: "USD",
            gross: 10_000,
            paid: true,
            period: None,
        },
        now_ms(),
    )
    .await?;
    plinth_marketplace::ledger::refunds::refund_to(&mut tx, &charge.id, 1_000, Actor::System)
        .await?;
    tx.commit().await?;
    let run =
        plinth_marketplace::ledger::payouts::run(&db, &settings, "cli-1", &Actor::System, now_ms())
            .await?;
    ensure!(run.payouts.len() == 1 && run.payouts[0].amount == 9_000);
    db.close().await;

    let (ok, stdout, stderr) = verify(dir.path(), true)?;
    ensure!(ok, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout)?;
    ensure!(report["payouts"] == 1 && report["charges"] == 1, "{report}");

    // 1.00 moved from the publisher to processor clearing inside the charge's own transaction.
    let db = Db::open_data_dir(dir.path()).await?;
    let moves = [
        ("processor_clearing:USD", 100_i64),
        ("publisher_held:p1:USD", -100),
    ];
    for (account, amount) in moves {
        for sql in [
            "UPDATE ledger_postings SET amount = amount + $1 WHERE account_id = $2 AND \
             transaction_id = (SELECT id FROM ledger_transactions WHERE kind = 'charge')",
            "UPDATE ledger_accounts SET balance = balance + $1 WHERE id = $2",
        ] {
            sqlx::query(sql)
                .bind(amount)
                .bind(account)
                .execute(db.pool())
                .await?;
        }
    }
    db.close().await;
    let (ok, _, stderr) = verify(dir.path(), false)?;
    ensure!(!ok, "verify passed 1.00 moved inside a charge");
    let line = stderr.lines().last().context("an error line")?;
    ensure!(
        line.starts_with(&format!(
            "error: ledger broken: charge_postings: charge in_1 ({}): account processor_clearing:USD",
            charge.id
        )) && line.contains("should move 9000")
            && line.contains("sum to 9100"),
        "{stderr}"
    );
    let db = Db::open_data_dir(dir.path()).await?;
    for (account, amount) in moves {
        for sql in [
            "UPDATE ledger_postings SET amount = amount - $1 WHERE account_id = $2 AND \
             transaction_id = (SELECT id FROM ledger_transactions WHERE kind = 'charge')",
            "UPDATE ledger_accounts SET balance = balance - $1 WHERE id = $2",
        ] {
            sqlx::query(sql)
                .bind(amount)
                .bind(account)
                .execute(db.pool())
                .await?;
        }
    }
    db.close().await;
    ensure!(verify(dir.path(), false)?.0, "not sound once put back");

    let db = Db::open_data_dir(dir.path()).await?;
    sqlx::query(
        "UPDATE ledger_postings SET amount = amount - 1 WHERE seq = \
         (SELECT MIN(seq) FROM ledger_postings WHERE account_id = 'processor_clearing:USD')",
    )
    .execute(db.pool())
    .await?;
    db.close().await;
    let (ok, _, stderr) = verify(dir.path(), false)?;
    ensure!(!ok, "verify passed a tampered ledger");
    let line = stderr.lines().last().context("an error line")?;
    ensure!(
        line.starts_with("error: ledger broken: balanced: transaction "),
        "{stderr}"
    );
    Ok(())
}
