//! `GET /metrics`: request counts and latencies, plugin calls, circuit breakers and queue
//! depths in the Prometheus text format.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::plugin_metrics::{PluginCalls, PluginMetrics};
use crate::error::Error;
use crate::runs::RecorderCounters;
use crate::state::AppState;

/// Labels of a request metric: method, matched route (not the raw path) and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a latency metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// Labels of a queued-event outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The marketplace's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    plugins: PluginMetrics,
    password_checks: Counter,
    runs: RecorderCounters,
    statements_refused: Counter,
    statement_expired: Gauge,
    statement_sequence: Gauge,
    queue_outcomes: Family<OutcomeLabels, Counter>,
    dead_letters: Counter,
    leases_lost: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with the HTTP metrics registered, and no per-tenant series.
    pub fn new() -> Metrics {
        Metrics::with_tenant_labels(false)
    }
}

impl Metrics {
    /// A registry with the HTTP metrics registered; with per-tenant plugin call counters when
    /// `per_tenant` (see [`crate::Settings::metrics_per_tenant`]).
    pub fn with_tenant_labels(per_tenant: bool) -> Metrics {
        let mut registry = Registry::with_prefix("plinth");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            latency.clone(),
        );
        let password_checks = Counter::default();
        registry.register(
            "log_in_password_checks",
            "Passwords verified by log-in: one argon2id verification per attempt that passes the \
             throttle, whether or not the account exists",
            password_checks.clone(),
        );
        let plugins = PluginMetrics::register(&mut registry, per_tenant);
        let runs = RecorderCounters::default();
        registry.register(
            "runs_written",
            "Runs written to the run log",
            runs.written.clone(),
        );
        registry.register(
            "runs_dropped",
            "Runs not written to the run log: its queue was full or the database failed",
            runs.dropped.clone(),
        );
        let statements_refused = Counter::default();
        registry.register(
            "state_statements_refused",
            "State statements from storage the host refused: older than one it had seen (a \
             replayed or withheld state), or not signed by a trusted key",
            statements_refused.clone(),
        );
        let statement_expired = Gauge::default();
        registry.register(
            "state_statement_expired",
            "1 while the newest state statement the host holds is past its expiry",
            statement_expired.clone(),
        );
        let statement_sequence = Gauge::default();
        registry.register(
            "state_statement_sequence",
            "The sequence of the newest state statement the host holds (0 before the first)",
            statement_sequence.clone(),
        );
        let queue_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "queued_deliveries",
            "Deliveries of queued (asynchronous) events this process recorded, by outcome: ok, \
             retry, failed (for good) or skipped",
            queue_outcomes.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "queued_events_dead",
            "Queued events this process dead-lettered (a plugin's delivery failed for good)",
            dead_letters.clone(),
        );
        let leases_lost = Counter::default();
        registry.register(
            "queued_event_leases_lost",
            "Attempts of queued events whose lease another host had taken over by the time \
             they ended (their results were not recorded; the event is delivered again)",
            leases_lost.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            plugins,
            password_checks,
            runs,
            statements_refused,
            statement_expired,
            statement_sequence,
            queue_outcomes,
            dead_letters,
            leases_lost,
        }
    }

    /// Counts one password verification by log-in.
    pub fn count_password_check(&self) {
        self.password_checks.inc();
    }

    /// Counts one state statement the host refused.
    pub fn count_refused_statement(&self) {
        self.statements_refused.inc();
    }

    /// Sets the state statement gauges from `host`'s newest statement at `now` (Unix seconds).
    fn refresh_statement(&self, host: &plinth_host::Host, now: i64) {
        use plinth_host::statements::Freshness;
        let (sequence, expired) = match host.statement_freshness(now) {
            Freshness::Unknown => (0, false),
            Freshness::Fresh { sequence, .. } => (sequence, false),
            Freshness::Expired { sequence, .. } => (sequence, true),
        };
        self.statement_sequence
            .set(i64::try_from(sequence).unwrap_or(i64::MAX));
        self.statement_expired.set(i64::from(expired));
    }

    /// Counts a recorded attempt of a queued event: each plugin's outcome (`ok`, `retry`,
    /// `failed`, `skipped`), and whether the event was dead-lettered.
    pub fn count_queued_attempt(
        &self,
        outcomes: impl IntoIterator<Item = &'static str>,
        dead: bool,
    ) {
        for outcome in outcomes {
            self.queue_outcomes
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
        }
        if dead {
            self.dead_letters.inc();
        }
    }

    /// Counts an attempt whose lease was lost.
    pub fn count_lost_lease(&self) {
        self.leases_lost.inc();
    }

    /// The observer that counts plugin calls: give it to the host's meter
    /// ([`plinth_host::metering::Meter::set_observer`]).
    pub fn plugin_calls(&self) -> std::sync::Arc<PluginCalls> {
        self.plugins.calls()
    }

    /// The run recorder's counters ([`crate::runs::Recorder`]).
    pub fn run_counters(&self) -> RecorderCounters {
        self.runs.clone()
    }

    /// The registry, for other components to register their metrics in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in the Prometheus text format.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if encoding fails.
    pub fn render(&self) -> Result<String, Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(text)
    }
}

/// The route label of a request no route matched (the fallback's 404s, whatever the path).
const UNMATCHED: &str = "unmatched";

/// The method label of a request with a method outside the standard set.
const OTHER_METHOD: &str = "other";

/// The method label of `method`: its name for the standard methods, [`OTHER_METHOD`] for any
/// extension method a client makes up, so clients cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// Middleware: counts and times every request by its method label and matched route (the
/// route's template, never the raw path; [`UNMATCHED`] when no route matched), so the label
/// set is fixed by the routes, whatever clients send.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = state.metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics in the OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text"),
        (status = 500, body = crate::error::ApiError)))]
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let host = state.runtime().ok().map(|runtime| runtime.host.clone());
    let metrics = state.metrics();
    let queued_runs = state.run_recorder().map(|recorder| recorder.queued());
    if let Some(host) = host.as_deref() {
        metrics.refresh_statement(host, crate::clock::now_ms() / 1000);
    }
    if let Err(error) = metrics
        .plugins
        .refresh(state.db(), host.as_deref(), queued_runs)
        .await
    {
        return error.into_response();
    }
    match metrics.render() {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}
