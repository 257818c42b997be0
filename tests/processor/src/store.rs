//! What the double holds, in memory: Stripe's objects and their JSON views, the idempotency
//! answers, the requests it received and the events it sent.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::{Request, SentEvent};

/// A new id: Stripe's prefix and 32 hex digits (a UUIDv7: unique, in creation order).
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Stripe's test payment methods the double knows (`pm_card_visa`, …): attaching one gives
/// the customer a copy of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestCard {
    /// `pm_card_visa`: Visa 4242, payments succeed.
    Visa,
    /// `pm_card_chargeCustomerFail`: Visa 0341, attaches, every payment is declined.
    ChargeCustomerFail,
}

impl TestCard {
    /// The card a test token names.
    pub fn from_token(token: &str) -> Option<TestCard> {
        match token {
            "pm_card_visa" => Some(TestCard::Visa),
            "pm_card_chargeCustomerFail" => Some(TestCard::ChargeCustomerFail),
            _ => None,
        }
    }

    /// The card's brand.
    pub fn brand(self) -> &'static str {
        "visa"
    }

    /// The card's last four digits.
    pub fn last4(self) -> &'static str {
        match self {
            TestCard::Visa => "4242",
            TestCard::ChargeCustomerFail => "0341",
        }
    }

    /// Whether every payment from it is declined.
    pub fn declines(self) -> bool {
        self == TestCard::ChargeCustomerFail
    }
}

/// A customer.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub default_payment_method: Option<String>,
    pub created: i64,
}

impl Customer {
    /// Stripe's `customer` object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "customer",
            "name": self.name,
            "email": self.email,
            "metadata": self.metadata,
            "invoice_settings": { "default_payment_method": self.default_payment_method },
            "created": self.created,
            "livemode": false,
        })
    }
}

/// A payment method attached to a customer.
#[derive(Debug, Clone)]
pub(crate) struct PaymentMethod {
    pub id: String,
    pub card: TestCard,
    pub customer: String,
    pub created: i64,
}

impl PaymentMethod {
    /// Stripe's `payment_method` object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_method",
            "type": "card",
            "customer": self.customer,
            "card": { "brand": self.card.brand(), "last4": self.card.last4() },
            "created": self.created,
            "livemode": false,
        })
    }
}

/// A Checkout session in `setup` mode.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub customer: String,
    pub url: String,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub setup_intent: String,
    /// Set when complete.
    pub payment_method: Option<String>,
    pub created: i64,
}

impl Session {
    /// Stripe's `checkout.session` object; its setup intent expanded or as its id.
    pub fn json(&self, expand_setup_intent: bool) -> Value {
        let complete = self.payment_method.is_some();
        let setup_intent = if expand_setup_intent {
            json!({
                "id": self.setup_intent,
                "object": "setup_intent",
                "customer": self.customer,
                "payment_method": self.payment_method,
                "status": if complete { "succeeded" } else { "requires_payment_method" },
                "usage": "off_session",
                "livemode": false,
            })
        } else {
            Value::from(self.setup_intent.as_str())
        };
        json!({
            "id": self.id,
            "object": "checkout.session",
            "mode": "setup",
            "customer": self.customer,
            "status": if complete { "complete" } else { "open" },
            "url": if complete { Value::Null } else { Value::from(self.url.as_str()) },
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "setup_intent": setup_intent,
            "payment_method_types": ["card"],
            "created": self.created,
            "livemode": false,
        })
    }
}

/// An invoice's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvoiceStatus {
    Draft,
    Open,
    Paid,
}

impl InvoiceStatus {
    /// Stripe's word.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
        }
    }
}

/// An invoice item (a line of its invoice).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The invoice item's id (`ii_…`).
    pub item: String,
    /// The line's id on the invoice (`il_…`).
    pub id: String,
    pub description: Option<String>,
    pub amount: i64,
}

/// An invoice.
#[derive(Debug, Clone)]
pub(crate) struct Invoice {
    pub id: String,
    /// Creation order.
    pub seq: u64,
    pub customer: String,
    pub currency: String,
    pub description: Option<String>,
    pub collection_method: String,
    pub auto_advance: bool,
    pub metadata: BTreeMap<String, String>,
    pub status: InvoiceStatus,
    pub number: Option<String>,
    pub lines: Vec<Line>,
    /// `max(0, sum of lines)`, fixed when finalized.
    pub total: i64,
    /// The total less the credit notes issued while it was open.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub attempt_count: u32,
    pub charge: Option<String>,
    pub pre_payment_credit_notes_amount: i64,
    pub post_payment_credit_notes_amount: i64,
    pub created: i64,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
}

impl Invoice {
    /// The sum of the lines (negative lines included; saturating).
    pub fn subtotal(&self) -> i64 {
        self.lines
            .iter()
            .fold(0i64, |sum, line| sum.saturating_add(line.amount))
    }

    /// What is still to be paid.
    pub fn amount_remaining(&self) -> i64 {
        match self.status {
            InvoiceStatus::Paid => 0,
            InvoiceStatus::Draft => self.subtotal().max(0),
            InvoiceStatus::Open => self.amount_due - self.amount_paid,
        }
    }

    /// Stripe's `invoice` object.
    pub fn json(&self) -> Value {
        let draft = self.status == InvoiceStatus::Draft;
        let total = if draft {
            self.subtotal().max(0)
        } else {
            self.total
        };
        let amount_due = if draft { total } else { self.amount_due };
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|line| {
                json!({
                    "id": line.id,
                    "object": "line_item",
                    "invoice_item": line.item,
                    "description": line.description,
                    "amount": line.amount,
                    "currency": self.currency,
                    "quantity": 1,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "invoice",
            "customer": self.customer,
            "number": self.number,
            "status": self.status.as_str(),
            "currency": self.currency,
            "description": self.description,
            "collection_method": self.collection_method,
            "auto_advance": self.auto_advance,
            "subtotal": self.subtotal(),
            "total": total,
            "amount_due": amount_due,
            "amount_paid": self.amount_paid,
            "amount_remaining": self.amount_remaining(),
            "attempt_count": self.attempt_count,
            "attempted": self.attempt_count > 0,
            "paid": self.status == InvoiceStatus::Paid,
            "charge": self.charge,
            "pre_payment_credit_notes_amount": self.pre_payment_credit_notes_amount,
            "post_payment_credit_notes_amount": self.post_payment_credit_notes_amount,
            "metadata": self.metadata,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": false,
                "total_count": self.lines.len(),
            },
            "created": self.created,
            "status_transitions": {
                "finalized_at": self.finalized_at,
                "paid_at": self.paid_at,
            },
            "livemode": false,
        })
    }

    /// Stripe's `invoiceitem` object for `line`.
    pub fn item_json(&self, line: &Line) -> Value {
        json!({
            "id": line.item,
            "object": "invoiceitem",
            "customer": self.customer,
            "invoice": self.id,
            "amount": line.amount,
            "currency": self.currency,
            "description": line.description,
            "livemode": false,
        })
    }
}

/// A charge: a payment attempt on an invoice.
#[derive(Debug, Clone)]
pub(crate) struct Charge {
    pub id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub customer: String,
    pub invoice: String,
    pub payment_method: String,
    pub succeeded: bool,
    pub refunds: Vec<String>,
    pub created: i64,
}

impl Charge {
    /// Stripe's `charge` object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_refunded": self.amount_refunded,
            "currency": self.currency,
            "customer": self.customer,
            "invoice": self.invoice,
            "payment_method": self.payment_method,
            "status": if self.succeeded { "succeeded" } else { "failed" },
            "paid": self.succeeded,
            "refunded": self.succeeded && self.amount_refunded == self.amount,
            "failure_code": if self.succeeded { Value::Null } else { Value::from("card_declined") },
            "refunds": self.refunds,
            "created": self.created,
            "livemode": false,
        })
    }
}

/// A line of a credit note.
#[derive(Debug, Clone)]
pub(crate) struct CreditNoteLine {
    pub kind: String,
    pub description: Option<String>,
    pub invoice_line_item: Option<String>,
    pub quantity: i64,
    pub unit_amount: Option<i64>,
    pub amount: i64,
}

/// A credit note against a finalized invoice.
#[derive(Debug, Clone)]
pub(crate) struct CreditNote {
    pub id: String,
    pub number: String,
    pub invoice: String,
    pub customer: String,
    pub currency: String,
    pub total: i64,
    pub pre_payment_amount: i64,
    pub post_payment_amount: i64,
    pub refund_amount: i64,
    pub credit_amount: i64,
    pub out_of_band_amount: i64,
    pub refund: Option<String>,
    pub memo: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub lines: Vec<CreditNoteLine>,
    pub created: i64,
}

impl CreditNote {
    /// Stripe's `credit_note` object.
    pub fn json(&self) -> Value {
        let kind = match (self.pre_payment_amount > 0, self.post_payment_amount > 0) {
            (true, true) => "mixed",
            (true, false) => "pre_payment",
            _ => "post_payment",
        };
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|line| {
                json!({
                    "object": "credit_note_line_item",
                    "type": line.kind,
                    "description": line.description,
                    "invoice_line_item": line.invoice_line_item,
                    "quantity": line.quantity,
                    "unit_amount": line.unit_amount,
                    "amount": line.amount,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "credit_note",
            "number": self.number,
            "invoice": self.invoice,
            "customer": self.customer,
            "currency": self.currency,
            "amount": self.total,
            "subtotal": self.total,
            "total": self.total,
            "pre_payment_amount": self.pre_payment_amount,
            "post_payment_amount": self.post_payment_amount,
            "refund_amount": self.refund_amount,
            "credit_amount": self.credit_amount,
            "out_of_band_amount": self.out_of_band_amount,
            "refund": self.refund,
            "memo": self.memo,
            "metadata": self.metadata,
            "status": "issued",
            "type": kind,
            "lines": { "object": "list", "data": lines, "has_more": false },
            "created": self.created,
            "livemode": false,
        })
    }
}

/// What a `POST` with an idempotency key answered.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    /// The method, the path and the sorted parameters of the first request.
    pub fingerprint: (String, String, Vec<(String, String)>),
    pub status: u16,
    pub body: String,
}

/// Everything the double holds.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub customers: HashMap<String, Customer>,
    pub payment_methods: HashMap<String, PaymentMethod>,
    pub sessions: HashMap<String, Session>,
    pub invoices: HashMap<String, Invoice>,
    pub charges: HashMap<String, Charge>,
    pub credit_notes: HashMap<String, CreditNote>,
    /// The last invoice number given (`DBL-0001` is 1).
    pub invoice_numbers: u64,
    /// The last creation sequence number given.
    pub sequence: u64,
    pub idempotency: HashMap<String, Saved>,
    pub requests: Vec<Request>,
    pub events: Vec<SentEvent>,
    /// How many more `/v1` requests answer 500.
    pub fail_next: usize,
    pub webhook_url: Option<String>,
}

impl Store {
    /// The next creation sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// The customer `id`, as a parameter named `param`.
    pub fn customer_param(
        &self,
        id: &str,
        param: &str,
    ) -> Result<&Customer, crate::error::ApiError> {
        self.customers
            .get(id)
            .ok_or_else(|| crate::error::ApiError::no_such("customer", id, param))
    }

    /// Turns `events` (type, object) into Stripe events, keeps them and answers them with
    /// where to deliver them.
    pub fn commit_events(
        &mut self,
        events: Vec<(&'static str, Value)>,
    ) -> (Option<String>, Vec<SentEvent>) {
        let sent: Vec<SentEvent> = events
            .into_iter()
            .map(|(kind, object)| {
                let id = new_id("evt");
                let body = json!({
                    "id": id,
                    "object": "event",
                    "type": kind,
                    "created": now(),
                    "data": { "object": object },
                    "livemode": false,
                    "pending_webhooks": 1,
                })
                .to_string();
                SentEvent {
                    id,
                    kind: kind.to_owned(),
                    body,
                }
            })
            .collect();
        self.events.extend(sent.iter().cloned());
        (self.webhook_url.clone(), sent)
    }
}
