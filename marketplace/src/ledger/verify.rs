//! The ledger's invariants, checked over everything stored (`plinth ledger verify`,
//! `GET /v1/ledger/verify`).
//!
//! In order, the first violation found is answered:
//!
//! 1. `balanced`: every transaction's postings sum to zero per currency;
//! 2. `not_empty`: every transaction has postings;
//! 3. `no_orphans`: every posting names an existing transaction and account, in the account's
//!    currency;
//! 4. `cached_balance`: every account's cached balance equals the sum of its postings;
//! 5. `payouts_within_available`: no payout took a publisher's available balance below zero,
//!    every payout's amount is what its transaction moved, and each publisher's in-transit
//!    balance is the sum of its payouts still in transit;
//! 6. `split`: every charge's split is the one its policy version gives at the lifetime gross
//!    it records, and those lifetimes follow one another (each charge's is the sum of the gross
//!    of the publisher's charges before it);
//! 7. `charge_state`: every charge's fee, refunds, chargebacks, the platform's part of them
//!    (the cumulative rounding rule) and its disputes agree with one another;
//! 8. `charge_events`: where processor events of a charge were applied, the charge says what
//!    they said (the amount paid, the largest refunded total, each dispute's state);
//! 9. `charge_postings`: every account's postings in each charge's transactions sum to what
//!    [`super::derivation`] derives from the charge — a balanced move inside one charge, or a
//!    refund posted twice, shows here, naming the charge, the account, and both amounts;
//! 10. `payout_postings`: each payout and its settlement moved exactly its amount between the
//!     right accounts;
//! 11. `unattached`: every transaction belongs to a charge or a payout;
//! 12. `derived_balance`: every account's balance is what the charges and payouts derive.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::accounts::AccountKind;
use super::charges::Charge;
use super::derivation::Movements;
use super::split::SplitPolicy;
use crate::db::Db;
use crate::error::Result;

/// A sound ledger: what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Report {
    /// Transactions checked.
    pub transactions: i64,
    /// Postings checked.
    pub postings: i64,
    /// Accounts checked.
    pub accounts: i64,
    /// Charges checked.
    pub charges: i64,
    /// Payouts checked.
    pub payouts: i64,
}

/// The first invariant found broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    /// Which invariant (see the module docs), e.g. `balanced`.
    pub invariant: String,
    /// What breaks it, e.g. `transaction 0190…`.
    pub subject: String,
    /// What is wrong, as a sentence.
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.invariant, self.subject, self.problem)
    }
}

fn violation(invariant: &str, subject: String, problem: String) -> Violation {
    Violation {
        invariant: invariant.to_owned(),
        subject,
        problem,
    }
}

async fn count(db: &Db, table: &'static str) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await?
        .try_get("n")?)
}

/// Checks every invariant; the outer error is a storage failure, the inner the first violation.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn verify(db: &Db) -> Result<std::result::Result<Report, Violation>> {
    let checks = [
        balanced(db).await?,
        not_empty(db).await?,
        no_orphans(db).await?,
    ];
    if let Some(v) = checks.into_iter().flatten().next() {
        return Ok(Err(v));
    }
    if let Some(v) = cached_balances(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = payouts_within_available(db).await? {
        return Ok(Err(v));
    }
    if let Some(v) = derived(db).await? {
        return Ok(Err(v));
    }
    Ok(Ok(Report {
        transactions: count(db, "ledger_transactions").await?,
        postings: count(db, "ledger_postings").await?,
        accounts: count(db, "ledger_accounts").await?,
        charges: count(db, "ledger_charges").await?,
        payouts: count(db, "payouts").await?,
    }))
}

async fn balanced(db: &Db) -> Result<Option<Violation>> {
    let rows = sqlx::query(
        "SELECT transaction_id, currency, amount FROM ledger_postings ORDER BY transaction_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut sums: BTreeMap<(String, String), i128> = BTreeMap::new();
    for row in &rows {
        let amount: i64 = row.try_get("amount")?;
        *sums
            .entry((row.try_get("transaction_id")?, row.try_get("currency")?))
            .or_default() += i128::from(amount);
    }
    Ok(sums
        .into_iter()
        .find(|(_, sum)| *sum != 0)
        .map(|((transaction, currency), sum)| {
            violation(
                "balanced",
                format!("transaction {transaction}"),
                format!("its {currency} postings sum to {sum}, not 0"),
            )
        }))
}

async fn not_empty(db: &Db) -> Result<Option<Violation>> {
    let row = sqlx::query(
        "SELECT t.id FROM ledger_transactions t WHERE NOT EXISTS \
         (SELECT 1 FROM ledger_postings p WHERE p.transaction_id = t.id) ORDER BY t.id LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(violation(
            "not_empty",
            format!("transaction {}", row.try_get::<String, _>("id")?),
            "it has no postings".to_owned(),
        )),
        None => None,
    })
}

async fn no_orphans(db: &Db) -> Result<Option<Violation>> {
    let row = sqlx::query(
        "SELECT p.seq, p.transaction_id, p.account_id, p.currency, t.id AS t_id, a.id AS a_id, \
         a.currency AS a_currency FROM ledger_postings p \
         LEFT JOIN ledger_transactions t ON t.id = p.transaction_id \
         LEFT JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE t.id IS NULL OR a.id IS NULL OR a.currency <> p.currency ORDER BY p.seq LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let seq: i64 = row.try_get("seq")?;
    let problem = if row.try_get::<Option<String>, _>("t_id")?.is_none() {
        format!(
            "its transaction {} does not exist",
            row.try_get::<String, _>("transaction_id")?
        )
    } else if row.try_get::<Option<String>, _>("a_id")?.is_none() {
        format!(
            "its account {} does not exist",
            row.try_get::<String, _>("account_id")?
        )
    } else {
        format!(
            "it is in {} but its account {} is in {}",
            row.try_get::<String, _>("currency")?,
            row.try_get::<String, _>("account_id")?,
            row.try_get::<String, _>("a_currency")?
        )
    };
    Ok(Some(violation(
        "no_orphans",
        format!("posting {seq}"),
        problem,
    )))
}

async fn cached_balances(db: &Db) -> Result<Option<Violation>> {
    let accounts = sqlx::query("SELECT id, balance FROM ledger_accounts ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    let sums = sqlx::query(
        "SELECT account_id, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_postings \
         GROUP BY account_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut derived: BTreeMap<String, i64> = BTreeMap::new();
    for row in &sums {
        derived.insert(row.try_get("account_id")?, row.try_get("total")?);
    }
    for row in &accounts {
        let id: String = row.try_get("id")?;
        let cached: i64 = row.try_get("balance")?;
        let from_postings = derived.get(&id).copied().unwrap_or(0);
        if cached != from_postings {
            return Ok(Some(violation(
                "cached_balance",
                format!("account {id}"),
                format!("its cached balance is {cached} but its postings sum to {from_postings}"),
            )));
        }
    }
    Ok(None)
}

async fn payouts_within_available(db: &Db) -> Result<Option<Violation>> {
    // Walk every available account in posting order; after a payout it must not be owed less
    // than nothing (liabilities are negative: the balance must stay at or below zero).
    let rows = sqlx::query(
        "SELECT p.account_id, p.amount, t.kind, t.id AS transaction_id FROM ledger_postings p \
         JOIN ledger_accounts a ON a.id = p.account_id \
         JOIN ledger_transactions t ON t.id = p.transaction_id \
         WHERE a.kind = $1 ORDER BY p.account_id, p.seq",
    )
    .bind(AccountKind::PublisherAvailable.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        let account: String = row.try_get("account_id")?;
        let amount: i64 = row.try_get("amount")?;
        let kind: String = row.try_get("kind")?;
        let balance = running.entry(account.clone()).or_default();
        *balance = balance.saturating_add(amount);
        if kind == "payout" && *balance > 0 {
            let transaction: String = row.try_get("transaction_id")?;
            return Ok(Some(violation(
                "payouts_within_available",
                format!("transaction {transaction}"),
                format!(
                    "the payout took account {account} to {} below zero",
                    *balance
                ),
            )));
        }
    }
    let payouts = sqlx::query(
        "SELECT py.id, py.amount, py.publisher_id, py.currency, py.status, \
         (SELECT CAST(SUM(p.amount) AS BIGINT) FROM ledger_postings p \
          WHERE p.transaction_id = py.transaction_id AND p.amount > 0) AS moved \
         FROM payouts py ORDER BY py.id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut in_transit: BTreeMap<String, i64> = BTreeMap::new();
    for row in &payouts {
        let id: String = row.try_get("id")?;
        let amount: i64 = row.try_get("amount")?;
        let moved: Option<i64> = row.try_get("moved")?;
        if moved != Some(amount) || amount <= 0 {
            return Ok(Some(violation(
                "payouts_within_available",
                format!("payout {id}"),
                format!(
                    "it is of {amount} but its transaction moved {}",
                    moved.unwrap_or(0)
                ),
            )));
        }
        if row.try_get::<String, _>("status")? == "in_transit" {
            let account = format!(
                "{}:{}:{}",
                AccountKind::PayoutsInTransit.as_str(),
                row.try_get::<String, _>("publisher_id")?,
                row.try_get::<String, _>("currency")?
            );
            *in_transit.entry(account).or_default() += amount;
        }
    }
    let accounts =
        sqlx::query("SELECT id, balance FROM ledger_accounts WHERE kind = $1 ORDER BY id")
            .bind(AccountKind::PayoutsInTransit.as_str())
            .fetch_all(db.pool())
            .await?;
    for row in &accounts {
        let id: String = row.try_get("id")?;
        let balance: i64 = row.try_get("balance")?;
        let expected = in_transit.get(&id).copied().unwrap_or(0);
        if -balance != expected {
            return Ok(Some(violation(
                "payouts_within_available",
                format!("account {id}"),
                format!(
                    "it holds {} but the payouts in transit sum to {expected}",
                    -balance
                ),
            )));
        }
    }
    Ok(None)
}

/// A dispute as [`derived`] reads it.
struct StoredDispute {
    id: String,
    amount: i64,
    frozen: i64,
    frozen_from: String,
    status: String,
}

/// What [`derived`] reads.
struct Recorded {
    charges: Vec<Charge>,
    policies: BTreeMap<i64, SplitPolicy>,
    /// Per charge id: its disputes.
    disputes: BTreeMap<String, Vec<StoredDispute>>,
    /// Per charge id, per account: what its transactions posted.
    posted: BTreeMap<String, Movements>,
}

async fn recorded(db: &Db) -> Result<Recorded> {
    let charges = super::charges::all(db.pool()).await?;
    let policies = super::policies::all(db).await?;
    let mut disputes: BTreeMap<String, Vec<StoredDispute>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT id, charge_id, amount, frozen, frozen_from, status FROM ledger_disputes ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?
    {
        disputes
            .entry(row.try_get("charge_id")?)
            .or_default()
            .push(StoredDispute {
                id: row.try_get("id")?,
                amount: row.try_get("amount")?,
                frozen: row.try_get("frozen")?,
                frozen_from: row.try_get("frozen_from")?,
                status: row.try_get("status")?,
            });
    }
    let mut posted: BTreeMap<String, Movements> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT t.charge_id, p.account_id, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
         WHERE t.charge_id IS NOT NULL GROUP BY t.charge_id, p.account_id",
    )
    .fetch_all(db.pool())
    .await?
    {
        posted
            .entry(row.try_get("charge_id")?)
            .or_default()
            .insert(row.try_get("account_id")?, row.try_get("total")?);
    }
    Ok(Recorded {
        charges,
        policies,
        disputes,
        posted,
    })
}

fn charge_subject(charge: &Charge) -> String {
    format!("charge {} ({})", charge.reference, charge.id)
}

/// The first account whose movement differs between `expected` and `actual`:
/// (account, expected, actual).
fn first_difference(expected: &Movements, actual: &Movements) -> Option<(String, i64, i64)> {
    expected
        .keys()
        .chain(actual.keys())
        .map(|account| {
            let want = expected.get(account).copied().unwrap_or(0);
            let got = actual.get(account).copied().unwrap_or(0);
            (account.clone(), want, got)
        })
        .find(|(_, want, got)| want != got)
}

/// Splits re-derived from each charge's policy and lifetime, and the lifetimes' chain.
fn splits(recorded: &Recorded) -> Option<Violation> {
    let mut lifetimes: BTreeMap<(&str, &str), Vec<&Charge>> = BTreeMap::new();
    for charge in &recorded.charges {
        let subject = charge_subject(charge);
        let Some(policy) = recorded.policies.get(&charge.policy_version) else {
            return Some(violation(
                "split",
                subject,
                format!(
                    "its split policy version {} is not stored",
                    charge.policy_version
                ),
            ));
        };
        let split = policy.split(charge.lifetime_before, charge.gross);
        if (split.platform, split.publisher) != (charge.platform_share, charge.publisher_share) {
            return Some(violation(
                "split",
                subject,
                format!(
                    "policy v{} at lifetime {} splits {} as platform {} / publisher {}, but it \
                     records {} / {}",
                    charge.policy_version,
                    charge.lifetime_before,
                    charge.gross,
                    split.platform,
                    split.publisher,
                    charge.platform_share,
                    charge.publisher_share
                ),
            ));
        }
        lifetimes
            .entry((&charge.publisher_id, &charge.currency))
            .or_default()
            .push(charge);
    }
    for charges in lifetimes.values_mut() {
        charges.sort_by_key(|charge| (charge.lifetime_before, charge.created_at));
        let mut before: i64 = 0;
        for charge in charges.iter() {
            if charge.lifetime_before != before {
                return Some(violation(
                    "split",
                    charge_subject(charge),
                    format!(
                        "it was split at a lifetime gross of {}, but the publisher's charges in \
                         {} before it sum to {before}",
                        charge.lifetime_before, charge.currency
                    ),
                ));
            }
            before = before.saturating_add(charge.gross);
        }
    }
    None
}

/// Fee, reversals, the platform's part of them and the disputes, against one another; the
/// amount an open dispute froze, per charge id.
fn charge_states(recorded: &Recorded) -> Result<BTreeMap<String, i64>, Violation> {
    let mut frozen_by = BTreeMap::new();
    for charge in &recorded.charges {
        let broken =
            |problem: String| Err(violation("charge_state", charge_subject(charge), problem));
        let disputes = recorded
            .disputes
            .get(&charge.id)
            .map_or(&[][..], Vec::as_slice);
        if !(0..=charge.gross).contains(&charge.fee)
            || !(0..=charge.fee.min(charge.publisher_share)).contains(&charge.publisher_fee)
        {
            return broken(format!(
                "the publisher bears {} of a fee of {} on a part of {}",
                charge.publisher_fee, charge.fee, charge.publisher_share
            ));
        }
        if charge.status != "paid"
            && (charge.fee != 0 || charge.reversed() != 0 || !disputes.is_empty())
        {
            return broken(format!(
                "it is {} but has a fee, reversals or disputes",
                charge.status
            ));
        }
        if charge.refunded < 0 || charge.charged_back < 0 || charge.reversed() > charge.gross {
            return broken(format!(
                "refunded {} and charged back {} are not within its gross {}",
                charge.refunded, charge.charged_back, charge.gross
            ));
        }
        let platform = super::derivation::reversed_platform(charge);
        if charge.reversed_platform != platform {
            return broken(format!(
                "the platform's part of {} reversed is {platform} by the rounding rule, but it \
                 records {}",
                charge.reversed(),
                charge.reversed_platform
            ));
        }
        let lost: i64 = disputes
            .iter()
            .filter(|d| d.status == "lost")
            .map(|d| d.amount)
            .sum();
        if lost != charge.charged_back {
            return broken(format!(
                "its lost disputes sum to {lost} but it records {} charged back",
                charge.charged_back
            ));
        }
        let open: Vec<_> = disputes.iter().filter(|d| d.status == "open").collect();
        if let Some(open) = open.first() {
            let location = charge.publisher_location().as_str();
            if open.frozen != charge.publisher_remaining().max(0) || open.frozen_from != location {
                return broken(format!(
                    "open dispute {} froze {} from {}, but the charge's remaining part is {} \
                     in {location}",
                    open.id,
                    open.frozen,
                    open.frozen_from,
                    charge.publisher_remaining()
                ));
            }
            frozen_by.insert(charge.id.clone(), open.frozen);
        }
        if open.len() > 1 {
            return broken(format!("{} disputes are open", open.len()));
        }
    }
    Ok(frozen_by)
}

/// Applied processor events of each charge against what the charge records.
async fn charge_events(db: &Db, recorded: &Recorded) -> Result<Option<Violation>> {
    let rows = sqlx::query(
        "SELECT id, type, payload FROM billing_events WHERE status = 'applied' \
         AND type IN ('invoice.paid', 'charge.refunded', 'charge.dispute.created', \
         'charge.dispute.closed') ORDER BY created, id",
    )
    .fetch_all(db.pool())
    .await?;
    let by_processor: BTreeMap<&str, &Charge> = recorded
        .charges
        .iter()
        .filter_map(|c| c.processor_charge.as_deref().map(|p| (p, c)))
        .collect();
    let by_invoice: BTreeMap<&str, &Charge> = recorded
        .charges
        .iter()
        .filter_map(|c| c.processor_invoice.as_deref().map(|i| (i, c)))
        .collect();
    let mut largest_refund: BTreeMap<&str, i64> = BTreeMap::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let payload: String = row.try_get("payload")?;
        let Ok(event) = super::processor_events::parse(payload.as_bytes()) else {
            return Ok(Some(violation(
                "charge_events",
                format!("billing event {id}"),
                "it was applied but its stored payload does not parse".to_owned(),
            )));
        };
        let field = |name: &str| event.object.get(name).and_then(serde_json::Value::as_str);
        let number = |name: &str| event.object.get(name).and_then(serde_json::Value::as_i64);
        let charge = match event.kind.as_str() {
            "invoice.paid" => field("id").and_then(|i| by_invoice.get(i)),
            "charge.refunded" => field("id")
                .and_then(|c| by_processor.get(c))
                .or_else(|| field("invoice").and_then(|i| by_invoice.get(i))),
            _ => field("charge").and_then(|c| by_processor.get(c)),
        };
        let Some(charge) = charge else {
            return Ok(Some(violation(
                "charge_events",
                format!("billing event {id}"),
                format!(
                    "it was applied ({}) but names no recorded charge",
                    event.kind
                ),
            )));
        };
        let problem = match event.kind.as_str() {
            "invoice.paid" if number("amount_paid") != Some(charge.gross) => Some(format!(
                "event {id} paid {:?} but the charge's gross is {}",
                number("amount_paid"),
                charge.gross
            )),
            "charge.refunded" => {
                let total = number("amount_refunded").unwrap_or(0);
                let largest = largest_refund.entry(charge.id.as_str()).or_default();
                *largest = (*largest).max(total);
                None
            }
            "charge.dispute.created" | "charge.dispute.closed" => {
                let dispute = field("id").unwrap_or_default();
                let stored = recorded
                    .disputes
                    .get(&charge.id)
                    .and_then(|all| all.iter().find(|d| d.id == dispute));
                match stored {
                    None => Some(format!(
                        "event {id} applied dispute {dispute}, which is not recorded"
                    )),
                    Some(d) if event.kind == "charge.dispute.closed" => {
                        let want = if field("status") == Some("lost") {
                            "lost"
                        } else {
                            "won"
                        };
                        (d.status != want).then(|| {
                            format!(
                                "event {id} closed dispute {dispute} as {want}, but it is {}",
                                d.status
                            )
                        })
                    }
                    Some(_) => None,
                }
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Ok(Some(violation(
                "charge_events",
                charge_subject(charge),
                problem,
            )));
        }
    }
    for charge in &recorded.charges {
        if let Some(largest) = largest_refund.get(charge.id.as_str())
            && *largest != charge.refunded
        {
            return Ok(Some(violation(
                "charge_events",
                charge_subject(charge),
                format!(
                    "the processor's refund events bring it to {largest} refunded, but it \
                     records {}",
                    charge.refunded
                ),
            )));
        }
    }
    Ok(None)
}

/// Every charge's postings per account against the derivation; the derived movements of all
/// charges together, per account.
fn charge_postings(
    recorded: &Recorded,
    frozen_by: &BTreeMap<String, i64>,
) -> Result<Movements, Violation> {
    let mut total = Movements::new();
    let empty = Movements::new();
    for charge in &recorded.charges {
        let frozen = frozen_by.get(&charge.id).copied().unwrap_or(0);
        let expected = super::derivation::charge(charge, frozen);
        let actual = recorded.posted.get(&charge.id).unwrap_or(&empty);
        if let Some((account, want, got)) = first_difference(&expected, actual) {
            return Err(violation(
                "charge_postings",
                charge_subject(charge),
                format!(
                    "account {account}: its transactions should move {want} by the charge's \
                     record, but its postings sum to {got}"
                ),
            ));
        }
        for (account, amount) in expected {
            *total.entry(account).or_default() += amount;
        }
    }
    Ok(total)
}

/// A transaction as [`payout_postings`] reads it.
#[derive(Default)]
struct Posted {
    id: String,
    charge_id: Option<String>,
    movements: Movements,
}

/// Each payout's transactions against the derivation (adding what they derive to `total`),
/// then every transaction against charges and payouts: none may belong to neither.
async fn payout_postings(
    db: &Db,
    recorded: &Recorded,
    total: &mut Movements,
) -> Result<Option<Violation>> {
    let mut by_key: BTreeMap<String, Posted> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT t.id, t.idempotency_key, t.charge_id, p.account_id, p.amount \
         FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id",
    )
    .fetch_all(db.pool())
    .await?
    {
        let posted = by_key.entry(row.try_get("idempotency_key")?).or_default();
        posted.id = row.try_get("id")?;
        posted.charge_id = row.try_get("charge_id")?;
        *posted
            .movements
            .entry(row.try_get("account_id")?)
            .or_default() += row.try_get::<i64, _>("amount")?;
    }
    let mut of_payouts: Vec<String> = Vec::new();
    let payouts = sqlx::query(
        "SELECT id, run_id, publisher_id, currency, amount, status FROM payouts ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    let none = Posted::default();
    for row in &payouts {
        let id: String = row.try_get("id")?;
        let run: String = row.try_get("run_id")?;
        let publisher: String = row.try_get("publisher_id")?;
        let currency: String = row.try_get("currency")?;
        let status: String = row.try_get("status")?;
        let facts = super::derivation::PayoutFacts {
            publisher_id: &publisher,
            currency: &currency,
            amount: row.try_get("amount")?,
            status: &status,
        };
        for (step, expected) in super::derivation::payout(&facts) {
            let key = if step == "payout" {
                format!("payout:{run}:{publisher}:{currency}")
            } else {
                format!("payout:{id}:{step}")
            };
            let actual = by_key.get(&key).unwrap_or(&none);
            if let Some((account, want, got)) = first_difference(&expected, &actual.movements) {
                return Ok(Some(violation(
                    "payout_postings",
                    format!("payout {id}"),
                    format!(
                        "its {step} transaction ({key}) should move {want} on account \
                         {account}, but its postings sum to {got}"
                    ),
                )));
            }
            of_payouts.push(key);
            for (account, amount) in expected {
                *total.entry(account).or_default() += amount;
            }
        }
    }
    for key in &of_payouts {
        by_key.remove(key);
    }
    let charges: std::collections::BTreeSet<&str> =
        recorded.charges.iter().map(|c| c.id.as_str()).collect();
    Ok(by_key
        .iter()
        .find(|(_, posted)| {
            posted
                .charge_id
                .as_deref()
                .is_none_or(|charge| !charges.contains(charge))
        })
        .map(|(key, posted)| {
            violation(
                "unattached",
                format!("transaction {}", posted.id),
                format!("it ({key}) belongs to no recorded charge and no payout"),
            )
        }))
}

/// Every account's cached balance against what the charges and payouts derive.
async fn derived_balances(db: &Db, total: &Movements) -> Result<Option<Violation>> {
    let mut actual = Movements::new();
    for row in sqlx::query("SELECT id, balance FROM ledger_accounts ORDER BY id")
        .fetch_all(db.pool())
        .await?
    {
        actual.insert(row.try_get("id")?, row.try_get("balance")?);
    }
    Ok(
        first_difference(total, &actual).map(|(account, want, got)| {
            violation(
                "derived_balance",
                format!("account {account}"),
                format!("the charges and payouts derive a balance of {want}, but it is {got}"),
            )
        }),
    )
}

/// The checks that re-derive the ledger from what is recorded (6 to 12 of the module docs).
async fn derived(db: &Db) -> Result<Option<Violation>> {
    let recorded = recorded(db).await?;
    if let Some(v) = splits(&recorded) {
        return Ok(Some(v));
    }
    let frozen_by = match charge_states(&recorded) {
        Ok(frozen_by) => frozen_by,
        Err(v) => return Ok(Some(v)),
    };
    if let Some(v) = charge_events(db, &recorded).await? {
        return Ok(Some(v));
    }
    let mut total = match charge_postings(&recorded, &frozen_by) {
        Ok(total) => total,
        Err(v) => return Ok(Some(v)),
    };
    if let Some(v) = payout_postings(db, &recorded, &mut total).await? {
        return Ok(Some(v));
    }
    derived_balances(db, &total).await
}
