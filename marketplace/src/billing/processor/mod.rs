//! The payment processor the platform bills tenants through: the [`Processor`] interface and
//! its Stripe implementation over Stripe's HTTP API ([`stripe`]).
//!
//! Plinth computes every invoice itself (plan, paid plugins, usage, discounts: see
//! [`super::invoices`]) and asks the processor to keep the customer and its payment method, to
//! collect each finalized invoice, and to refund or credit it. Every write carries an
//! idempotency key derived from what it does (`plinth-invoice-<id>-finalize`), so a call
//! retried after a timeout or a crash changes nothing the first one did. The processor answers
//! what happened later, too, through signed webhooks (`invoice.paid`,
//! `invoice.payment_failed`, `invoice.finalized`, …) that [`crate::ledger::processor_events`]
//! stores and applies once.
//!
//! Tests and local development point the base URL at `plinth-processor-double`
//! (`tests/processor`), a loopback server that speaks the same request and response shapes.

pub mod stripe;

use futures_util::future::BoxFuture;

/// What went wrong talking to the processor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// The payment method was declined (Stripe's `card_error`): the payment failed, nothing
    /// else did.
    #[error("the payment was declined ({code}): {message}")]
    Declined {
        /// The processor's code, e.g. `card_declined`.
        code: String,
        /// The processor's sentence.
        message: String,
    },
    /// The processor refused the request (a 4xx other than a decline): e.g. an unknown payment
    /// method (`resource_missing`).
    #[error("the payment processor refused the request ({status} {code}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The processor's code, e.g. `resource_missing`.
        code: String,
        /// The processor's sentence.
        message: String,
    },
    /// The processor could not be reached, timed out, answered 5xx or something unreadable:
    /// try again later with the same idempotency key.
    #[error("the payment processor is unavailable: {0}")]
    Unavailable(String),
}

/// A customer to create: one per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer<'a> {
    /// The tenant's id (stored as `metadata[plinth_tenant]`).
    pub tenant_id: &'a str,
    /// The tenant's display name.
    pub name: &'a str,
    /// Where the processor sends its own receipts, if anywhere.
    pub email: Option<&'a str>,
}

/// A card or other payment method attached to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    /// The processor's id, e.g. `pm_1…`.
    pub id: String,
    /// The card brand, e.g. `visa` (empty when not a card).
    pub brand: String,
    /// The last four digits (empty when not a card).
    pub last4: String,
}

/// A page of the processor's where the customer enters a payment method (Stripe Checkout in
/// `setup` mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSession {
    /// The session's id, e.g. `cs_…`.
    pub id: String,
    /// Where to send the customer's browser.
    pub url: String,
}

/// One line of an invoice as the processor is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorLine {
    /// What the line is for, for people.
    pub description: String,
    /// Minor units; negative for a discount.
    pub amount: i64,
}

/// An invoice to create and finalize at the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice<'a> {
    /// Plinth's invoice id (stored as `metadata[plinth_invoice]`; webhooks carry it back).
    pub invoice_id: &'a str,
    /// Plinth's invoice number, for people (`metadata[plinth_number]`).
    pub number: &'a str,
    /// The tenant's id (`metadata[plinth_tenant]`).
    pub tenant_id: &'a str,
    /// The processor's customer.
    pub customer: &'a str,
    /// ISO 4217, uppercase (sent lowercase, as Stripe wants).
    pub currency: &'a str,
    /// The lines; their sum is the invoice's total, more than 0.
    pub lines: &'a [ProcessorLine],
}

/// An invoice as the processor holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorInvoice {
    /// The processor's id, e.g. `in_…`.
    pub id: String,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    /// What the processor will collect, in minor units.
    pub amount_due: i64,
}

/// What collecting an invoice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Paid; the processor's charge id if it gave one.
    Paid {
        /// The processor's charge, e.g. `ch_…`.
        charge: Option<String>,
    },
    /// The payment method was declined: the invoice stays open.
    Declined {
        /// The processor's code, e.g. `card_declined`.
        code: String,
        /// The processor's sentence.
        message: String,
    },
}

/// A credit note against a finalized invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCreditNote<'a> {
    /// Plinth's credit note id (`metadata[plinth_credit_note]`).
    pub credit_note_id: &'a str,
    /// The processor's invoice.
    pub invoice: &'a str,
    /// Minor units credited, more than 0.
    pub amount: i64,
    /// Why, for people.
    pub memo: &'a str,
    /// Whether the amount is refunded to the payment method (the invoice was paid) or only
    /// lowers what is due (it is open).
    pub refund: bool,
}

/// A tenant's metered usage, reported to the processor's meter (informational there: Plinth's
/// invoice already prices it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport<'a> {
    /// The processor's customer.
    pub customer: &'a str,
    /// The meter's event name, e.g. `plinth_invocations`.
    pub event_name: &'a str,
    /// How much was used.
    pub value: u64,
    /// Unique per report (the processor drops a repeat): `<tenant>:<month>`.
    pub identifier: &'a str,
    /// When, in Unix seconds.
    pub timestamp: i64,
}

/// The processor's future answers.
pub type Answer<'a, T> = BoxFuture<'a, Result<T, ProcessorError>>;

/// A payment processor. Every method that writes takes an idempotency `key`: the same key
/// again answers what the first call did and changes nothing.
pub trait Processor: Send + Sync + std::fmt::Debug {
    /// Creates a customer; answers its id.
    fn create_customer<'a>(&'a self, customer: NewCustomer<'a>, key: &'a str)
    -> Answer<'a, String>;

    /// Attaches `payment_method` to `customer` and makes it the default for its invoices.
    fn attach_payment_method<'a>(
        &'a self,
        customer: &'a str,
        payment_method: &'a str,
        key: &'a str,
    ) -> Answer<'a, PaymentMethod>;

    /// Starts a hosted page where the customer enters a payment method; the browser comes back
    /// to `success_url` (in which `{CHECKOUT_SESSION_ID}` is replaced by the session's id) or
    /// `cancel_url`.
    fn setup_session<'a>(
        &'a self,
        customer: &'a str,
        success_url: &'a str,
        cancel_url: &'a str,
        key: &'a str,
    ) -> Answer<'a, SetupSession>;

    /// The payment method a completed setup session collected, `None` while it is not
    /// complete. Answers [`ProcessorError::Rejected`] for a session of another customer.
    fn setup_session_payment_method<'a>(
        &'a self,
        customer: &'a str,
        session: &'a str,
    ) -> Answer<'a, Option<String>>;

    /// Creates the invoice with its lines and finalizes it (no automatic collection).
    fn create_invoice<'a>(
        &'a self,
        invoice: NewInvoice<'a>,
        key: &'a str,
    ) -> Answer<'a, ProcessorInvoice>;

    /// Collects the finalized `invoice` from the customer's default payment method. A decline
    /// is [`Collection::Declined`], not an error.
    fn collect<'a>(&'a self, invoice: &'a str, key: &'a str) -> Answer<'a, Collection>;

    /// Issues a credit note; answers its processor id.
    fn credit_note<'a>(&'a self, note: NewCreditNote<'a>, key: &'a str) -> Answer<'a, String>;

    /// Reports metered usage to the processor's meter.
    fn report_usage<'a>(&'a self, usage: UsageReport<'a>, key: &'a str) -> Answer<'a, ()>;
}
