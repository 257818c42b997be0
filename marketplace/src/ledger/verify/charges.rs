//! Each charge re-derived from what is recorded of it (6 to 9 of [`super`]): its split, its
//! state, its processor events and its postings.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Violation, first_difference, violation};
use crate::db::Db;
use crate::error::Result;
use crate::ledger::charges::Charge;
use crate::ledger::derivation::Movements;
use crate::ledger::split::SplitPolicy;

pub(super) fn charge_subject(charge: &Charge) -> String {
    format!("charge {} ({})", charge.reference, charge.id)
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
pub(super) struct Recorded {
    /// Every charge, oldest first.
    charges: Vec<Charge>,
    policies: BTreeMap<i64, SplitPolicy>,
    /// Per charge id: its disputes.
    disputes: BTreeMap<String, Vec<StoredDispute>>,
    /// Per charge id, per account: what its transactions posted.
    posted: BTreeMap<String, Movements>,
}

pub(super) async fn recorded(db: &Db) -> Result<Recorded> {
    let charges = crate::ledger::charges::all(db.pool()).await?;
    let policies = crate::ledger::policies::all(db).await?;
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

/// Splits re-derived from each charge's policy and lifetime, and the lifetimes' chain.
pub(super) fn splits(recorded: &Recorded) -> Option<Violation> {
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
pub(super) fn charge_states(recorded: &Recorded) -> Result<BTreeMap<String, i64>, Violation> {
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
        let platform = crate::ledger::derivation::reversed_platform(charge);
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
pub(super) async fn charge_events(db: &Db, recorded: &Recorded) -> Result<Option<Violation>> {
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
        let Ok(event) = crate::ledger::processor_events::parse(payload.as_bytes()) else {
            return Ok(Some(violation(
                "charge_events",
                format!("billing event {id}"),
                "it was applied but its stored payload does not parse".to_owned(),
            )));
        };
        if crate::ledger::processor_events::concerns_platform_invoice(&event) {
            // A platform invoice's event: its postings are checked with the invoices.
            continue;
        }
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
pub(super) fn charge_postings(
    recorded: &Recorded,
    frozen_by: &BTreeMap<String, i64>,
) -> Result<Movements, Violation> {
    let mut total = Movements::new();
    let empty = Movements::new();
    for charge in &recorded.charges {
        let frozen = frozen_by.get(&charge.id).copied().unwrap_or(0);
        let expected = crate::ledger::derivation::charge(charge, frozen);
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
