//! Property tests of the ledger, on both backends.
//!
//! - [`random_sequences_keep_the_ledger_sound`]: for random sequences of charges, refunds (some
//!   larger than the charge), disputes, releases, payout runs and payout settlements made
//!   through the library one after another, every transaction balances, every split sums to
//!   its charge, `verify` holds, and what publishers were credited equals what they are owed
//!   plus what was paid out to them.
//! - [`deliveries`]: processor events through the signed webhook, out of order, repeated and
//!   from several senders at once, against an independent model of every balance; then a
//!   posting moved inside one charge is named by `verify`.

mod common;
#[path = "ledger_properties/deliveries.rs"]
mod deliveries;
mod ledger_support;
mod publishing;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Db;
use plinth_marketplace::audit::Actor;
use plinth_marketplace::audit::key::AuditKey;
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::ledger::charges::{self, NewCharge};
use plinth_marketplace::ledger::payouts::{self, Settlement};
use plinth_marketplace::ledger::split::{FeeBearer, FeePolicy, SplitPolicy, Tier};
use plinth_marketplace::ledger::{LedgerSettings, disputes, lock, refunds};
use plinth_test_support::TestDatabase;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::Row;

/// Cases per backend: enough to cross tiers, refund partially and fully, and pay out, while
/// finishing in seconds.
const CASES: u32 = 24;

#[derive(Debug, Clone)]
enum Op {
    Charge { publisher: usize, gross: i64 },
    Refund { charge: Index, bps: i64 },
    RefundTooMuch { charge: Index },
    Dispute { charge: Index, lost: bool },
    Release,
    Payout,
    Settle { payout: Index, paid: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..400_000i64).prop_map(|(publisher, gross)| Op::Charge { publisher, gross }),
        2 => (any::<Index>(), 1..=10_000i64).prop_map(|(charge, bps)| Op::Refund { charge, bps }),
        1 => any::<Index>().prop_map(|charge| Op::RefundTooMuch { charge }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(charge, lost)| Op::Dispute { charge, lost }),
        1 => Just(Op::Release),
        1 => Just(Op::Payout),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(payout, paid)| Op::Settle { payout, paid }),
    ]
}

fn settings(dir: &std::path::Path) -> LedgerSettings {
    LedgerSettings {
        split: SplitPolicy {
            version: 3,
            tiers: vec![
                Tier {
                    up_to: Some(100_000),
                    platform_bps: 0,
                },
                Tier {
                    up_to: Some(500_000),
                    platform_bps: 1_000,
                },
                Tier {
                    up_to: None,
                    platform_bps: 1_500,
                },
            ],
        },
        fees: FeePolicy {
            basis_points: 290,
            fixed: 30,
            bearer: FeeBearer::Publisher,
        },
        payout_dir: dir.to_path_buf(),
        ..LedgerSettings::default()
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

async fn run_case(db: &Db, settings: &LedgerSettings, ops: &[Op]) -> Result<()> {
    let case = CASE.fetch_add(1, Ordering::SeqCst);
    let publishers: Vec<String> = (0..3).map(|i| format!("pub-{case}-{i}")).collect();
    for (i, id) in publishers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO publishers (id, namespace, name, created_at) VALUES ($1, $2, $3, 0)",
        )
        .bind(id)
        .bind(format!("p{case}x{i}"))
        .bind(id)
        .execute(db.pool())
        .await?;
    }
    let mut charge_refs: Vec<String> = Vec::new();
    let mut payout_ids: Vec<String> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Charge { publisher, gross } => {
                let reference = format!("in-{case}-{step}");
                let mut tx = lock::begin(db).await?;
                let (charge, _) = charges::record(
                    &mut tx,
                    settings,
                    NewCharge {
                        reference: &reference,
                        processor_charge: Some(&reference),
                        processor_invoice: Some(&reference),
                        source: "subscription",
                        subscription_id: None,
                        tenant_id: "tenant",
                        plugin_id: "p.plugin",
                        publisher_id: &publishers[*publisher],
                        currency: "USD",
                        gross: *gross,
                        paid: true,
                        period: None,
                    },
                    now_ms(),
                )
                .await?;
                tx.commit().await?;
                ensure!(charge.platform_share + charge.publisher_share == charge.gross);
                charge_refs.push(reference);
            }
            Op::Refund { charge, .. } | Op::RefundTooMuch { charge } if !charge_refs.is_empty() => {
                let reference = charge.get(&charge_refs);
                let mut tx = lock::begin(db).await?;
                let current = charges::by_reference(&mut tx, reference)
                    .await?
                    .context("charge")?;
                let (total, too_much) = match op {
                    Op::Refund { bps, .. } => (
                        current.refunded + (current.gross - current.reversed()) * bps / 10_000,
                        false,
                    ),
                    _ => (current.gross + 1, true),
                };
                let outcome = refunds::refund_to(&mut tx, &current.id, total, Actor::System).await;
                match outcome {
                    Ok(refunded) => {
                        ensure!(!too_much, "a refund above the charge was taken");
                        ensure!(refunded.platform + refunded.publisher == refunded.amount);
                        tx.commit().await?;
                    }
                    Err(e) => {
                        ensure!(
                            too_much || e.code() == "charge_disputed",
                            "refund refused: {e}"
                        );
                        tx.rollback().await?;
                    }
                }
            }
            Op::Dispute { charge, lost } if !charge_refs.is_empty() => {
                let reference = charge.get(&charge_refs);
                let dispute_id = format!("dp-{reference}");
                let mut tx = lock::begin(db).await?;
                let current = charges::by_reference(&mut tx, reference)
                    .await?
                    .context("charge")?;
                if disputes::open_for(&mut tx, &current.id).await?.is_some() {
                    disputes::close(&mut tx, &current.id, &dispute_id, *lost).await?;
                    tx.commit().await?;
                } else if current.reversed() < current.gross {
                    // A dispute closed before keeps its id: opening it again changes nothing.
                    disputes::open(
                        &mut tx,
                        &current.id,
                        &dispute_id,
                        current.gross - current.reversed(),
                    )
                    .await?;
                    tx.commit().await?;
                }
            }
            Op::Release => {
                sqlx::query(
                    "UPDATE ledger_charges SET available_at = $1 WHERE available_at IS NOT NULL",
                )
                .bind(now_ms() - 1)
                .execute(db.pool())
                .await?;
                charges::release_due(db, now_ms()).await?;
            }
            Op::Payout => {
                let report = payouts::run(
                    db,
                    settings,
                    &format!("run-{case}-{step}"),
                    &Actor::System,
                    now_ms(),
                )
                .await?;
                for payout in report.payouts {
                    ensure!(payout.amount >= settings.payout_threshold);
                    payout_ids.push(payout.id);
                }
            }
            Op::Settle { payout, paid } if !payout_ids.is_empty() => {
                let id = payout.get(&payout_ids);
                let settlement = if *paid {
                    Settlement::Paid
                } else {
                    Settlement::Failed
                };
                if let Err(e) = payouts::mark(db, id, settlement, &Actor::System).await {
                    ensure!(e.code() == "payout_settled", "{e}");
                }
            }
            _ => {}
        }
    }
    if let Err(violation) = plinth_marketplace::ledger::verify::verify(db).await? {
        anyhow::bail!("ledger broken after {ops:?}: {violation}");
    }
    // Conservation per publisher: credited (net of fees and refunds) = owed + paid out.
    for publisher in &publishers {
        let credited: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(publisher_share - publisher_fee - (refunded + charged_back - reversed_platform)) AS BIGINT), 0) AS n \
             FROM ledger_charges WHERE publisher_id = $1",
        )
        .bind(publisher)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
        let owed: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(-balance) AS BIGINT), 0) AS n FROM ledger_accounts WHERE owner_id = $1",
        )
        .bind(publisher)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
        let paid: i64 = sqlx::query(
            "SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) AS n FROM payouts WHERE publisher_id = $1 AND status = 'paid'",
        )
        .bind(publisher)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
        ensure!(
            credited == owed + paid,
            "{publisher}: credited {credited}, owed {owed}, paid {paid}"
        );
    }
    // Every account together sums to zero.
    let total: i64 =
        sqlx::query("SELECT COALESCE(CAST(SUM(balance) AS BIGINT), 0) AS n FROM ledger_accounts")
            .fetch_one(db.pool())
            .await?
            .try_get("n")?;
    ensure!(total == 0, "the accounts sum to {total}");
    Ok(())
}

async fn random_sequences_keep_the_ledger_sound(database: TestDatabase) -> Result<()> {
    let db = Db::connect(&database.url())
        .await?
        .with_audit_key(AuditKey::generate()?.0);
    let files = tempfile::tempdir()?;
    let settings = settings(files.path());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&proptest::collection::vec(op(), 1..14), |ops| {
        tokio::task::block_in_place(|| handle.block_on(run_case(&db, &settings, &ops)))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))
    });
    db.close().await;
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_keep_the_ledger_sound_sqlite() {
    random_sequences_keep_the_ledger_sound(TestDatabase::sqlite().expect("SQLite"))
        .await
        .expect("on SQLite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_keep_the_ledger_sound_postgres() {
    let database = TestDatabase::postgres("ledger_properties")
        .await
        .expect("PostgreSQL");
    random_sequences_keep_the_ledger_sound(database)
        .await
        .expect("on PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disordered_deliveries_match_the_model_sqlite() {
    deliveries::disordered_deliveries_match_the_model(TestDatabase::sqlite().expect("SQLite"))
        .await
        .expect("on SQLite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disordered_deliveries_match_the_model_postgres() {
    let database = TestDatabase::postgres("ledger_deliveries")
        .await
        .expect("PostgreSQL");
    deliveries::disordered_deliveries_match_the_model(database)
        .await
        .expect("on PostgreSQL");
}
