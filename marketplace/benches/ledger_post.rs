//! Ledger posting throughput: charges recorded through `ledger::charges::record` (the split,
//! the charge row and a four-posting balanced transaction with cached balances, one database
//! transaction each under the ledger lock, with its audit entry — what an `invoice.paid` webhook
//! writes), sequentially and from 8 concurrent writers, on SQLite (a temporary file) and
//! PostgreSQL (a fresh schema). Prints transactions per second, then runs `ledger::verify` over
//! the result.
//!
//! `cargo bench -p plinth-marketplace --bench ledger_post` (`PLINTH_BENCH_CHARGES=N` to change
//! the count; `PLINTH_BENCH_SKIP_POSTGRES=1` for SQLite only; PostgreSQL is skipped with a note
//! when the test server is unreachable).

use std::time::Instant;

use anyhow::Result;
use plinth_marketplace::Db;
use plinth_marketplace::ledger::LedgerSettings;
use plinth_marketplace::ledger::charges::{self, NewCharge};
use plinth_test_support::TestDatabase;

const PUBLISHERS: usize = 50;

async fn post_charges(
    db: &Db,
    settings: &LedgerSettings,
    prefix: &str,
    writer: usize,
    count: usize,
) -> Result<()> {
    for i in 0..count {
        let reference = format!("{prefix}-{writer}-{i}");
        let publisher = format!("pub-{}", (writer * 7 + i) % PUBLISHERS);
        let mut tx = plinth_marketplace::ledger::lock::begin(db).await?;
        charges::record(
            &mut tx,
            settings,
            NewCharge {
                reference: &reference,
                processor_charge: None,
                processor_invoice: Some(&reference),
                source: "subscription",
                subscription_id: None,
                tenant_id: "tenant",
                plugin_id: "bench.plugin",
                publisher_id: &publisher,
                currency: "USD",
                gross: 1_999 + i64::try_from(i % 1000)?,
                paid: true,
                period: None,
            },
            plinth_marketplace::clock::now_ms(),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn run(backend: &str, url: &str, count: usize) -> Result<()> {
    let db = Db::connect(url)
        .await?
        .with_audit_key(plinth_marketplace::audit::key::AuditKey::generate()?.0);
    let mut settings = LedgerSettings::default();
    settings.fees.basis_points = 290;
    settings.fees.fixed = 30;
    let started = Instant::now();
    post_charges(&db, &settings, "seq", 0, count).await?;
    let sequential = started.elapsed();
    let writers = 8;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let db = db.clone();
        let settings = settings.clone();
        tasks.push(tokio::spawn(async move {
            post_charges(&db, &settings, "par", writer, count / writers).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let concurrent = started.elapsed();
    let per_sec = |n: usize, d: std::time::Duration| {
        let micros = d.as_micros().max(1);
        u128::try_from(n).unwrap_or(0) * 1_000_000 / micros
    };
    println!(
        "| {backend:<10} | {:>7} | {:>12} | {:>12} |",
        count,
        per_sec(count, sequential),
        per_sec(count / writers * writers, concurrent)
    );
    match plinth_marketplace::ledger::verify::verify(&db).await? {
        Ok(report) => eprintln!(
            "{backend}: ledger sound ({} transactions)",
            report.transactions
        ),
        Err(violation) => anyhow::bail!("{backend}: ledger broken: {violation}"),
    }
    db.close().await;
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let count = std::env::var("PLINTH_BENCH_CHARGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 2_000 } else { 80 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "ledger posting: charges recorded (split + 4 postings), transactions per second\n"
        );
        println!("| backend    | charges | sequential/s | 8 writers/s |");
        println!("|------------|---------|--------------|-------------|");
        let sqlite = TestDatabase::sqlite()?;
        run("sqlite", &sqlite.url(), count).await?;
        if std::env::var("PLINTH_BENCH_SKIP_POSTGRES").is_ok() {
            return Ok(());
        }
        match TestDatabase::postgres("bench_ledger").await {
            Ok(postgres) => run("postgres", &postgres.url(), count).await?,
            Err(e) => println!("\n(PostgreSQL skipped: {e})"),
        }
        Ok(())
    })
}
