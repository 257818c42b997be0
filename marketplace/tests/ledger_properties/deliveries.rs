//! Processor events delivered out of order, twice, and by several senders at once, through the
//! signed webhook, against an independent model of the documented rules.
//!
//! Each case draws a processor history that obeys the processor's own rules — invoices paid;
//! partial and full refunds reported as cumulative totals; at most one dispute per charge,
//! opened and then closed won or lost, with no refund while it is open — and gives the events
//! `created` times in history order (several share a second, and event ids are random, so the
//! processor's tie-break by id often contradicts the history). The events are then shuffled,
//! some are repeated, and four tasks deliver them at once. Every delivery must be answered 200
//! or 202 (never refused: nothing the processor sent was wrong), nothing may stay pending
//! once everything arrived, and then every account of the case equals the model. Holds end, a
//! payout run is asked for three times at once (the same answer each time), one payout fails
//! and one is paid, and again every account equals the model, each statement reconciles from
//! its own fields and `ledger verify` passes.
//!
//! Each case has its own currency, so its accounts are its own. The model takes one thing from
//! the ledger: the order in which the concurrent deliveries recorded the charges (by posting
//! sequence), which the tiered split depends on and which no model can predict; it then
//! computes every split, fee, reversal and balance itself.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail, ensure};
use plinth_marketplace::audit::Actor;
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::ledger::payouts::{self, Settlement};
use plinth_marketplace::ledger::{statements, verify};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::common::TestApp;
use crate::ledger_support::{self, SECRET};

/// Cases per backend: a few seconds each.
const CASES: u32 = 40;
/// Tasks delivering at once.
const SENDERS: usize = 4;

/// What the processor does to one charge after it is paid.
#[derive(Debug, Clone)]
enum Step {
    /// Refund this share (basis points) of what is not reversed yet.
    Refund(i64),
    /// Dispute this share of what is not reversed yet; then lost or won.
    Dispute(i64, bool),
}

/// A charge of the history: its publisher (0 or 1), gross and what happens to it.
#[derive(Debug, Clone)]
struct Story {
    publisher: usize,
    gross: i64,
    steps: Vec<Step>,
}

/// A drawn case: the stories, how their events interleave, which are repeated, the delivery
/// order, and how the payouts end.
#[derive(Debug, Clone)]
struct Case {
    stories: Vec<Story>,
    interleave: Vec<proptest::sample::Index>,
    repeats: Vec<proptest::sample::Index>,
    shuffle_seed: u64,
    first_payout_fails: bool,
}

fn story() -> impl Strategy<Value = Story> {
    let step = prop_oneof![
        3 => (1..=10_000i64).prop_map(Step::Refund),
        2 => (1..=10_000i64, any::<bool>()).prop_map(|(bps, lost)| Step::Dispute(bps, lost)),
    ];
    (
        0..2usize,
        100..12_000i64,
        proptest::collection::vec(step, 0..4),
    )
        .prop_map(|(publisher, gross, steps)| Story {
            publisher,
            gross,
            steps,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(story(), 1..6),
        proptest::collection::vec(any::<proptest::sample::Index>(), 40),
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..5),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(stories, interleave, repeats, shuffle_seed, first_payout_fails)| Case {
                stories,
                interleave,
                repeats,
                shuffle_seed,
                first_payout_fails,
            },
        )
}

/// One charge as the model keeps it.
#[derive(Debug, Clone, Default)]
struct ModelCharge {
    publisher: usize,
    gross: i64,
    /// The processor's cumulative `amount_refunded`.
    refunded: i64,
    /// Lost in disputes.
    lost: i64,
}

/// The processor's side: the events of a case in history order, and the model's charges.
fn history(case_no: usize, case: &Case, cur: &str) -> (Vec<Value>, Vec<ModelCharge>) {
    // Each story's events, in its own order.
    let mut per_charge: Vec<VecDeque<Value>> = Vec::new();
    let mut model = Vec::new();
    let mut rng = SplitMix(case.shuffle_seed ^ 0x5eed);
    for (i, story) in case.stories.iter().enumerate() {
        let ch = format!("ch_{case_no}_{i}");
        let mut events = VecDeque::new();
        events.push_back(json!({"type": "invoice.paid", "data": {"object": {
            "id": format!("in_{case_no}_{i}"), "object": "invoice",
            "subscription": format!("sub_{case_no}_{}", story.publisher),
            "amount_paid": story.gross, "currency": cur, "charge": ch, "status": "paid"}}}));
        let mut charge = ModelCharge {
            publisher: story.publisher,
            gross: story.gross,
            ..ModelCharge::default()
        };
        let mut disputed = false;
        for step in &story.steps {
            let left = charge.gross - charge.refunded - charge.lost;
            match *step {
                Step::Refund(bps) => {
                    let more = left * bps / 10_000;
                    if more == 0 {
                        continue;
                    }
                    charge.refunded += more;
                    let mut object = json!({"id": ch, "object": "charge",
                        "amount_refunded": charge.refunded, "currency": cur, "refunded": true});
                    if rng.next().is_multiple_of(2) {
                        object["invoice"] = json!(format!("in_{case_no}_{i}"));
                    }
                    events
                        .push_back(json!({"type": "charge.refunded", "data": {"object": object}}));
                }
                Step::Dispute(bps, lost) if !disputed && left > 0 => {
                    disputed = true;
                    let amount = (left * bps / 10_000).max(1);
                    let dispute = format!("dp_{case_no}_{i}");
                    let object = |status: &str| {
                        json!({"id": dispute, "object": "dispute", "charge": ch,
                               "amount": amount, "currency": cur, "status": status})
                    };
                    events.push_back(json!({"type": "charge.dispute.created",
                        "data": {"object": object("needs_response")}}));
                    events.push_back(json!({"type": "charge.dispute.closed",
                        "data": {"object": object(if lost { "lost" } else { "won" })}}));
                    if lost {
                        charge.lost += amount;
                    }
                }
                Step::Dispute(..) => {}
            }
        }
        per_charge.push(events);
        model.push(charge);
    }
    // Interleave the stories (each keeps its order), then give `created` times: two events
    // per second, so neighbours often tie, and random ids.
    let mut ordered = Vec::new();
    let mut picks = case.interleave.iter().cycle();
    while per_charge.iter().any(|events| !events.is_empty()) {
        let open: Vec<usize> = (0..per_charge.len())
            .filter(|&i| !per_charge[i].is_empty())
            .collect();
        let pick = picks.next().map_or(0, |index| index.index(open.len()));
        if let Some(event) = per_charge[open[pick]].pop_front() {
            ordered.push(event);
        }
    }
    let base = ledger_support::now_secs() - 1_000;
    for (position, event) in ordered.iter_mut().enumerate() {
        event["id"] = json!(format!("evt_{case_no}_{:016x}", rng.next()));
        event["object"] = json!("event");
        event["created"] = json!(base + i64::try_from(position / 2).unwrap_or(0));
    }
    (ordered, model)
}

/// A small deterministic generator for shuffling and ids (seeded by the case).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The model's rules, written out apart from the ledger's code: the platform's part per tier
/// of lifetime gross (0% below 50.00, 15% above, each part rounded down), a fee of 0.30 the
/// publisher bears (at most its part), reversals rounded down on the cumulative total.
fn platform_part(lifetime: i64, gross: i64) -> i64 {
    let boundary = 5_000;
    let above = (lifetime + gross - lifetime.max(boundary)).max(0);
    above * 1_500 / 10_000
}

#[derive(Debug, Default)]
struct Books {
    /// Account id → balance.
    accounts: BTreeMap<String, i64>,
}

impl Books {
    fn add(&mut self, account: String, amount: i64) {
        *self.accounts.entry(account).or_default() += amount;
    }
}

/// What each charge leaves the publisher (its part less the fee it bore and its share of
/// reversals), and the books after every event is applied, before any release.
fn model_books(
    model: &[ModelCharge],
    record_order: &[usize],
    publishers: &[String],
    cur: &str,
) -> (Books, Vec<i64>) {
    let mut books = Books::default();
    let mut lifetime = [0i64; 2];
    let mut remaining = vec![0i64; model.len()];
    for &i in record_order {
        let charge = &model[i];
        let platform = platform_part(lifetime[charge.publisher], charge.gross);
        lifetime[charge.publisher] += charge.gross;
        let publisher_part = charge.gross - platform;
        let fee = charge.gross.min(30);
        let publisher_fee = fee.min(publisher_part);
        let reversed = charge.refunded + charge.lost;
        let platform_reversed = platform * reversed / charge.gross;
        let left = publisher_part - publisher_fee - (reversed - platform_reversed);
        remaining[i] = left;
        books.add(
            format!("processor_clearing:{cur}"),
            charge.gross - fee - reversed,
        );
        books.add(format!("processor_fees:{cur}"), fee);
        books.add(
            format!("platform_revenue:{cur}"),
            -(platform + publisher_fee),
        );
        books.add(format!("refunds:{cur}"), platform_reversed);
        books.add(
            format!("publisher_held:{}:{cur}", publishers[charge.publisher]),
            -left,
        );
    }
    (books, remaining)
}

/// Every account of currency `cur` against `books` (zero balances count as absent).
async fn assert_books(app: &TestApp, cur: &str, books: &Books, when: &str) -> Result<()> {
    let rows = sqlx::query("SELECT id, balance FROM ledger_accounts WHERE currency = $1")
        .bind(cur)
        .fetch_all(app.db().pool())
        .await?;
    let mut actual = BTreeMap::new();
    for row in &rows {
        let balance: i64 = row.try_get("balance")?;
        if balance != 0 {
            actual.insert(row.try_get::<String, _>("id")?, balance);
        }
    }
    let expected: BTreeMap<String, i64> = books
        .accounts
        .iter()
        .filter(|(_, balance)| **balance != 0)
        .map(|(id, balance)| (id.clone(), *balance))
        .collect();
    ensure!(
        actual == expected,
        "{when}: the ledger's accounts differ from the model\nledger: {actual:?}\nmodel:  {expected:?}"
    );
    Ok(())
}

async fn post_event(
    client: &reqwest::Client,
    base: &str,
    event: &Value,
) -> Result<(StatusCode, Value)> {
    let payload = serde_json::to_vec(event)?;
    let header = plinth_marketplace::ledger::webhook::signature_header(
        SECRET,
        ledger_support::now_secs(),
        &payload,
    )?;
    let response = client
        .post(format!("{base}/v1/billing/webhook"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", header)
        .body(payload)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Delivers `events` from [`SENDERS`] tasks at once; fails on any answer but 200 or 202.
async fn deliver_all(app: &TestApp, events: Vec<Value>) -> Result<()> {
    let queue = Arc::new(Mutex::new(VecDeque::from(events)));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let queue = Arc::clone(&queue);
        let client = app.client.clone();
        let base = app.base.clone();
        senders.push(tokio::spawn(async move {
            loop {
                let Some(event) = queue.lock().await.pop_front() else {
                    return Ok::<(), anyhow::Error>(());
                };
                let (status, body) = post_event(&client, &base, &event).await?;
                let answered = body["status"].as_str().unwrap_or_default();
                let fine = match status {
                    StatusCode::OK => ["applied", "duplicate", "ignored"].contains(&answered),
                    StatusCode::ACCEPTED => {
                        WAITED.fetch_add(1, Ordering::SeqCst);
                        answered == "pending"
                    }
                    _ => false,
                };
                ensure!(fine, "{} answered {status} {body}", event["id"]);
            }
        }));
    }
    for sender in senders {
        sender.await??;
    }
    Ok(())
}

static CASE_NO: AtomicUsize = AtomicUsize::new(0);
/// Deliveries answered 202 (waiting) across the cases: the test must have exercised waiting.
static WAITED: AtomicUsize = AtomicUsize::new(0);

/// The case's currency: `Q` and two letters from the case number.
fn currency(case_no: usize) -> String {
    let letter = |n: usize| char::from(b'A' + u8::try_from(n % 26).unwrap_or(0));
    format!("Q{}{}", letter(case_no / 26), letter(case_no))
}

async fn run_case(app: &TestApp, case: &Case) -> Result<()> {
    let case_no = CASE_NO.fetch_add(1, Ordering::SeqCst);
    let cur = currency(case_no);
    let db = app.db();
    let publishers: Vec<String> = (0..2).map(|i| format!("pub_{case_no}_{i}")).collect();
    for (i, id) in publishers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO publishers (id, namespace, name, created_at) VALUES ($1, $2, $3, 0)",
        )
        .bind(id)
        .bind(format!("ns{case_no}x{i}"))
        .bind(id)
        .execute(db.pool())
        .await?;
        sqlx::query(
            "INSERT INTO ledger_subscriptions (id, tenant_id, plugin_id, publisher_id, model, \
             amount, currency, status, started_at) VALUES ($1, 'tenant', $2, $3, 'monthly', 1, $4, \
             'active', 0)",
        )
        .bind(format!("sub_{case_no}_{i}"))
        .bind(format!("ns{case_no}x{i}.paid"))
        .bind(id)
        .bind(&cur)
        .execute(db.pool())
        .await?;
    }
    let (events, model) = history(case_no, case, &cur.to_ascii_lowercase());
    // Shuffle (Fisher–Yates, seeded) and repeat some.
    let mut deliveries = events.clone();
    let mut rng = SplitMix(case.shuffle_seed);
    for i in (1..deliveries.len()).rev() {
        let j = usize::try_from(rng.next() % (u64::try_from(i).unwrap_or(1) + 1)).unwrap_or(0);
        deliveries.swap(i, j);
    }
    for repeat in &case.repeats {
        let again = events[repeat.index(events.len())].clone();
        let at = repeat.index(deliveries.len() + 1);
        deliveries.insert(at, again);
    }
    deliver_all(app, deliveries).await?;

    let waiting: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM billing_events WHERE status <> 'applied' AND id LIKE $1",
    )
    .bind(format!("evt_{case_no}_%"))
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    ensure!(
        waiting == 0,
        "{waiting} events were not applied once all had arrived"
    );

    // The order the charges were recorded in: the one input the model takes from the ledger.
    let rows = sqlx::query(
        "SELECT c.reference, MIN(p.seq) AS first FROM ledger_charges c \
         JOIN ledger_transactions t ON t.charge_id = c.id AND t.kind = 'charge' \
         JOIN ledger_postings p ON p.transaction_id = t.id \
         WHERE c.currency = $1 GROUP BY c.reference ORDER BY first",
    )
    .bind(&cur)
    .fetch_all(db.pool())
    .await?;
    let mut order = Vec::new();
    for row in &rows {
        let reference: String = row.try_get("reference")?;
        let index: usize = reference.rsplit('_').next().context("reference")?.parse()?;
        order.push(index);
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    ensure!(
        sorted == (0..model.len()).collect::<Vec<_>>(),
        "charges recorded: {order:?} of {}",
        model.len()
    );
    let (mut books, remaining) = model_books(&model, &order, &publishers, &cur);
    assert_books(app, &cur, &books, "after every event").await?;

    // Holds end; the payout run asked for three times at once answers the same each time.
    sqlx::query("UPDATE ledger_charges SET available_at = $1 WHERE currency = $2")
        .bind(now_ms() - 1)
        .bind(&cur)
        .execute(db.pool())
        .await?;
    for (i, publisher) in publishers.iter().enumerate() {
        let owed: i64 = (0..model.len())
            .filter(|&c| model[c].publisher == i)
            .map(|c| remaining[c])
            .sum();
        let held = format!("publisher_held:{publisher}:{cur}");
        let available = format!("publisher_available:{publisher}:{cur}");
        books.add(held, owed);
        books.add(available.clone(), -owed);
        if owed >= 2_500 {
            books.add(available, owed);
            books.add(format!("payouts_in_transit:{publisher}:{cur}"), -owed);
        }
    }
    let run_id = format!("deliveries-{case_no}");
    let settings = &app.state.settings().ledger;
    let (a, b, c) = tokio::join!(
        payouts::run(db, settings, &run_id, &Actor::System, now_ms()),
        payouts::run(db, settings, &run_id, &Actor::System, now_ms()),
        payouts::run(db, settings, &run_id, &Actor::System, now_ms()),
    );
    let (a, b, c) = (a?, b?, c?);
    ensure!(
        a == b && b == c,
        "one run answered differently: {a:?} / {b:?} / {c:?}"
    );
    let ours: Vec<_> = a.payouts.iter().filter(|p| p.currency == cur).collect();
    for payout in &ours {
        let settlement = if case.first_payout_fails && payout.id == ours[0].id {
            Settlement::Failed
        } else {
            Settlement::Paid
        };
        payouts::mark(db, &payout.id, settlement, &Actor::System).await?;
        let in_transit = format!("payouts_in_transit:{}:{cur}", payout.publisher_id);
        books.add(in_transit, payout.amount);
        match settlement {
            Settlement::Failed => books.add(
                format!("publisher_available:{}:{cur}", payout.publisher_id),
                -payout.amount,
            ),
            Settlement::Paid => books.add(format!("processor_clearing:{cur}"), -payout.amount),
        }
    }
    assert_books(app, &cur, &books, "after the payouts").await?;

    // Every statement reconciles from its own fields.
    let month = plinth_marketplace::month::of(now_ms())?;
    for publisher in &publishers {
        let statement = statements::statement(db, publisher, publisher, &month).await?;
        for section in &statement.currencies {
            ensure!(
                section.closing_balance
                    == section.opening_balance + section.total.net - section.paid_out
                        + section.returned
                    && section.in_transit
                        == section.opening_in_transit + section.paid_out
                            - section.returned
                            - section.confirmed,
                "a statement that does not reconcile: {section:?}"
            );
        }
    }
    match verify::verify(db).await? {
        Ok(_) => Ok(()),
        Err(violation) => bail!("ledger verify failed: {violation}"),
    }
}

/// Moves 50.00 between two postings of one charge's transaction (and their cached balances):
/// balanced and cached alike, only the re-derivation can see it — and must name the charge.
async fn a_moved_posting_is_named(app: &TestApp) -> Result<()> {
    let db = app.db();
    let row = sqlx::query(
        "SELECT t.id AS transaction_id, c.reference, c.id AS charge_id FROM ledger_transactions t \
         JOIN ledger_charges c ON c.id = t.charge_id WHERE t.kind = 'charge' \
         ORDER BY t.created_at LIMIT 1",
    )
    .fetch_one(db.pool())
    .await?;
    let transaction: String = row.try_get("transaction_id")?;
    let reference: String = row.try_get("reference")?;
    let moves = [
        ("publisher_held:%", 5_000_i64),
        ("processor_clearing:%", -5_000),
    ];
    for (account, amount) in moves {
        sqlx::query(
            "UPDATE ledger_postings SET amount = amount + $1 WHERE transaction_id = $2 \
             AND account_id LIKE $3",
        )
        .bind(amount)
        .bind(&transaction)
        .bind(account)
        .execute(db.pool())
        .await?;
        sqlx::query(
            "UPDATE ledger_accounts SET balance = balance + $1 WHERE id IN (SELECT account_id \
             FROM ledger_postings WHERE transaction_id = $2 AND account_id LIKE $3)",
        )
        .bind(amount)
        .bind(&transaction)
        .bind(account)
        .execute(db.pool())
        .await?;
    }
    let violation = match verify::verify(db).await? {
        Ok(_) => bail!("verify passed 50.00 moved inside charge {reference}"),
        Err(violation) => violation,
    };
    ensure!(
        violation.invariant == "charge_postings"
            && violation.subject.contains(&reference)
            && (violation.problem.contains("account publisher_held:")
                || violation.problem.contains("account processor_clearing:")),
        "{violation}"
    );
    // Put it back: sound again.
    for (account, amount) in moves {
        for table_sql in [
            "UPDATE ledger_postings SET amount = amount - $1 WHERE transaction_id = $2 AND account_id LIKE $3",
            "UPDATE ledger_accounts SET balance = balance - $1 WHERE id IN (SELECT account_id \
             FROM ledger_postings WHERE transaction_id = $2 AND account_id LIKE $3)",
        ] {
            sqlx::query(table_sql)
                .bind(amount)
                .bind(&transaction)
                .bind(account)
                .execute(db.pool())
                .await?;
        }
    }
    ensure!(verify::verify(db).await?.is_ok(), "not sound once restored");
    Ok(())
}

pub async fn disordered_deliveries_match_the_model(
    database: plinth_test_support::TestDatabase,
) -> Result<()> {
    let files = tempfile::tempdir()?;
    let app = TestApp::start(database, ledger_support::settings(&files)).await?;
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    runner
        .run(&case(), |case| {
            tokio::task::block_in_place(|| handle.block_on(run_case(&app, &case)))
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The cases did what they are for: events waited, disputes were lost, refunds taken, and
    // splits crossed the tier boundary.
    let lost = ledger_support::scalar(
        &app,
        "SELECT COUNT(*) AS n FROM ledger_disputes WHERE status = 'lost'",
    )
    .await?;
    let refunded = ledger_support::scalar(
        &app,
        "SELECT COUNT(*) AS n FROM ledger_charges WHERE refunded > 0",
    )
    .await?;
    let crossing = ledger_support::scalar(
        &app,
        "SELECT COUNT(*) AS n FROM ledger_charges WHERE lifetime_before < 5000 \
         AND lifetime_before + gross > 5000",
    )
    .await?;
    ensure!(
        WAITED.load(Ordering::SeqCst) > 0 && lost > 0 && refunded > 0 && crossing > 0,
        "the cases exercised too little: {} waited, {lost} lost, {refunded} refunded, \
         {crossing} across the tier",
        WAITED.load(Ordering::SeqCst)
    );
    a_moved_posting_is_named(&app).await
}
