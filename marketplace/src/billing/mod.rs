//! The platform's own billing: what tenants pay for their plan, their paid plugins and their
//! usage.
//!
//! - **Plans have prices** ([`crate::tenants::Plan::price_monthly`], a trial length). What a
//!   tenant was on, when and at what price is kept as spans ([`periods`]); an invoice prorates
//!   each span over the days of its month, so an upgrade is charged from the moment it happens.
//! - **Subscriptions** ([`subscription`]): a tenant admin starts a trial once, upgrades at once,
//!   downgrades or cancels at the end of the month (refused, with every reason, while the
//!   tenant's installs or data do not fit the smaller plan). A change reaches the sandboxes at
//!   once and is audited.
//! - **Coupons** ([`coupons`]): operator-made codes, percent or amount off the plan, once,
//!   for some months or forever; redeeming one again changes nothing.
//! - **Invoices** ([`invoices`]): one per tenant and month, plan + paid plugins + usage, lines
//!   in minor units rounded down as the ledger rounds; numbered and immutable once issued,
//!   corrected by credit notes; a PDF ([`pdf`]) for each. Collected through the payment
//!   [`processor`]; paid invoices post to the revenue-share ledger.
//! - **Dunning** ([`dunning`]): a declined payment makes the tenant `past_due`, retried on a
//!   schedule with an e-mail each time; after the grace period the tenant is suspended —
//!   events and plugin HTTP answer 402 `payment_required` ([`crate::admission`]) while installs
//!   keep their data — until a payment restores it at once. Operators suspend and unsuspend
//!   by hand too.
//! - **Quota alerts** ([`alerts`]) at 80% and 100% of the month's invocations, once each.
//! - **E-mail** ([`outbox`], [`mail`]): written in the transaction of what it reports,
//!   delivered over SMTP with retries.
//!
//! [`cycle::tick`] does what time brings (trials ending, month ends, invoicing, retries,
//! suspensions, alerts, e-mail); a running server calls it periodically.

pub mod account;
pub mod alerts;
pub mod coupons;
pub mod cycle;
pub mod dunning;
pub mod estimate;
pub mod invoices;
pub mod mail;
pub mod outbox;
pub mod pdf;
pub mod periods;
pub mod processor;
mod routes;
pub mod subscription;
pub mod suspension;

pub(crate) use routes::routes;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::DAY_MS;
use crate::error::{Error, Result};
use processor::{Processor, ProcessorError};

/// How the platform bills tenants.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// The payment processor; `None`: billing is not configured (plan changes that cost money
    /// answer 409 `billing_not_configured`, and nothing is invoiced).
    pub processor: Option<Arc<dyn Processor>>,
    /// Where e-mail leaves; `None` keeps it queued in the outbox.
    pub mail: Option<mail::MailSettings>,
    /// The address people reach this platform at (links in e-mail, the processor's return
    /// pages), without a trailing slash.
    pub public_url: String,
    /// Waits after the 1st, 2nd, … declined payment of an invoice before it is tried again;
    /// after the last, it is not retried until the payment method changes.
    pub retry_after_ms: Vec<i64>,
    /// How long a tenant stays `past_due` before it is suspended.
    pub suspend_after_ms: i64,
    /// How long before a trial ends its tenant is told.
    pub trial_warning_ms: i64,
    /// How often a running server does [`cycle::tick`].
    pub tick_every: Duration,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            processor: None,
            mail: None,
            public_url: "http://127.0.0.1:8080".to_owned(),
            retry_after_ms: vec![3 * DAY_MS, 5 * DAY_MS, 7 * DAY_MS],
            suspend_after_ms: 14 * DAY_MS,
            trial_warning_ms: 3 * DAY_MS,
            tick_every: Duration::from_secs(5 * 60),
        }
    }
}

impl BillingSettings {
    /// The processor, or why there is none.
    ///
    /// # Errors
    ///
    /// 409 `billing_not_configured`.
    pub fn processor(&self) -> Result<&Arc<dyn Processor>> {
        self.processor.as_ref().ok_or_else(not_configured)
    }
}

/// The 409 of a billing action on a server with no processor.
pub(crate) fn not_configured() -> Error {
    Error::Conflict {
        code: "billing_not_configured",
        message: "this server has no payment processor configured \
                  (`plinth serve --billing-processor-key`)"
            .to_owned(),
        details: None,
    }
}

impl From<ProcessorError> for Error {
    fn from(error: ProcessorError) -> Error {
        match error {
            ProcessorError::Declined { code, message } => Error::PaymentRequired {
                message: format!("the payment method was declined ({code}): {message}"),
            },
            ProcessorError::Rejected { code, message, .. } if code == "resource_missing" => {
                Error::bad_request(
                    "unknown_payment_method",
                    format!("the payment processor does not know it: {message}"),
                )
            }
            ProcessorError::Rejected {
                status,
                code,
                message,
            } => Error::ProcessorUnavailable(format!(
                "the payment processor refused the request ({status} {code}): {message}"
            )),
            ProcessorError::Unavailable(why) => {
                Error::ProcessorUnavailable(format!("the payment processor is unavailable: {why}"))
            }
        }
    }
}
