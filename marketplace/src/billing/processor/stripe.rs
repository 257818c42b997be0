//! [`Processor`] over Stripe's HTTP API (`https://api.stripe.com`, or the loopback double of
//! `tests/processor`, which speaks the same shapes).
//!
//! # The wire
//!
//! - Every request carries `Authorization: Bearer <secret key>`; every `POST` an
//!   `Idempotency-Key` (Stripe answers a repeated key with the first answer and does nothing
//!   again) and a form-encoded body with bracketed keys (`metadata[plinth_invoice]=…`,
//!   `invoice_settings[default_payment_method]=…`, `lines[0][unit_amount]=…`).
//! - Errors are `{"error":{"type","code","decline_code","message"}}`. A 402 `card_error` is a
//!   decline ([`ProcessorError::Declined`]; [`Collection::Declined`] when collecting); 429
//!   (rate limited), 409 (the same idempotency key in flight), 5xx, a refused connection, a
//!   timeout and a body that is not Stripe's are [`ProcessorError::Unavailable`] (try again,
//!   same key); any other 4xx is [`ProcessorError::Rejected`].
//! - Answers are read up to [`MAX_RESPONSE_BYTES`]; ids that go into a path are checked to be
//!   Stripe-shaped (letters, digits, `_`, `-`) and percent-encoded anyway.
//!
//! # The calls
//!
//! | method | Stripe |
//! |---|---|
//! | [`Processor::create_customer`] | `POST /v1/customers` |
//! | [`Processor::attach_payment_method`] | `POST /v1/payment_methods/{pm}/attach`, then `POST /v1/customers/{id}` (`invoice_settings[default_payment_method]`, key `<key>-default`) |
//! | [`Processor::setup_session`] | `POST /v1/checkout/sessions` (`mode=setup`) |
//! | [`Processor::setup_session_payment_method`] | `GET /v1/checkout/sessions/{id}?expand[]=setup_intent` |
//! | [`Processor::create_invoice`] | `POST /v1/invoices` (`<key>-create`), `POST /v1/invoiceitems` per line (`<key>-item-<n>`), `POST /v1/invoices/{id}/finalize` (`<key>-finalize`) |
//! | [`Processor::collect`] | `POST /v1/invoices/{id}/pay` |
//! | [`Processor::credit_note`] | `POST /v1/credit_notes` (one `custom_line_item`) |

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    Answer, Collection, NewCreditNote, NewCustomer, NewInvoice, PaymentMethod, Processor,
    ProcessorError, ProcessorInvoice, SetupSession, UsageReport,
};

/// The most bytes of an answer read; a longer answer is [`ProcessorError::Unavailable`].
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The most characters of the processor's error message kept.
const MAX_MESSAGE_CHARS: usize = 500;

/// The longest id accepted into a path (Stripe's are far shorter).
const MAX_ID_CHARS: usize = 255;

/// A form body: `(key, value)` pairs, keys in Stripe's bracket notation.
type Form = Vec<(String, String)>;

/// Stripe, through its HTTP API.
#[derive(Clone)]
pub struct StripeProcessor {
    client: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
}

impl std::fmt::Debug for StripeProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProcessor")
            .field("base_url", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl StripeProcessor {
    /// A client of the API at `base_url` (`https://api.stripe.com`, or a double's
    /// `http://127.0.0.1:PORT`; a trailing slash or a path prefix is fine) with `secret_key`,
    /// giving up on each request after `timeout`. Redirects are not followed.
    ///
    /// # Errors
    ///
    /// [`ProcessorError::Unavailable`] when the URL is not an `http(s)` URL, the key cannot be
    /// a header value, or the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        secret_key: String,
        timeout: Duration,
    ) -> Result<StripeProcessor, ProcessorError> {
        let base = Url::parse(base_url).map_err(|e| {
            ProcessorError::Unavailable(format!("the processor's URL is invalid: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ProcessorError::Unavailable(
                "the processor's URL must be an http(s) URL".to_owned(),
            ));
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {secret_key}")).map_err(|_| {
                ProcessorError::Unavailable(
                    "the processor's secret key is not a valid header value".to_owned(),
                )
            })?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plinth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProcessorError::Unavailable(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(StripeProcessor {
            client,
            base,
            authorization,
        })
    }

    /// The URL of `segments` under the base (each segment percent-encoded).
    fn url(&self, segments: &[&str]) -> Result<Url, ProcessorError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| {
                ProcessorError::Unavailable("the processor's URL cannot take a path".to_owned())
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// `POST`s `form` to `segments` with idempotency `key`; answers the JSON body.
    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        form: &[(String, String)],
        key: &str,
    ) -> Result<T, ProcessorError> {
        let url = self.url(segments)?;
        let request = self
            .client
            .request(Method::POST, url)
            .header("Idempotency-Key", key)
            .form(form);
        self.send(request, "POST", segments).await
    }

    /// `GET`s `segments` with `query`; answers the JSON body.
    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, ProcessorError> {
        let url = self.url(segments)?;
        let request = self.client.request(Method::GET, url).query(query);
        self.send(request, "GET", segments).await
    }

    /// Sends `request` (authorized) and reads its answer: the parsed body on 2xx, the mapped
    /// error otherwise.
    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        segments: &[&str],
    ) -> Result<T, ProcessorError> {
        let path = log_path(segments);
        let response = request
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(|e| {
                tracing::debug!(method, path = %path, error = %e, "payment processor unreachable");
                ProcessorError::Unavailable(transport_error(&e))
            })?;
        let status = response.status();
        tracing::debug!(method, path = %path, status = status.as_u16(), "payment processor answered");
        let body = read_bounded(response).await?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| {
                ProcessorError::Unavailable(format!("unreadable answer to {method} {path}: {e}"))
            })
        } else {
            Err(error_from_answer(status, &body))
        }
    }
}

/// The path of `segments` for logs (`/v1/invoices/in_1/pay`).
fn log_path(segments: &[&str]) -> String {
    segments.iter().fold(String::new(), |mut path, segment| {
        path.push('/');
        path.push_str(segment);
        path
    })
}

/// A transport failure in words (no header, so never the key).
fn transport_error(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL (never a header): the host and path, no secret.
    format!("{what}: {error}")
}

/// Reads `response`'s body, at most [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, ProcessorError> {
    let too_large = || {
        ProcessorError::Unavailable(format!(
            "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProcessorError::Unavailable(transport_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Stripe's error envelope.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

/// Stripe's error object (the fields read).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
}

/// The error a non-2xx answer means (see the module's documentation).
fn error_from_answer(status: StatusCode, body: &[u8]) -> ProcessorError {
    let code = status.as_u16();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::CONFLICT
        || !status.is_client_error()
    {
        let detail = serde_json::from_slice::<ErrorEnvelope>(body)
            .ok()
            .and_then(|envelope| envelope.error.message)
            .map(|message| format!(": {}", truncate(&message)))
            .unwrap_or_default();
        return ProcessorError::Unavailable(format!("the processor answered {code}{detail}"));
    }
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return ProcessorError::Unavailable(format!(
            "the processor answered {code} with an unreadable body"
        ));
    };
    let message = truncate(error.message.as_deref().unwrap_or("(no message)"));
    if status == StatusCode::PAYMENT_REQUIRED && error.kind.as_deref() == Some("card_error") {
        let code = error
            .decline_code
            .or(error.code)
            .unwrap_or_else(|| "card_declined".to_owned());
        return ProcessorError::Declined { code, message };
    }
    let reason = error
        .code
        .or(error.kind)
        .unwrap_or_else(|| format!("http_{code}"));
    ProcessorError::Rejected {
        status: code,
        code: reason,
        message,
    }
}

/// `message` cut to [`MAX_MESSAGE_CHARS`].
fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// Checks that `id` (from storage or a browser) looks like a Stripe id before it goes into a
/// path; anything else is not found, as Stripe would answer.
fn checked_id<'a>(what: &str, id: &'a str) -> Result<&'a str, ProcessorError> {
    let shaped = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if shaped {
        Ok(id)
    } else {
        Err(ProcessorError::Rejected {
            status: 404,
            code: "resource_missing".to_owned(),
            message: format!("No such {what}"),
        })
    }
}

/// One form pair.
fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

/// The form creating a customer.
fn customer_form(customer: &NewCustomer<'_>) -> Form {
    let mut form = vec![pair("name", customer.name)];
    if let Some(email) = customer.email {
        form.push(pair("email", email));
    }
    form.push(pair("metadata[plinth_tenant]", customer.tenant_id));
    form
}

/// The form creating a draft invoice (its lines are added as invoice items).
fn invoice_form(invoice: &NewInvoice<'_>) -> Form {
    vec![
        pair("customer", invoice.customer),
        pair("currency", invoice.currency.to_ascii_lowercase()),
        pair("collection_method", "charge_automatically"),
        pair("auto_advance", "false"),
        pair("pending_invoice_items_behavior", "exclude"),
        pair("description", format!("Invoice {}", invoice.number)),
        pair("metadata[plinth_invoice]", invoice.invoice_id),
        pair("metadata[plinth_number]", invoice.number),
        pair("metadata[plinth_tenant]", invoice.tenant_id),
    ]
}

/// The form adding one line to the draft invoice `processor_invoice`.
fn invoice_item_form(
    invoice: &NewInvoice<'_>,
    processor_invoice: &str,
    description: &str,
    amount: i64,
) -> Form {
    vec![
        pair("customer", invoice.customer),
        pair("invoice", processor_invoice),
        pair("amount", amount.to_string()),
        pair("currency", invoice.currency.to_ascii_lowercase()),
        pair("description", description),
    ]
}

/// The form issuing a credit note of one custom line.
///
/// On a paid invoice the amount is refunded (`refund_amount`); on an open one it only lowers
/// what is due, which Stripe does by itself (the pre-payment part of a credit note), so no
/// `credit_amount` is sent: Stripe requires refund + credit + out-of-band amounts to equal the
/// post-payment part, which is 0 there.
fn credit_note_form(note: &NewCreditNote<'_>) -> Form {
    let mut form = vec![
        pair("invoice", note.invoice),
        pair("lines[0][type]", "custom_line_item"),
        pair("lines[0][description]", note.memo),
        pair("lines[0][quantity]", "1"),
        pair("lines[0][unit_amount]", note.amount.to_string()),
        pair("memo", note.memo),
        pair("metadata[plinth_credit_note]", note.credit_note_id),
    ];
    if note.refund {
        form.push(pair("refund_amount", note.amount.to_string()));
    }
    form
}

/// An object answered as its id.
#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

/// A field Stripe answers as an id or, expanded, as the object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdOrObject {
    /// Not expanded.
    Id(String),
    /// Expanded.
    Object(Created),
}

impl IdOrObject {
    fn id(&self) -> &str {
        match self {
            IdOrObject::Id(id) => id,
            IdOrObject::Object(object) => &object.id,
        }
    }
}

/// A payment method (the fields read).
#[derive(Debug, Deserialize)]
struct PaymentMethodBody {
    id: String,
    card: Option<CardBody>,
}

/// A payment method's card.
#[derive(Debug, Deserialize)]
struct CardBody {
    #[serde(default)]
    brand: String,
    #[serde(default)]
    last4: String,
}

/// A checkout session as created.
#[derive(Debug, Deserialize)]
struct SessionCreated {
    id: String,
    url: Option<String>,
}

/// A checkout session with its setup intent expanded.
#[derive(Debug, Deserialize)]
struct SessionBody {
    customer: Option<IdOrObject>,
    status: Option<String>,
    setup_intent: Option<SetupIntentField>,
}

/// The session's setup intent: expanded, as asked, or (unexpectedly) its id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SetupIntentField {
    Object(SetupIntentBody),
    /// Not expanded: only its id, which says nothing of the payment method.
    Id(#[allow(dead_code, reason = "matched, never read")] String),
}

/// A setup intent (the fields read).
#[derive(Debug, Deserialize)]
struct SetupIntentBody {
    payment_method: Option<IdOrObject>,
}

/// An invoice (the fields read).
#[derive(Debug, Deserialize)]
struct InvoiceBody {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    amount_due: i64,
    #[serde(default)]
    charge: Option<IdOrObject>,
}

impl Processor for StripeProcessor {
    fn create_customer<'a>(
        &'a self,
        customer: NewCustomer<'a>,
        key: &'a str,
    ) -> Answer<'a, String> {
        Box::pin(async move {
            let created: Created = self
                .post(&["v1", "customers"], &customer_form(&customer), key)
                .await?;
            Ok(created.id)
        })
    }

    fn attach_payment_method<'a>(
        &'a self,
        customer: &'a str,
        payment_method: &'a str,
        key: &'a str,
    ) -> Answer<'a, PaymentMethod> {
        Box::pin(async move {
            let customer = checked_id("customer", customer)?;
            let payment_method = checked_id("payment method", payment_method)?;
            let attached: PaymentMethodBody = self
                .post(
                    &["v1", "payment_methods", payment_method, "attach"],
                    &[pair("customer", customer)],
                    key,
                )
                .await?;
            let _customer: Created = self
                .post(
                    &["v1", "customers", customer],
                    &[pair(
                        "invoice_settings[default_payment_method]",
                        attached.id.as_str(),
                    )],
                    &format!("{key}-default"),
                )
                .await?;
            let (brand, last4) = attached
                .card
                .map(|card| (card.brand, card.last4))
                .unwrap_or_default();
            Ok(PaymentMethod {
                id: attached.id,
                brand,
                last4,
            })
        })
    }

    fn setup_session<'a>(
        &'a self,
        customer: &'a str,
        success_url: &'a str,
        cancel_url: &'a str,
        key: &'a str,
    ) -> Answer<'a, SetupSession> {
        Box::pin(async move {
            let form = vec![
                pair("mode", "setup"),
                pair("customer", customer),
                pair("success_url", success_url),
                pair("cancel_url", cancel_url),
                pair("payment_method_types[]", "card"),
            ];
            let session: SessionCreated = self
                .post(&["v1", "checkout", "sessions"], &form, key)
                .await?;
            let url = session.url.ok_or_else(|| {
                ProcessorError::Unavailable("the checkout session has no URL".to_owned())
            })?;
            Ok(SetupSession {
                id: session.id,
                url,
            })
        })
    }

    fn setup_session_payment_method<'a>(
        &'a self,
        customer: &'a str,
        session: &'a str,
    ) -> Answer<'a, Option<String>> {
        Box::pin(async move {
            let session = checked_id("checkout session", session)?;
            let body: SessionBody = self
                .get(
                    &["v1", "checkout", "sessions", session],
                    &[("expand[]", "setup_intent")],
                )
                .await?;
            if body.customer.as_ref().map(IdOrObject::id) != Some(customer) {
                // Another customer's session: as if it did not exist.
                return Err(ProcessorError::Rejected {
                    status: 404,
                    code: "resource_missing".to_owned(),
                    message: "No such checkout session".to_owned(),
                });
            }
            if body.status.as_deref() != Some("complete") {
                return Ok(None);
            }
            match body.setup_intent {
                Some(SetupIntentField::Object(intent)) => match intent.payment_method {
                    Some(payment_method) => Ok(Some(payment_method.id().to_owned())),
                    None => Err(ProcessorError::Unavailable(
                        "the completed checkout session's setup intent has no payment method"
                            .to_owned(),
                    )),
                },
                Some(SetupIntentField::Id(_)) | None => Err(ProcessorError::Unavailable(
                    "the completed checkout session has no expanded setup intent".to_owned(),
                )),
            }
        })
    }

    fn create_invoice<'a>(
        &'a self,
        invoice: NewInvoice<'a>,
        key: &'a str,
    ) -> Answer<'a, ProcessorInvoice> {
        Box::pin(async move {
            let draft: Created = self
                .post(
                    &["v1", "invoices"],
                    &invoice_form(&invoice),
                    &format!("{key}-create"),
                )
                .await?;
            let id = checked_id("invoice", &draft.id)?;
            for (n, line) in invoice.lines.iter().enumerate() {
                let _item: Created = self
                    .post(
                        &["v1", "invoiceitems"],
                        &invoice_item_form(&invoice, id, &line.description, line.amount),
                        &format!("{key}-item-{n}"),
                    )
                    .await?;
            }
            let finalized: InvoiceBody = self
                .post(
                    &["v1", "invoices", id, "finalize"],
                    &[],
                    &format!("{key}-finalize"),
                )
                .await?;
            Ok(ProcessorInvoice {
                id: finalized.id,
                status: finalized.status.unwrap_or_default(),
                amount_due: finalized.amount_due,
            })
        })
    }

    fn collect<'a>(&'a self, invoice: &'a str, key: &'a str) -> Answer<'a, Collection> {
        Box::pin(async move {
            let invoice = checked_id("invoice", invoice)?;
            match self
                .post::<InvoiceBody>(&["v1", "invoices", invoice, "pay"], &[], key)
                .await
            {
                Ok(paid) => Ok(collection(paid)),
                Err(ProcessorError::Declined { code, message }) => {
                    Ok(Collection::Declined { code, message })
                }
                // Paid already (by an earlier attempt whose answer was lost): collected.
                Err(ProcessorError::Rejected { code, .. }) if code == "invoice_already_paid" => {
                    Ok(Collection::Paid { charge: None })
                }
                Err(error) => Err(error),
            }
        })
    }

    fn credit_note<'a>(&'a self, note: NewCreditNote<'a>, key: &'a str) -> Answer<'a, String> {
        Box::pin(async move {
            let created: Created = self
                .post(&["v1", "credit_notes"], &credit_note_form(&note), key)
                .await?;
            Ok(created.id)
        })
    }

    fn report_usage<'a>(&'a self, usage: UsageReport<'a>, key: &'a str) -> Answer<'a, ()> {
        Box::pin(async move {
            let form = vec![
                pair("event_name", usage.event_name),
                pair("payload[stripe_customer_id]", usage.customer),
                pair("payload[value]", usage.value.to_string()),
                pair("identifier", usage.identifier),
                pair("timestamp", usage.timestamp.to_string()),
            ];
            let _: serde_json::Value = self
                .post(&["v1", "billing", "meter_events"], &form, key)
                .await?;
            Ok(())
        })
    }
}

/// What a 200 answer to `pay` means: paid, or (a payment left processing or needing the
/// customer) not collected, which is handled as a decline.
fn collection(invoice: InvoiceBody) -> Collection {
    match invoice.status.as_deref() {
        Some("paid") => Collection::Paid {
            charge: invoice.charge.map(|charge| charge.id().to_owned()),
        },
        other => Collection::Declined {
            code: "payment_incomplete".to_owned(),
            message: format!(
                "the invoice is {} after the payment attempt",
                other.unwrap_or("without a status")
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::processor::ProcessorLine;

    fn value<'a>(form: &'a Form, key: &str) -> Option<&'a str> {
        form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_card_error_on_402_is_a_decline_with_the_issuers_reason() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","message":"Your card was declined."}}"#;
        assert_eq!(
            error_from_answer(StatusCode::PAYMENT_REQUIRED, body),
            ProcessorError::Declined {
                code: "generic_decline".to_owned(),
                message: "Your card was declined.".to_owned()
            }
        );
        let without_reason =
            br#"{"error":{"type":"card_error","code":"expired_card","message":"Expired."}}"#;
        assert!(matches!(
            error_from_answer(StatusCode::PAYMENT_REQUIRED, without_reason),
            ProcessorError::Declined { code, .. } if code == "expired_card"
        ));
    }

    #[test]
    fn other_client_errors_are_rejections_with_the_processors_code() {
        let body = br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such PaymentMethod: 'pm_x'"}}"#;
        assert_eq!(
            error_from_answer(StatusCode::BAD_REQUEST, body),
            ProcessorError::Rejected {
                status: 400,
                code: "resource_missing".to_owned(),
                message: "No such PaymentMethod: 'pm_x'".to_owned()
            }
        );
        // No code (a bad key): the type stands in.
        let unauthorized =
            br#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}"#;
        assert!(matches!(
            error_from_answer(StatusCode::UNAUTHORIZED, unauthorized),
            ProcessorError::Rejected { status: 401, code, .. } if code == "invalid_request_error"
        ));
        // A 402 that is not a card error is not a decline.
        let other = br#"{"error":{"type":"invalid_request_error","code":"x","message":"m"}}"#;
        assert!(matches!(
            error_from_answer(StatusCode::PAYMENT_REQUIRED, other),
            ProcessorError::Rejected { status: 402, .. }
        ));
    }

    #[test]
    fn server_errors_throttling_conflicts_and_unreadable_bodies_are_unavailable() {
        let body = br#"{"error":{"type":"api_error","message":"boom"}}"#;
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::CONFLICT,
        ] {
            assert!(
                matches!(
                    error_from_answer(status, body),
                    ProcessorError::Unavailable(_)
                ),
                "{status}"
            );
        }
        assert!(matches!(
            error_from_answer(StatusCode::NOT_FOUND, b"<html>not found</html>"),
            ProcessorError::Unavailable(_)
        ));
        assert!(matches!(
            error_from_answer(StatusCode::FOUND, b""),
            ProcessorError::Unavailable(_)
        ));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn ids_going_into_paths_must_look_like_stripes() {
        assert_eq!(checked_id("invoice", "in_1AbC-2"), Ok("in_1AbC-2"));
        let long = "x".repeat(MAX_ID_CHARS + 1);
        for bad in [
            "",
            "../customers",
            "in_1/pay",
            "cs_1?x=1",
            "a b",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    checked_id("invoice", bad),
                    Err(ProcessorError::Rejected { status: 404, .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let stripe = StripeProcessor::new(
            "http://127.0.0.1:9/prefix/",
            "sk_test_x".to_owned(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            stripe
                .url(&["v1", "invoices", "in_1", "pay"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/prefix/v1/invoices/in_1/pay"
        );
        let bare = StripeProcessor::new(
            "https://api.stripe.com",
            "sk_test_x".to_owned(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            bare.url(&["v1", "customers"]).unwrap().as_str(),
            "https://api.stripe.com/v1/customers"
        );
        assert_eq!(
            bare.url(&["v1", "a/b"]).unwrap().as_str(),
            "https://api.stripe.com/v1/a%2Fb"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let stripe = StripeProcessor::new(
            "https://api.stripe.com",
            "sk_live_secret".to_owned(),
            Duration::from_secs(1),
        )
        .unwrap();
        let shown = format!("{stripe:?}");
        assert!(!shown.contains("sk_live_secret"), "{shown}");
        assert!(shown.contains("api.stripe.com"));
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in ["not a url", "mailto:a@b.c", "ftp://example.com"] {
            assert!(
                StripeProcessor::new(bad, "sk".to_owned(), Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn invoice_forms_carry_plinths_ids_and_lowercase_currency() {
        let lines = [ProcessorLine {
            description: "Pro plan".to_owned(),
            amount: 2900,
        }];
        let invoice = NewInvoice {
            invoice_id: "inv-1",
            number: "PL-2025-0001",
            tenant_id: "ten-1",
            customer: "cus_1",
            currency: "EUR",
            lines: &lines,
        };
        let form = invoice_form(&invoice);
        assert_eq!(value(&form, "currency"), Some("eur"));
        assert_eq!(value(&form, "auto_advance"), Some("false"));
        assert_eq!(
            value(&form, "pending_invoice_items_behavior"),
            Some("exclude")
        );
        assert_eq!(value(&form, "metadata[plinth_invoice]"), Some("inv-1"));
        assert_eq!(
            value(&form, "metadata[plinth_number]"),
            Some("PL-2025-0001")
        );
        assert_eq!(value(&form, "metadata[plinth_tenant]"), Some("ten-1"));
        let item = invoice_item_form(&invoice, "in_1", "Discount", -500);
        assert_eq!(value(&item, "invoice"), Some("in_1"));
        assert_eq!(value(&item, "amount"), Some("-500"));
        assert_eq!(value(&item, "currency"), Some("eur"));
    }

    #[test]
    fn customer_forms_leave_out_a_missing_email() {
        let with = customer_form(&NewCustomer {
            tenant_id: "t",
            name: "Acme",
            email: Some("a@b.c"),
        });
        assert_eq!(value(&with, "email"), Some("a@b.c"));
        assert_eq!(value(&with, "metadata[plinth_tenant]"), Some("t"));
        let without = customer_form(&NewCustomer {
            tenant_id: "t",
            name: "Acme",
            email: None,
        });
        assert_eq!(value(&without, "email"), None);
    }

    #[test]
    fn credit_notes_refund_only_when_asked() {
        let note = |refund| NewCreditNote {
            credit_note_id: "cn-1",
            invoice: "in_1",
            amount: 700,
            memo: "Goodwill",
            refund,
        };
        let refunded = credit_note_form(&note(true));
        assert_eq!(value(&refunded, "refund_amount"), Some("700"));
        assert_eq!(value(&refunded, "lines[0][type]"), Some("custom_line_item"));
        assert_eq!(value(&refunded, "lines[0][unit_amount]"), Some("700"));
        assert_eq!(
            value(&refunded, "metadata[plinth_credit_note]"),
            Some("cn-1")
        );
        let credited = credit_note_form(&note(false));
        assert_eq!(value(&credited, "refund_amount"), None);
        assert_eq!(value(&credited, "credit_amount"), None);
    }

    #[test]
    fn a_pay_answer_is_paid_only_when_the_invoice_is() {
        let paid: InvoiceBody = serde_json::from_str(
            r#"{"id":"in_1","status":"paid","amount_due":100,"charge":"ch_1"}"#,
        )
        .unwrap();
        assert_eq!(
            collection(paid),
            Collection::Paid {
                charge: Some("ch_1".to_owned())
            }
        );
        let expanded: InvoiceBody = serde_json::from_str(
            r#"{"id":"in_1","status":"paid","amount_due":100,"charge":{"id":"ch_2"}}"#,
        )
        .unwrap();
        assert_eq!(
            collection(expanded),
            Collection::Paid {
                charge: Some("ch_2".to_owned())
            }
        );
        let open: InvoiceBody =
            serde_json::from_str(r#"{"id":"in_1","status":"open","amount_due":100,"charge":null}"#)
                .unwrap();
        assert!(matches!(collection(open), Collection::Declined { .. }));
    }

    #[test]
    fn sessions_read_an_expanded_or_plain_payment_method() {
        let body: SessionBody = serde_json::from_str(
            r#"{"id":"cs_1","customer":"cus_1","status":"complete","setup_intent":{"id":"seti_1","payment_method":"pm_1"}}"#,
        )
        .unwrap();
        assert!(
            matches!(body.setup_intent, Some(SetupIntentField::Object(SetupIntentBody { payment_method: Some(ref pm) })) if pm.id() == "pm_1")
        );
        let plain: SessionBody = serde_json::from_str(
            r#"{"id":"cs_1","customer":{"id":"cus_1"},"status":"open","setup_intent":"seti_1"}"#,
        )
        .unwrap();
        assert_eq!(plain.customer.as_ref().map(IdOrObject::id), Some("cus_1"));
        assert!(matches!(plain.setup_intent, Some(SetupIntentField::Id(_))));
    }
}
