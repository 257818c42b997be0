//! What a charge and a payout should have posted, derived from what is recorded of them by the
//! rules of [`super::charges`], [`super::refunds`], [`super::disputes`] and [`super::payouts`]:
//! the half of [`super::verify`] that knows the rules. Pure functions; amounts are signed as
//! postings are (debit positive).
//!
//! A charge's postings, summed per account over all its transactions, depend only on where it
//! ends up, not on the order things happened in:
//!
//! - processor clearing: `gross - fee - reversed` once paid (nothing while only billed);
//! - tenant receivable: `gross` while billed, 0 once paid;
//! - processor fees: `fee`; platform revenue: `-(platform + publisher_fee)`;
//! - refunds: `floor(platform × reversed / gross)` (the cumulative rounding rule);
//! - the publisher's remaining part, `publisher - publisher_fee - (reversed - platform part)`,
//!   credited where it sits: *frozen* for what an open dispute froze, the rest *available* once
//!   released, *held* before.

use std::collections::BTreeMap;

use super::accounts::{AccountKey, AccountKind};
use super::charges::Charge;
use super::split::share;

/// Signed amounts per account id.
pub type Movements = BTreeMap<String, i64>;

fn add(movements: &mut Movements, account: AccountKey, amount: i64) {
    if amount != 0 {
        *movements.entry(account.id()).or_default() += amount;
    }
}

/// The platform's part of a charge's reversals so far, by the cumulative rounding rule.
pub fn reversed_platform(charge: &Charge) -> i64 {
    share(charge.platform_share, charge.reversed(), charge.gross)
}

/// The net movement of every account over all of `charge`'s transactions, given the amount
/// its open dispute froze (`frozen`, 0 without one).
pub fn charge(charge: &Charge, frozen: i64) -> Movements {
    let cur = charge.currency.as_str();
    let publisher = charge.publisher_id.as_str();
    let mut out = Movements::new();
    let reversed = charge.reversed();
    let platform_reversed = reversed_platform(charge);
    if charge.status == "paid" {
        add(
            &mut out,
            AccountKey::platform(AccountKind::ProcessorClearing, cur),
            charge.gross - charge.fee - reversed,
        );
    } else {
        add(
            &mut out,
            AccountKey::owned(AccountKind::TenantReceivable, &charge.tenant_id, cur),
            charge.gross,
        );
    }
    add(
        &mut out,
        AccountKey::platform(AccountKind::ProcessorFees, cur),
        charge.fee,
    );
    add(
        &mut out,
        AccountKey::platform(AccountKind::PlatformRevenue, cur),
        -(charge.platform_share + charge.publisher_fee),
    );
    add(
        &mut out,
        AccountKey::platform(AccountKind::Refunds, cur),
        platform_reversed,
    );
    let remaining = charge.publisher_share - charge.publisher_fee - (reversed - platform_reversed);
    add(
        &mut out,
        AccountKey::owned(AccountKind::PublisherFrozen, publisher, cur),
        -frozen,
    );
    add(
        &mut out,
        AccountKey::owned(charge.publisher_location(), publisher, cur),
        -(remaining - frozen),
    );
    out
}

/// A payout as [`payout`] needs it.
#[derive(Debug, Clone)]
pub struct PayoutFacts<'a> {
    /// The publisher's id.
    pub publisher_id: &'a str,
    /// ISO 4217.
    pub currency: &'a str,
    /// Minor units.
    pub amount: i64,
    /// `in_transit`, `paid` or `failed`.
    pub status: &'a str,
}

/// What a payout's transactions should each have moved: the payout itself, then its
/// settlement if settled (`paid`: to processor clearing; `failed`: back to available), as
/// `(settlement status or "payout", movements)`.
pub fn payout(facts: &PayoutFacts<'_>) -> Vec<(&'static str, Movements)> {
    let (publisher, cur, amount) = (facts.publisher_id, facts.currency, facts.amount);
    let available = || AccountKey::owned(AccountKind::PublisherAvailable, publisher, cur);
    let in_transit = || AccountKey::owned(AccountKind::PayoutsInTransit, publisher, cur);
    let mut made = Movements::new();
    add(&mut made, available(), amount);
    add(&mut made, in_transit(), -amount);
    let mut out = vec![("payout", made)];
    let settled_to = match facts.status {
        "paid" => Some((
            "paid",
            AccountKey::platform(AccountKind::ProcessorClearing, cur),
        )),
        "failed" => Some(("failed", available())),
        _ => None,
    };
    if let Some((status, to)) = settled_to {
        let mut settled = Movements::new();
        add(&mut settled, in_transit(), amount);
        add(&mut settled, to, -amount);
        out.push((status, settled));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(gross: i64, platform: i64, fee: i64, publisher_fee: i64) -> Charge {
        Charge {
            id: "c".into(),
            reference: "in_1".into(),
            processor_charge: None,
            processor_invoice: None,
            source: "subscription".into(),
            subscription_id: None,
            tenant_id: "t".into(),
            plugin_id: "p.x".into(),
            publisher_id: "pub".into(),
            currency: "USD".into(),
            gross,
            platform_share: platform,
            publisher_share: gross - platform,
            fee,
            publisher_fee,
            policy_version: 1,
            lifetime_before: 0,
            refunded: 0,
            charged_back: 0,
            reversed_platform: 0,
            status: "paid".into(),
            paid_at: Some(0),
            available_at: Some(0),
            released_at: None,
            period: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_charge_balances_and_puts_the_publishers_part_where_it_sits() {
        let mut charge = paid(10_000, 750, 30, 30);
        let moved = charge_movements_sum(&charge, 0);
        assert_eq!(moved, 0);
        let held = super::charge(&charge, 0);
        assert_eq!(held["publisher_held:pub:USD"], -9_220);
        assert_eq!(held["processor_clearing:USD"], 9_970);
        charge.refunded = 2_500;
        charge.released_at = Some(1);
        let after = super::charge(&charge, 0);
        assert_eq!(after["refunds:USD"], 187);
        assert_eq!(after["publisher_available:pub:USD"], -6_907);
        assert!(!after.contains_key("publisher_held:pub:USD"));
        assert_eq!(charge_movements_sum(&charge, 0), 0);
        let frozen = super::charge(&charge, 6_907);
        assert_eq!(frozen["publisher_frozen:pub:USD"], -6_907);
        assert!(!frozen.contains_key("publisher_available:pub:USD"));
    }

    fn charge_movements_sum(charge: &Charge, frozen: i64) -> i64 {
        super::charge(charge, frozen).values().sum()
    }

    #[test]
    fn a_failed_payout_returns_what_it_took() {
        let moves = payout(&PayoutFacts {
            publisher_id: "p",
            currency: "USD",
            amount: 500,
            status: "failed",
        });
        let mut net = Movements::new();
        for (_, movements) in &moves {
            for (account, amount) in movements {
                *net.entry(account.clone()).or_default() += amount;
            }
        }
        assert!(net.values().all(|amount| *amount == 0), "{net:?}");
        assert_eq!(moves.len(), 2);
    }
}
