//! Outbound HTTP (`wasi:http/outgoing-handler`): the policy every request a plugin sends
//! passes through.
//!
//! [`OutboundHttp`] implements [`WasiHttpHooks`]; the capability ([`Http`]) prepares one per
//! call as its state and hands it out as the store's `WasiHttpCtxView::hooks`. Its
//! [`send_request`](WasiHttpHooks::send_request) is the one place every outgoing request goes
//! through, and it refuses, in this order:
//!
//! 1. a scheme other than `http` or `https` ([`DenialReason::Scheme`]);
//! 2. a host and port not on the plugin's granted allowlist ([`DenialReason::NotAllowlisted`],
//!    decided by [`Permissions::allows_host`]);
//! 3. a request past the call's budget, shared by all clones of the value
//!    ([`DenialReason::TooManyRequests`]), or past the tenant's per-minute rate shared by all
//!    of the tenant's calls ([`DenialReason::TenantRate`], see [`crate::rates`]);
//! 4. unless the operator allows private destinations, an IP literal or a name resolving to any
//!    address that is not public ([`DenialReason::PrivateAddress`], decided by the call's
//!    [`CheckedResolver`]).
//!
//! Checks 1–3 run before any DNS lookup or connection: all but the deployment-wide part of the
//! tenant's rate before the hook returns, that part (which may lease from the store all
//! processes share, [`crate::rates::SharedRates`]) first thing in the future it returns. Check 4 is
//! made by the resolver the request is then sent through ([`crate::egress`]): the name is
//! looked up once, every address is checked, and the connection goes only to those checked
//! addresses, so a name cannot answer a public address to the check and a private one to the
//! connection. `https` keeps the name for certificate verification and SNI. A refused
//! request fails in the guest with `error-code.HTTP-request-denied` and is recorded in the
//! call's [`Denials`], which the invocation reads after the call to report a permission error;
//! [`OutboundHttp::requests_sent`] counts the requests actually sent, for metering.
//!
//! **Redirects**: `wasi:http` never follows a redirect itself; it hands the `3xx` response to
//! the guest. A guest (or its SDK) that follows one sends a new request, which passes through
//! this same hook and is checked like any other.
//!
//! ```
//! use std::sync::Arc;
//! use plinth_host::capabilities::http::OutboundHttp;
//! use plinth_host::egress::CheckedResolver;
//! use plinth_package::Permissions;
//! use wasmtime_wasi_http::WasiHttpHooks;
//!
//! let permissions = Arc::new(Permissions::default()); // the tenant's grant
//! let private_allowed = false; // the operator's choice
//! let outbound = OutboundHttp::new(permissions, CheckedResolver::system(private_allowed), 10);
//! let hooks: Box<dyn WasiHttpHooks> = Box::new(outbound.clone()); // into the store
//! // … run the call; afterwards, on the clone kept outside:
//! assert!(outbound.denials().first().is_none());
//! assert_eq!(outbound.requests_sent(), 0);
//! # drop(hooks);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use http::uri::Scheme;
use http::{Request, Response, Uri};
use plinth_package::Permissions;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::egress::CheckedResolver;
use crate::rates::TenantRates;

mod capability;
mod denials;
mod send;

pub use capability::{Http, HttpState, ctx_view};
pub use denials::{Denial, DenialReason, Denials, MAX_RECORDED_DENIALS};
#[cfg(feature = "fuzzing")]
pub(crate) use send::retarget;
use send::{Destination, Refusal};

/// The future `send_request` hands back for driving the connection after the response head.
type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// What `send_request` resolves to.
type SendResult = Result<(Response<WasiBody>, IoFuture), HttpError>;

/// The operator's and the plan's settings for one call's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Most requests the call may have admitted past the scheme and allowlist checks; later
    /// ones are refused with [`DenialReason::TooManyRequests`]. Requests refused as not
    /// allowlisted do not spend it; one refused as private does (it cost a DNS lookup).
    pub max_requests: u32,
    /// Longest wait for the DNS lookup, the TCP connection and the TLS handshake together; a
    /// shorter timeout asked by the guest wins.
    pub connect_timeout: Duration,
    /// Longest wait for the response head once connected; a shorter one asked by the guest wins.
    pub first_byte_timeout: Duration,
    /// Longest wait between frames of the response body; a shorter one asked by the guest wins.
    pub between_bytes_timeout: Duration,
}

impl Default for OutboundConfig {
    /// 10 requests, 10 s to connect, 30 s to the first byte and between body frames.
    fn default() -> Self {
        OutboundConfig {
            max_requests: 10,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
        }
    }
}

/// Per-call counters shared by the clones of one [`OutboundHttp`].
#[derive(Debug, Default)]
struct Counters {
    /// Requests admitted past scheme, allowlist and budget, against `max_requests`.
    admitted: AtomicU32,
    /// Requests that passed every check and were handed to the network.
    sent: AtomicU32,
}

/// The outbound HTTP policy of one sandboxed call, as [`WasiHttpHooks`].
///
/// Build one per call (it holds `Arc`s of the grant and of the call's record, so it is cheap):
/// the [`Http`] capability prepares one as its state in the store. Clones share the budget,
/// the [`Denials`] and the count of requests sent, so [`denials`](Self::denials) and
/// [`requests_sent`](Self::requests_sent) read on any clone after the call (or on the store's
/// own) see every request of the call. See the [module documentation](self) for the checks,
/// their order, and redirects.
#[derive(Debug, Clone)]
pub struct OutboundHttp {
    permissions: Arc<Permissions>,
    resolver: CheckedResolver,
    config: OutboundConfig,
    denials: Denials,
    counters: Arc<Counters>,
    tenant_rate: Option<TenantRate>,
}

/// The tenant-wide rate a call's requests also spend: its tenant's bucket in the host's
/// [`TenantRates`].
#[derive(Debug, Clone)]
pub struct TenantRate {
    /// The host's buckets.
    pub rates: Arc<TenantRates>,
    /// The calling tenant.
    pub tenant: String,
    /// The plan's requests per minute.
    pub per_minute: u32,
}

impl OutboundHttp {
    /// The policy for one call: the plugin's granted `permissions` (its `http.hosts`
    /// allowlist), the `resolver` every destination is checked by (it says whether the
    /// operator allows private destinations), and the call's budget of requests; timeouts are
    /// [`OutboundConfig::default`]'s.
    pub fn new(
        permissions: Arc<Permissions>,
        resolver: CheckedResolver,
        max_requests: u32,
    ) -> Self {
        Self::with_config(
            permissions,
            resolver,
            OutboundConfig {
                max_requests,
                ..OutboundConfig::default()
            },
        )
    }

    /// The policy for one call with every setting given.
    pub fn with_config(
        permissions: Arc<Permissions>,
        resolver: CheckedResolver,
        config: OutboundConfig,
    ) -> Self {
        OutboundHttp {
            permissions,
            resolver,
            config,
            denials: Denials::new(),
            counters: Arc::default(),
            tenant_rate: None,
        }
    }

    /// Also holds every request to the tenant-wide `rate` (checked after the call's budget).
    #[must_use]
    pub fn with_tenant_rate(mut self, rate: TenantRate) -> Self {
        self.tenant_rate = Some(rate);
        self
    }

    /// This call's log of refused requests (a shared handle: it fills as the call runs).
    pub fn denials(&self) -> Denials {
        self.denials.clone()
    }

    /// How many requests passed every check and were handed to the network (whether or not
    /// the connection then succeeded): the figure to meter.
    pub fn requests_sent(&self) -> u32 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// The settings this policy runs with.
    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// The checks that need neither DNS nor a connection: scheme, allowlist, budget.
    pub(crate) fn admit(&self, uri: &Uri) -> Result<Destination, HttpError> {
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .to_ascii_lowercase();
        let default_port = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => Some(80),
            Some(s) if *s == Scheme::HTTPS => Some(443),
            _ => None,
        };
        let port = uri.port_u16().or(default_port);
        let deny_after = |reason, retry_after| {
            self.denials.record(Denial {
                host: host.clone(),
                port,
                reason,
                retry_after,
            });
            Err(HttpError::HttpRequestDenied)
        };
        let deny = |reason| deny_after(reason, None);
        let (Some(default_port), Some(port)) = (default_port, port) else {
            return deny(DenialReason::Scheme);
        };
        if !self.permissions.allows_host(&host, port) {
            return deny(DenialReason::NotAllowlisted);
        }
        let max = self.config.max_requests;
        let within_budget = self
            .counters
            .admitted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !within_budget {
            return deny(DenialReason::TooManyRequests);
        }
        if let Some(rate) = &self.tenant_rate
            && let Err(wait) = rate
                .rates
                .try_take(&rate.tenant, rate.per_minute, Instant::now())
        {
            // Not sent: the call's own budget is not spent either.
            self.counters.admitted.fetch_sub(1, Ordering::Relaxed);
            return deny_after(DenialReason::TenantRate, Some(wait));
        }
        Ok(Destination {
            explicit_port: port != default_port,
            host,
            port,
        })
    }
}

impl WasiHttpHooks for OutboundHttp {
    /// Every scheme is let through to [`send_request`](Self::send_request), which refuses all
    /// but `http` and `https` and records the refusal (refusing here would leave no record).
    fn is_supported_scheme(&mut self, _scheme: &Scheme) -> bool {
        true
    }

    /// Checks the request (see the [module documentation](self)), then sends it through an
    /// [`EgressClient`](crate::egress::EgressClient) under this call's timeouts.
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let destination = match self.admit(request.uri()) {
            Ok(destination) => destination,
            Err(error) => return Box::new(std::future::ready(SendResult::Err(error))),
        };
        let options = capped_options(options, &self.config);
        let resolver = self.resolver.clone();
        let denials = self.denials.clone();
        let counters = Arc::clone(&self.counters);
        let tenant_rate = self.tenant_rate.clone();
        Box::new(async move {
            // The deployment-wide part of check 3: it may lease from the shared store, so it
            // runs here rather than in `admit` (still before any lookup or connection).
            if let Some(rate) = &tenant_rate
                && let Err(wait) = rate.rates.take_shared(&rate.tenant, rate.per_minute).await
            {
                rate.rates.put_back(&rate.tenant, rate.per_minute);
                counters.admitted.fetch_sub(1, Ordering::Relaxed);
                denials.record(Denial {
                    host: destination.host,
                    port: Some(destination.port),
                    reason: DenialReason::TenantRate,
                    retry_after: Some(wait),
                });
                return Err(HttpError::HttpRequestDenied);
            }
            match send::send(request, &destination, resolver, &options).await {
                Ok(response) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    Ok((response, Box::new(std::future::ready(Ok(()))) as IoFuture))
                }
                Err(Refusal::PrivateAddress) => {
                    denials.record(Denial {
                        host: destination.host,
                        port: Some(destination.port),
                        reason: DenialReason::PrivateAddress,
                        retry_after: None,
                    });
                    Err(HttpError::HttpRequestDenied)
                }
                Err(Refusal::NotConnected(error)) => Err(error),
                Err(Refusal::Failed(error)) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    Err(error)
                }
            }
        })
    }
}

/// The guest's timeouts, each capped by the configured one.
fn capped_options(options: Option<RequestOptions>, config: &OutboundConfig) -> RequestOptions {
    let cap = |asked: Option<Duration>, ceiling: Duration| {
        Some(asked.map_or(ceiling, |asked| asked.min(ceiling)))
    };
    let asked = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap(asked.connect_timeout, config.connect_timeout),
        first_byte_timeout: cap(asked.first_byte_timeout, config.first_byte_timeout),
        between_bytes_timeout: cap(asked.between_bytes_timeout, config.between_bytes_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_timeouts_are_capped() {
        let config = OutboundConfig::default();
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(1)),
            first_byte_timeout: Some(Duration::from_secs(3600)),
            between_bytes_timeout: None,
        };
        let capped = capped_options(Some(asked), &config);
        assert_eq!(capped.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(capped.first_byte_timeout, Some(config.first_byte_timeout));
        assert_eq!(
            capped.between_bytes_timeout,
            Some(config.between_bytes_timeout)
        );
    }
}
