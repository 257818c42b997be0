//! The revenue-share ledger: paid installs, a double-entry ledger, processor webhooks, usage
//! charges, refunds, disputes, payouts and statements.
//!
//! # Money
//!
//! Every amount is an `i64` of minor units (cents) with an ISO 4217 currency code beside it;
//! nothing in this module uses floating point (a test scans the sources). A posting's amount is
//! signed: a **debit is positive, a credit negative**, and the postings of every transaction sum
//! to zero per currency ([`posting::post`] refuses anything else). Liability accounts (what is
//! owed to publishers, payouts in transit) and revenue accounts therefore carry negative
//! balances; reports show them negated as "owed" or "earned".
//!
//! # The flow of a charge
//!
//! 1. Installing a paid plugin starts a [`subscriptions`] row; the processor's invoices name it.
//! 2. A signed `invoice.paid` ([`webhook`], [`processor_events`]) records a [`charges`] row and its split
//!    ([`split`]): the processor clearing account is debited the gross less the processor fee,
//!    processor fees the fee, and the platform's and the publisher's parts are credited to
//!    platform revenue and the publisher's *held* account. Usage-priced plugins are billed once
//!    a month by [`usage_charges`] (tenant receivable → split) and settled by `invoice.paid`.
//! 3. After the hold ([`LedgerSettings::hold_ms`]) [`charges::release_due`] moves the
//!    publisher's remaining part from *held* to *available*.
//! 4. [`refunds`] and [`disputes`] reverse the split proportionally and freeze the publisher's
//!    part while a dispute is open.
//! 5. [`payouts`] pays every publisher whose available balance reaches the threshold, once per
//!    run id, into *payouts in transit*, and writes the payout file; marking a payout paid or
//!    failed settles it.
//! 6. [`statements`] reports per publisher and month; [`verify`] re-derives every charge,
//!    payout and balance and checks every invariant.
//!
//! # Exact under concurrency, disorder and tampering
//!
//! Every money change takes the ledger lock first ([`lock`]), so on both backends a change
//! starts from what every earlier one committed; every guarded update checks that it changed
//! its row. Processor events are applied in whatever order they arrive, and one that arrives
//! before what it concerns waits, stored, until it can be applied in the processor's order
//! ([`processor_events`]). [`verify`] recomputes what each charge and payout should have posted
//! from its recorded inputs and names any posting or balance that differs.

pub mod accounts;
pub mod charges;
pub mod derivation;
pub mod disputes;
pub mod lock;
pub mod money;
pub mod payouts;
pub mod policies;
pub mod posting;
pub mod processor_events;
pub mod refunds;
mod routes;
pub mod split;
pub mod statements;
pub mod subscriptions;
pub mod usage_charges;
pub mod verify;
pub mod webhook;

use std::path::PathBuf;

pub(crate) use routes::routes;

use crate::clock::DAY_MS;
use split::{FeePolicy, SplitPolicy};

/// The ledger's settings: webhook secret, hold, payout threshold, split and fee policies.
#[derive(Clone)]
pub struct LedgerSettings {
    /// The processor's webhook signing secret; without it `POST /v1/billing/webhook` answers
    /// 503 `billing_not_configured`.
    pub webhook_secret: Option<String>,
    /// How old a webhook's signed timestamp may be (either way), in seconds. Default 300.
    pub webhook_tolerance_secs: i64,
    /// How long a publisher's part of a charge is held before it can be paid out, in
    /// milliseconds, counted from when the charge was paid. Default 30 days.
    pub hold_ms: i64,
    /// The least available balance, in minor units of its currency, that a payout run pays.
    /// Default 2500 (25.00).
    pub payout_threshold: i64,
    /// The split between platform and publisher.
    pub split: SplitPolicy,
    /// The processor's fee and who bears it.
    pub fees: FeePolicy,
    /// Where payout files are written (`<run id>.csv` and `<run id>.json`).
    pub payout_dir: PathBuf,
    /// How long a processor event may wait for what it concerns before it is reported
    /// unmatched, in milliseconds. Default 3 days: how long the processor retries a delivery.
    pub unmatched_after_ms: i64,
}

impl std::fmt::Debug for LedgerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerSettings")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<set>"),
            )
            .field("webhook_tolerance_secs", &self.webhook_tolerance_secs)
            .field("hold_ms", &self.hold_ms)
            .field("payout_threshold", &self.payout_threshold)
            .field("split", &self.split)
            .field("fees", &self.fees)
            .field("payout_dir", &self.payout_dir)
            .field("unmatched_after_ms", &self.unmatched_after_ms)
            .finish()
    }
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            webhook_secret: None,
            webhook_tolerance_secs: 300,
            hold_ms: 30 * DAY_MS,
            payout_threshold: 2500,
            split: SplitPolicy::default(),
            fees: FeePolicy::default(),
            payout_dir: PathBuf::from("plinth-data").join("payouts"),
            unmatched_after_ms: 3 * DAY_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    /// No floating point in money code: every source file of the ledger is scanned.
    #[test]
    fn the_ledger_has_no_floats() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ledger");
        let banned = [concat!("f", "32"), concat!("f", "64"), concat!(" as ", "f")];
        let mut scanned = 0;
        let mut dirs = vec![dir.clone()];
        while let Some(next) = dirs.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (number, line) in text.lines().enumerate() {
                    for word in banned {
                        assert!(
                            !line.contains(word),
                            "{}:{}: `{word}` in money code: {line}",
                            path.display(),
                            number + 1
                        );
                    }
                }
                scanned += 1;
            }
        }
        assert!(
            scanned >= 10,
            "only {scanned} files scanned in {}",
            dir.display()
        );
    }
}
