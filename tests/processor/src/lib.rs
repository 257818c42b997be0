//! A payment processor on loopback that speaks Stripe's HTTP API shapes, for tests and local
//! development: what `plinth-marketplace`'s Stripe client (`billing::processor::stripe`) bills
//! against when there is no Stripe.
//!
//! It keeps customers, Stripe's test cards attached to them, hosted setup pages (Checkout in
//! `setup` mode), invoices with their items, charges, refunds and credit notes in memory;
//! checks the secret key; answers a repeated `Idempotency-Key` with the first answer; and
//! sends signed webhooks (`Stripe-Signature: t=…,v1=…`) synchronously, before answering the
//! request that caused them, so a test sees their effect as soon as its call returns.
//!
//! | test card | card | payments |
//! |---|---|---|
//! | `pm_card_visa` | Visa 4242 | succeed |
//! | `pm_card_chargeCustomerFail` | Visa 0341 | attach, then every payment is declined (402 `card_error`, `card_declined`, `generic_decline`) |
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use plinth_processor_double::{DoubleConfig, ProcessorDouble};
//!
//! let double = ProcessorDouble::start(DoubleConfig {
//!     secret_key: "sk_test_double".to_owned(),
//!     webhook_url: None,
//!     webhook_secret: "whsec_double".to_owned(),
//! })
//! .await?;
//! // … start Plinth with `double.base_url()` as the processor's URL, then:
//! double.set_webhook_url("http://127.0.0.1:8080/v1/billing/webhook");
//! double.fail_next_requests(1); // the next /v1 request answers 500
//! for event in double.events() {
//!     let _header = double.sign(&event.body, 1_700_000_000);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! `POST /v1/customers`, `GET|POST /v1/customers/{id}`, `GET /v1/payment_methods/{id}`,
//! `POST /v1/payment_methods/{id}/attach`, `POST /v1/checkout/sessions`,
//! `GET /v1/checkout/sessions/{id}` (`expand[]=setup_intent`), `POST /v1/invoices`,
//! `GET /v1/invoices/{id}`, `POST /v1/invoiceitems`, `POST /v1/invoices/{id}/finalize`,
//! `POST /v1/invoices/{id}/pay`, `POST /v1/credit_notes`, `GET /v1/credit_notes/{id}`,
//! `GET /v1/charges/{id}`; and the hosted page `GET|POST /checkout/{id}` (no key needed).
//!
//! # Limits
//!
//! Bodies are limited to [`MAX_BODY_BYTES`]; what is stored grows without bound (it lives as
//! long as a test). Dropping the double stops accepting connections; connections already open
//! are served until their client closes them.

#![deny(missing_docs)]

mod api;
mod checkout;
mod credit_notes;
mod customers;
mod error;
mod form;
mod invoices;
mod meter_events;
mod store;
mod webhooks;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use serde_json::Value;
use tokio::task::JoinHandle;

use error::ApiError;
use store::Store;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// How a double is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleConfig {
    /// The secret key every `/v1` request must carry (`Authorization: Bearer <key>`).
    pub secret_key: String,
    /// Where events are POSTed; `None` keeps them (see [`ProcessorDouble::events`]) without
    /// sending them until [`ProcessorDouble::set_webhook_url`].
    pub webhook_url: Option<String>,
    /// The secret that signs the events.
    pub webhook_secret: String,
}

/// A request the double received under `/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, e.g. `/v1/invoices/in_…/pay`.
    pub path: String,
    /// The `Idempotency-Key` of a `POST`.
    pub idempotency_key: Option<String>,
    /// The form pairs (a `POST`'s body, a `GET`'s query), in the order sent; empty when they
    /// could not be parsed.
    pub form: Vec<(String, String)>,
}

impl Request {
    /// The first value sent for `key` (e.g. `metadata[plinth_invoice]`).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An event the double made (and sent, when it had a webhook URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent {
    /// `evt_…`.
    pub id: String,
    /// The event's type, e.g. `invoice.paid`.
    pub kind: String,
    /// The exact JSON body sent: `{id, object:"event", type, created, data:{object}}`.
    pub body: String,
}

/// A running double; dropping it stops it.
pub struct ProcessorDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for ProcessorDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorDouble")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for ProcessorDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ProcessorDouble {
    /// Starts a double on `127.0.0.1` at a free port.
    ///
    /// # Errors
    ///
    /// When no port can be bound or no HTTP client built.
    pub async fn start(config: DoubleConfig) -> anyhow::Result<ProcessorDouble> {
        ProcessorDouble::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a double listening on `listen`.
    ///
    /// # Errors
    ///
    /// When `listen` cannot be bound or no HTTP client built.
    pub async fn start_on(
        listen: SocketAddr,
        config: DoubleConfig,
    ) -> anyhow::Result<ProcessorDouble> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener
            .local_addr()
            .context("the listener has no address")?;
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the webhook client")?;
        let shared = Arc::new(Shared {
            secret_key: config.secret_key,
            webhook_secret: config.webhook_secret,
            base_url: format!("http://{addr}"),
            http,
            store: Mutex::new(Store {
                webhook_url: config.webhook_url,
                ..Store::default()
            }),
        });
        let app = app(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the processor double stopped");
            }
        });
        Ok(ProcessorDouble {
            shared,
            addr,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`: the processor's base URL to give Plinth.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where events go from now on (events made before are not sent again).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.lock().webhook_url = Some(url.to_owned());
    }

    /// Every `/v1` request received, oldest first (failed, refused and replayed ones too).
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Every event made, oldest first, whether or not it could be sent.
    pub fn events(&self) -> Vec<SentEvent> {
        self.shared.lock().events.clone()
    }

    /// The `Stripe-Signature` header value for `body` at `timestamp` (Unix seconds), signed
    /// with this double's webhook secret.
    pub fn sign(&self, body: &str, timestamp: i64) -> String {
        webhooks::signature(&self.shared.webhook_secret, body, timestamp)
    }

    /// Makes the next `n` `/v1` requests answer 500 `api_error` without doing anything (nor
    /// keeping their idempotency key).
    pub fn fail_next_requests(&self, n: usize) {
        self.shared.lock().fail_next = n;
    }

    /// The invoice `id` as the API shows it.
    pub fn invoice(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .invoices
            .get(id)
            .map(store::Invoice::json)
    }

    /// The invoices of `customer`, oldest first.
    pub fn invoices_of(&self, customer: &str) -> Vec<Value> {
        let store = self.shared.lock();
        let mut invoices: Vec<&store::Invoice> = store
            .invoices
            .values()
            .filter(|invoice| invoice.customer == customer)
            .collect();
        invoices.sort_by_key(|invoice| invoice.seq);
        invoices.into_iter().map(store::Invoice::json).collect()
    }

    /// The customer `id` as the API shows it.
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .customers
            .get(id)
            .map(store::Customer::json)
    }

    /// The checkout session `id`, its setup intent expanded.
    pub fn checkout_session(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .sessions
            .get(id)
            .map(|session| session.json(true))
    }

    /// The charge `id` as the API shows it.
    pub fn charge(&self, id: &str) -> Option<Value> {
        self.shared.lock().charges.get(id).map(store::Charge::json)
    }

    /// The credit note `id` as the API shows it.
    pub fn credit_note(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .credit_notes
            .get(id)
            .map(store::CreditNote::json)
    }

    /// Does what submitting the hosted page of checkout session `session` with the test card
    /// `payment_method` (`pm_card_visa`, `pm_card_chargeCustomerFail`) does, webhook included;
    /// answers the URL the browser would be sent to.
    ///
    /// # Errors
    ///
    /// When there is no such session or card.
    pub async fn complete_checkout(
        &self,
        session: &str,
        payment_method: &str,
    ) -> anyhow::Result<String> {
        self.shared
            .complete_checkout(session, payment_method)
            .await
            .map_err(|error| anyhow::anyhow!("{} ({})", error.message, error.status))
    }
}

/// The double's routes.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/{*path}", any(api::handle))
        .route("/checkout/{id}", get(checkout::page).post(checkout::submit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// What the handlers share.
pub(crate) struct Shared {
    secret_key: String,
    webhook_secret: String,
    base_url: String,
    http: reqwest::Client,
    store: Mutex<Store>,
}

impl Shared {
    /// The store (a poisoned lock is taken over: a panicking handler leaves data a test can
    /// still read).
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `events` to `url` and waits until each was answered or failed (in a task of its own, so a client
    /// that stops waiting does not cut the deliveries short).
    async fn deliver(self: &Arc<Self>, url: Option<String>, events: Vec<SentEvent>) {
        let Some(url) = url else { return };
        let shared = Arc::clone(self);
        let delivery = tokio::spawn(async move {
            webhooks::deliver(&shared.http, &shared.webhook_secret, &url, &events).await;
        });
        if let Err(error) = delivery.await {
            tracing::warn!(%error, "webhook delivery task failed");
        }
    }

    /// Completes checkout session `session` with `payment_method`, delivers the event, and
    /// answers where the browser goes next.
    async fn complete_checkout(
        self: &Arc<Self>,
        session: &str,
        payment_method: &str,
    ) -> Result<String, ApiError> {
        let (next, url, events) = {
            let mut store = self.lock();
            let (next, reply) = checkout::complete(&mut store, session, payment_method)?;
            let (url, events) = store.commit_events(reply.events);
            (next, url, events)
        };
        self.deliver(url, events).await;
        Ok(next)
    }
}
