//! The API under `/v1`: every request is recorded, may be made to fail
//! ([`crate::ProcessorDouble::fail_next_requests`]), must carry the secret key, and — a `POST`
//! with an `Idempotency-Key` — answers as the first request with that key did. Then it is
//! routed to its resource; the change, the idempotency answer and the events it causes are
//! made under one lock, and the events are delivered before the answer leaves.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::form::Form;
use crate::store::{Saved, Store, new_id};
use crate::{Request, SentEvent, Shared, checkout, credit_notes, customers, invoices};

/// What a resource answers: a status, a JSON body and the events to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub events: Vec<(&'static str, Value)>,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
            events: Vec::new(),
        }
    }

    /// The same answer, sending event `kind` about `object` too.
    pub fn event(mut self, kind: &'static str, object: Value) -> Reply {
        self.events.push((kind, object));
        self
    }
}

impl From<ApiError> for Reply {
    fn from(error: ApiError) -> Reply {
        Reply {
            status: error.status,
            body: error.body(),
            events: Vec::new(),
        }
    }
}

/// What the locked part of a request decided.
struct Outcome {
    status: StatusCode,
    body: String,
    replayed: bool,
    webhook_url: Option<String>,
    events: Vec<SentEvent>,
}

impl Outcome {
    fn error(error: &ApiError) -> Outcome {
        Outcome {
            status: error.status,
            body: error.body().to_string(),
            replayed: false,
            webhook_url: None,
            events: Vec::new(),
        }
    }
}

/// Any request under `/v1/`.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = execute(&shared, &method, &uri, &headers, &body);
    let key = headers.get("idempotency-key").cloned();
    if !outcome.events.is_empty() {
        shared.deliver(outcome.webhook_url, outcome.events).await;
    }
    let mut response = (
        outcome.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        outcome.body,
    )
        .into_response();
    let response_headers = response.headers_mut();
    if let Ok(request_id) = HeaderValue::from_str(&new_id("req")) {
        response_headers.insert("request-id", request_id);
    }
    if let Some(key) = key.filter(|_| method == Method::POST) {
        response_headers.insert("idempotency-key", key);
    }
    if outcome.replayed {
        response_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Records, checks and runs one request under the lock.
fn execute(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let path = uri.path();
    let params = if *method == Method::POST {
        Form::parse(body)
    } else {
        Form::parse(uri.query().unwrap_or_default().as_bytes())
    };
    let key = if *method == Method::POST {
        headers
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    } else {
        None
    };
    let mut store = shared.lock();
    store.requests.push(Request {
        method: method.to_string(),
        path: path.to_owned(),
        idempotency_key: key.clone(),
        form: params
            .as_ref()
            .map(|form| form.0.clone())
            .unwrap_or_default(),
    });
    if store.fail_next > 0 {
        store.fail_next -= 1;
        return Outcome::error(&ApiError::internal(
            "An unknown error occurred (the processor double was told to fail this request).",
        ));
    }
    if let Err(error) = authorize(headers, &shared.secret_key) {
        return Outcome::error(&error);
    }
    let form = match params {
        Ok(form) => form,
        Err(error) => return Outcome::error(&error),
    };
    let fingerprint = {
        let mut pairs = form.0.clone();
        pairs.sort();
        (method.to_string(), path.to_owned(), pairs)
    };
    if let Some(key) = &key
        && let Some(saved) = store.idempotency.get(key)
    {
        if saved.fingerprint != fingerprint {
            return Outcome::error(&key_reused(key));
        }
        return Outcome {
            status: StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK),
            body: saved.body.clone(),
            replayed: true,
            webhook_url: None,
            events: Vec::new(),
        };
    }
    let reply =
        route(&mut store, &shared.base_url, method, path, &form).unwrap_or_else(Reply::from);
    let body = reply.body.to_string();
    let (webhook_url, events) = store.commit_events(reply.events);
    if let Some(key) = key {
        store.idempotency.insert(
            key,
            Saved {
                fingerprint,
                status: reply.status.as_u16(),
                body: body.clone(),
            },
        );
    }
    Outcome {
        status: reply.status,
        body,
        replayed: false,
        webhook_url,
        events,
    }
}

/// Checks `Authorization: Bearer <secret_key>`.
fn authorize(headers: &HeaderMap, secret_key: &str) -> Result<(), ApiError> {
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let bearer = given
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "));
    if bearer == Some(secret_key) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("Invalid API Key provided."))
    }
}

/// The answer to a key used again for a different request (Stripe's 400
/// `idempotency_error`).
fn key_reused(key: &str) -> ApiError {
    ApiError {
        kind: "idempotency_error",
        ..ApiError::invalid(
            Some("idempotency_key_in_use"),
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        )
    }
}

/// Runs the request `method path` with `form` on `store`.
fn route(
    store: &mut Store,
    base_url: &str,
    method: &Method,
    path: &str,
    form: &Form,
) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = path
        .strip_prefix("/v1/")
        .unwrap_or_default()
        .split('/')
        .collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["customers"]) => customers::create(store, form),
        ("GET", ["customers", id]) => customers::get(store, id),
        ("POST", ["customers", id]) => customers::update(store, id, form),
        ("GET", ["payment_methods", id]) => customers::get_payment_method(store, id),
        ("POST", ["payment_methods", id, "attach"]) => customers::attach_route(store, id, form),
        ("POST", ["checkout", "sessions"]) => checkout::create(store, base_url, form),
        ("GET", ["checkout", "sessions", id]) => checkout::get(store, id, form),
        ("POST", ["invoices"]) => invoices::create(store, form),
        ("GET", ["invoices", id]) => invoices::get(store, id),
        ("POST", ["invoices", id, "finalize"]) => invoices::finalize(store, id),
        ("POST", ["invoices", id, "pay"]) => invoices::pay(store, id),
        ("POST", ["invoiceitems"]) => invoices::add_item(store, form),
        ("POST", ["credit_notes"]) => credit_notes::create(store, form),
        ("POST", ["billing", "meter_events"]) => crate::meter_events::create(store, form),
        ("GET", ["credit_notes", id]) => credit_notes::get(store, id),
        ("GET", ["charges", id]) => store
            .charges
            .get(*id)
            .map(|charge| Reply::ok(charge.json()))
            .ok_or_else(|| ApiError::not_found("charge", id)),
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            ..ApiError::invalid(
                None,
                format!("Unrecognized request URL ({method}: {path})."),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn shared() -> Shared {
        Shared {
            secret_key: "sk_test_1".to_owned(),
            webhook_secret: "whsec_1".to_owned(),
            base_url: "http://127.0.0.1:1".to_owned(),
            http: reqwest::Client::new(),
            store: Mutex::new(Store::default()),
        }
    }

    fn call(
        shared: &Shared,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let uri: Uri = uri.parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_1"),
        );
        if let Some(key) = key {
            headers.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
        }
        let outcome = execute(shared, &method, &uri, &headers, body.as_bytes());
        (
            outcome.status.as_u16(),
            serde_json::from_str(&outcome.body).unwrap(),
        )
    }

    fn post(shared: &Shared, path: &str, key: &str, body: &str) -> (u16, Value) {
        call(shared, Method::POST, path, Some(key), body)
    }

    fn id(value: &Value) -> String {
        value["id"].as_str().unwrap().to_owned()
    }

    fn kinds(shared: &Shared) -> Vec<String> {
        shared
            .lock()
            .events
            .iter()
            .map(|event| event.kind.clone())
            .collect()
    }

    /// A customer whose default payment method is `card`; answers its id.
    fn customer_with(shared: &Shared, card: &str) -> String {
        let (status, customer) = post(
            shared,
            "/v1/customers",
            "c",
            "name=Acme&metadata[plinth_tenant]=t1",
        );
        assert_eq!(status, 200);
        let customer = id(&customer);
        let (status, method) = post(
            shared,
            &format!("/v1/payment_methods/{card}/attach"),
            "a",
            &format!("customer={customer}"),
        );
        assert_eq!(status, 200, "{method}");
        assert_eq!(method["customer"], customer.as_str());
        assert_ne!(
            id(&method),
            card,
            "attaching a test card gives the customer a copy"
        );
        let (status, _) = post(
            shared,
            &format!("/v1/customers/{customer}"),
            "a-default",
            &format!("invoice_settings[default_payment_method]={}", id(&method)),
        );
        assert_eq!(status, 200);
        customer
    }

    /// A finalized invoice of `customer` with lines 3000 and -500; answers its id.
    fn invoice_of(shared: &Shared, customer: &str) -> String {
        let (status, draft) = post(
            shared,
            "/v1/invoices",
            "i-create",
            &format!(
                "customer={customer}&currency=EUR&auto_advance=false&metadata[plinth_invoice]=inv-1"
            ),
        );
        assert_eq!(status, 200, "{draft}");
        let invoice = id(&draft);
        for (n, amount) in [3000, -500].into_iter().enumerate() {
            let (status, item) = post(
                shared,
                "/v1/invoiceitems",
                &format!("i-item-{n}"),
                &format!(
                    "customer={customer}&invoice={invoice}&amount={amount}&currency=eur&description=Line"
                ),
            );
            assert_eq!(status, 200, "{item}");
        }
        let (status, open) = post(
            shared,
            &format!("/v1/invoices/{invoice}/finalize"),
            "i-finalize",
            "",
        );
        assert_eq!(status, 200, "{open}");
        assert_eq!(open["status"], "open");
        assert_eq!(open["number"], "DBL-0001");
        assert_eq!(open["amount_due"], 2500);
        assert_eq!(open["currency"], "eur");
        assert_eq!(open["metadata"]["plinth_invoice"], "inv-1");
        assert_eq!(open["lines"]["data"].as_array().unwrap().len(), 2);
        invoice
    }

    #[test]
    fn requests_without_the_key_are_refused_and_recorded() {
        let shared = shared();
        let outcome = execute(
            &shared,
            &Method::POST,
            &"/v1/customers".parse().unwrap(),
            &HeaderMap::new(),
            b"name=x",
        );
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
        assert!(outcome.body.contains("invalid_request_error"));
        assert!(shared.lock().customers.is_empty());
        assert_eq!(shared.lock().requests.len(), 1);
    }

    #[test]
    fn an_invoice_is_created_finalized_and_paid() {
        let shared = shared();
        let customer = customer_with(&shared, "pm_card_visa");
        let invoice = invoice_of(&shared, &customer);
        let (status, paid) = post(&shared, &format!("/v1/invoices/{invoice}/pay"), "pay-1", "");
        assert_eq!(status, 200, "{paid}");
        assert_eq!(paid["status"], "paid");
        assert_eq!(paid["amount_paid"], 2500);
        assert_eq!(paid["amount_remaining"], 0);
        assert!(paid["charge"].as_str().unwrap().starts_with("ch_"));
        assert_eq!(
            kinds(&shared),
            ["customer.created", "invoice.finalized", "invoice.paid"]
        );
        let (status, again) = post(&shared, &format!("/v1/invoices/{invoice}/pay"), "pay-2", "");
        assert_eq!(status, 400);
        assert_eq!(again["error"]["code"], "invoice_already_paid");
    }

    #[test]
    fn the_failing_card_attaches_and_every_payment_is_declined() {
        let shared = shared();
        let customer = customer_with(&shared, "pm_card_chargeCustomerFail");
        let invoice = invoice_of(&shared, &customer);
        for attempt in 1..=2 {
            let (status, declined) = post(
                &shared,
                &format!("/v1/invoices/{invoice}/pay"),
                &format!("pay-{attempt}"),
                "",
            );
            assert_eq!(status, 402);
            assert_eq!(declined["error"]["type"], "card_error");
            assert_eq!(declined["error"]["code"], "card_declined");
            assert_eq!(declined["error"]["decline_code"], "generic_decline");
            let stored = shared.lock().invoices[&invoice].json();
            assert_eq!(stored["status"], "open");
            assert_eq!(stored["attempt_count"], attempt);
        }
        assert_eq!(
            kinds(&shared).last().map(String::as_str),
            Some("invoice.payment_failed")
        );
    }

    #[test]
    fn paying_without_a_payment_method_is_a_card_error() {
        let shared = shared();
        let (_, customer) = post(&shared, "/v1/customers", "c", "name=Acme");
        let invoice = invoice_of(&shared, &id(&customer));
        let (status, answer) = post(&shared, &format!("/v1/invoices/{invoice}/pay"), "pay", "");
        assert_eq!(status, 402);
        assert_eq!(answer["error"]["code"], "missing_payment_method");
    }

    #[test]
    fn unknown_payment_methods_are_missing() {
        let shared = shared();
        let (_, customer) = post(&shared, "/v1/customers", "c", "name=Acme");
        let (status, answer) = post(
            &shared,
            "/v1/payment_methods/pm_nope/attach",
            "a",
            &format!("customer={}", id(&customer)),
        );
        assert_eq!(status, 400);
        assert_eq!(answer["error"]["code"], "resource_missing");
        assert_eq!(
            answer["error"]["message"],
            "No such PaymentMethod: 'pm_nope'"
        );
    }

    #[test]
    fn a_repeated_key_answers_the_first_answer_and_a_reused_one_is_refused() {
        let shared = shared();
        let (_, first) = post(&shared, "/v1/customers", "k", "name=Acme");
        let (status, again) = post(&shared, "/v1/customers", "k", "name=Acme");
        assert_eq!(status, 200);
        assert_eq!(first, again);
        assert_eq!(shared.lock().customers.len(), 1);
        assert_eq!(kinds(&shared), ["customer.created"]);
        let (status, reused) = post(&shared, "/v1/customers", "k", "name=Other");
        assert_eq!(status, 400);
        assert_eq!(reused["error"]["type"], "idempotency_error");
        assert_eq!(reused["error"]["code"], "idempotency_key_in_use");
        let (status, _) = post(&shared, "/v1/invoices", "k", "name=Acme");
        assert_eq!(status, 400, "another path is another request");
    }

    #[test]
    fn injected_failures_do_nothing_and_keep_no_key() {
        let shared = shared();
        shared.lock().fail_next = 2;
        for _ in 0..2 {
            let (status, answer) = post(&shared, "/v1/customers", "k", "name=Acme");
            assert_eq!(status, 500);
            assert_eq!(answer["error"]["type"], "api_error");
        }
        let (status, _) = post(&shared, "/v1/customers", "k", "name=Acme");
        assert_eq!(status, 200);
        assert_eq!(shared.lock().customers.len(), 1);
        assert_eq!(shared.lock().requests.len(), 3);
    }

    #[test]
    fn credit_notes_lower_an_open_invoice_and_refund_a_paid_one() {
        let shared = shared();
        let customer = customer_with(&shared, "pm_card_visa");
        let invoice = invoice_of(&shared, &customer);
        let note = |key: &str, amount: i64, extra: &str| {
            post(
                &shared,
                "/v1/credit_notes",
                key,
                &format!(
                    "invoice={invoice}&lines[0][type]=custom_line_item&lines[0][description]=Goodwill&lines[0][quantity]=1&lines[0][unit_amount]={amount}&memo=Goodwill&metadata[plinth_credit_note]=cn-1{extra}"
                ),
            )
        };
        // Open: lowers what is due; a credit_amount has nothing to cover.
        let (status, refused) = note("n0", 500, "&credit_amount=500");
        assert_eq!(status, 400, "{refused}");
        let (status, open_note) = note("n1", 500, "");
        assert_eq!(status, 200, "{open_note}");
        assert_eq!(open_note["object"], "credit_note");
        assert_eq!(open_note["total"], 500);
        assert_eq!(open_note["pre_payment_amount"], 500);
        assert_eq!(shared.lock().invoices[&invoice].json()["amount_due"], 2000);
        // Paid: refunded from the charge; no more than what is left.
        let (status, _) = post(&shared, &format!("/v1/invoices/{invoice}/pay"), "pay", "");
        assert_eq!(status, 200);
        let (status, too_much) = note("n2", 2001, "&refund_amount=2001");
        assert_eq!(status, 400, "{too_much}");
        let (status, refunded) = note("n3", 700, "&refund_amount=700");
        assert_eq!(status, 200, "{refunded}");
        assert_eq!(refunded["post_payment_amount"], 700);
        let store = shared.lock();
        let charge = store.invoices[&invoice].charge.clone().unwrap();
        assert_eq!(store.charges[&charge].amount_refunded, 700);
        assert_eq!(
            store
                .events
                .iter()
                .filter(|event| event.kind == "credit_note.created")
                .count(),
            2
        );
    }

    #[test]
    fn a_setup_session_completes_with_the_chosen_card() {
        let shared = shared();
        let (_, customer) = post(&shared, "/v1/customers", "c", "name=Acme");
        let customer = id(&customer);
        let (status, session) = post(
            &shared,
            "/v1/checkout/sessions",
            "s",
            &format!(
                "mode=setup&customer={customer}&success_url=http://plinth/ok?s={{CHECKOUT_SESSION_ID}}&cancel_url=http://plinth/no&payment_method_types[]=card"
            ),
        );
        assert_eq!(status, 200, "{session}");
        let session = id(&session);
        let path = format!("/v1/checkout/sessions/{session}?expand[]=setup_intent");
        let (_, open) = call(&shared, Method::GET, &path, None, "");
        assert_eq!(open["status"], "open");
        assert_eq!(open["setup_intent"]["payment_method"], Value::Null);
        let (next, reply) =
            checkout::complete(&mut shared.lock(), &session, "pm_card_visa").unwrap();
        assert_eq!(next, format!("http://plinth/ok?s={session}"));
        assert_eq!(reply.events[0].0, "checkout.session.completed");
        let (_, complete) = call(&shared, Method::GET, &path, None, "");
        assert_eq!(complete["status"], "complete");
        let method = complete["setup_intent"]["payment_method"].as_str().unwrap();
        assert_eq!(
            shared.lock().customers[&customer]
                .default_payment_method
                .as_deref(),
            Some(method)
        );
        let (_, plain) = call(
            &shared,
            Method::GET,
            &format!("/v1/checkout/sessions/{session}"),
            None,
            "",
        );
        assert!(plain["setup_intent"].is_string());
    }

    #[test]
    fn unknown_urls_are_stripes_404() {
        let shared = shared();
        let (status, answer) = call(&shared, Method::GET, "/v1/nothing", None, "");
        assert_eq!(status, 404);
        assert_eq!(answer["error"]["type"], "invalid_request_error");
    }
}
