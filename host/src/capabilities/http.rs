//! Outbound HTTP (`wasi:http/outgoing-handler`): the policy every request a plugin sends
//! passes through.
//!
//! [`OutboundHttp`] implements [`WasiHttpHooks`]; the sandbox builds one per call and puts it in
//! the store's `WasiHttpCtxView::hooks`. Its [`send_request`](WasiHttpHooks::send_request) is
//! the one place every outgoing request goes through, and it refuses, in this order:
//!
//! 1. a scheme other than `http` or `https` ([`DenialReason::Scheme`]);
//! 2. a host and port not on the plugin's granted allowlist ([`DenialReason::NotAllowlisted`],
//!    decided by [`Permissions::allows_host`]);
//! 3. a request past the call's budget, shared by all clones of the value
//!    ([`DenialReason::TooManyRequests`]), or past the tenant's per-minute rate shared by all
//!    of the tenant's calls ([`DenialReason::TenantRate`], see [`crate::rates`]);
//! 4. unless the operator allows private destinations, an IP literal or a name resolving to any
//!    address that is not public ([`DenialReason::PrivateAddress`], see [`is_public_address`]).
//!
//! Checks 1–3 run before the hook returns, so before any DNS lookup or connection. A refused
//! request fails in the guest with `error-code.HTTP-request-denied` and is recorded in the
//! call's [`Denials`], which the sandbox reads after the call to report a permission error;
//! [`OutboundHttp::requests_sent`] counts the requests actually sent, for metering.
//!
//! **Redirects**: `wasi:http` never follows a redirect itself; it hands the `3xx` response to
//! the guest. A guest (or its SDK) that follows one sends a new request, which passes through
//! this same hook and is checked like any other.
//!
//! ```
//! use std::sync::Arc;
//! use plinth_host::capabilities::http::OutboundHttp;
//! use plinth_package::Permissions;
//! use wasmtime_wasi_http::WasiHttpHooks;
//!
//! let permissions = Arc::new(Permissions::default()); // the tenant's grant
//! let outbound = OutboundHttp::new(permissions, false, 10);
//! let hooks: Box<dyn WasiHttpHooks> = Box::new(outbound.clone()); // into the store
//! // … run the call; afterwards, on the clone kept outside:
//! assert!(outbound.denials().first().is_none());
//! assert_eq!(outbound.requests_sent(), 0);
//! # drop(hooks);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::BodyExt;
use plinth_package::Permissions;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::rates::TenantRates;

/// How many denials one call's log keeps; later ones are only counted, so a guest looping on
/// refused requests cannot grow host memory or flood the log.
pub const MAX_RECORDED_DENIALS: usize = 32;

/// The future `send_request` hands back for driving the connection after the response head.
type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// What `send_request` resolves to.
type SendResult = Result<(Response<WasiBody>, IoFuture), HttpError>;

/// The operator's and the plan's settings for one call's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Whether requests may go to loopback, private, link-local and other non-public addresses
    /// (see [`is_public_address`]). Off in production; tests turn it on to reach `127.0.0.1`.
    pub allow_private: bool,
    /// Most requests the call may have admitted past the scheme and allowlist checks; later
    /// ones are refused with [`DenialReason::TooManyRequests`]. Requests refused as not
    /// allowlisted do not spend it; one refused as private does (it cost a DNS lookup).
    pub max_requests: u32,
    /// Longest wait for DNS resolution and, separately, for the connection (TCP and TLS); a
    /// shorter timeout asked by the guest wins.
    pub connect_timeout: Duration,
    /// Longest wait for the response head once connected; a shorter one asked by the guest wins.
    pub first_byte_timeout: Duration,
    /// Longest wait between frames of the response body; a shorter one asked by the guest wins.
    pub between_bytes_timeout: Duration,
}

impl Default for OutboundConfig {
    /// Private destinations refused, 10 requests, 10 s to connect, 30 s to the first byte and
    /// between body frames.
    fn default() -> Self {
        OutboundConfig {
            allow_private: false,
            max_requests: 10,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an outbound request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// The host and port are not on the plugin's granted allowlist.
    NotAllowlisted,
    /// The destination is (or resolves to) a loopback, private or otherwise non-public address
    /// and the operator does not allow those.
    PrivateAddress,
    /// The call already had its budget of requests.
    TooManyRequests,
    /// The scheme is neither `http` nor `https`.
    Scheme,
    /// The tenant's calls together already sent their plan's requests for this minute.
    TenantRate,
}

impl DenialReason {
    /// A stable snake_case code, e.g. `not_allowlisted`.
    pub fn code(self) -> &'static str {
        match self {
            DenialReason::NotAllowlisted => "not_allowlisted",
            DenialReason::PrivateAddress => "private_address",
            DenialReason::TooManyRequests => "too_many_requests",
            DenialReason::Scheme => "scheme",
            DenialReason::TenantRate => "tenant_rate",
        }
    }
}

impl fmt::Display for DenialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenialReason::NotAllowlisted => "the host is not on the plugin's allowlist",
            DenialReason::PrivateAddress => {
                "the destination is a private or loopback address, which this host refuses"
            }
            DenialReason::TooManyRequests => "the call has used up its outbound request limit",
            DenialReason::Scheme => "only http and https are allowed",
            DenialReason::TenantRate => {
                "the tenant has sent its plan's outbound requests for this minute"
            }
        })
    }
}

/// One refused request: where it was going and why. Never holds the path, headers or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The requested host, lowercased, as in the URI (an IPv6 literal keeps its brackets).
    pub host: String,
    /// The requested port, or the scheme's default; `None` when neither is known (an
    /// unsupported scheme without an explicit port).
    pub port: Option<u16>,
    /// Why it was refused.
    pub reason: DenialReason,
    /// For a rate: how long until a request would be allowed.
    pub retry_after: Option<Duration>,
}

impl Denial {
    /// `host:port`, or just `host` when the port is unknown.
    pub fn target(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "outbound request to {} denied: {}",
            self.target(),
            self.reason
        )
    }
}

/// The shared log of one call's refused requests. Cheap to clone; clones share the log. Take
/// it from [`OutboundHttp::denials`] before the call and read it after.
#[derive(Debug, Clone, Default)]
pub struct Denials {
    inner: Arc<DenialsInner>,
}

#[derive(Debug, Default)]
struct DenialsInner {
    /// The first [`MAX_RECORDED_DENIALS`] denials.
    recorded: Mutex<Vec<Denial>>,
    /// Every denial, recorded or not.
    total: AtomicU32,
}

impl Denials {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first denial, if any: what the sandbox reports as the permission error.
    pub fn first(&self) -> Option<Denial> {
        self.lock().first().cloned()
    }

    /// The recorded denials, oldest first (at most [`MAX_RECORDED_DENIALS`]).
    pub fn to_vec(&self) -> Vec<Denial> {
        self.lock().clone()
    }

    /// Whether no request was refused.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// How many requests were refused, including those past [`MAX_RECORDED_DENIALS`].
    pub fn total(&self) -> u32 {
        self.inner.total.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Denial>> {
        self.inner
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records and logs (host, port and reason only) one refusal.
    fn record(&self, denial: Denial) {
        let before = self.inner.total.fetch_add(1, Ordering::Relaxed);
        let mut recorded = self.lock();
        if recorded.len() < MAX_RECORDED_DENIALS {
            tracing::warn!(
                host = %denial.host,
                port = ?denial.port,
                reason = denial.reason.code(),
                "outbound HTTP request denied"
            );
            recorded.push(denial);
        } else if usize::try_from(before).is_ok_and(|n| n == MAX_RECORDED_DENIALS) {
            tracing::warn!("further outbound HTTP denials in this call are counted, not logged");
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
/// Build one per call (it holds `Arc`s of the grant and of the call's record, so it is cheap)
/// and box a clone into the store; clones share the budget, the [`Denials`] and the count of
/// requests sent, so the sandbox reads [`denials`](Self::denials) and
/// [`requests_sent`](Self::requests_sent) on its own clone after the call. See the
/// [module documentation](self) for the checks, their order, and redirects.
#[derive(Debug, Clone)]
pub struct OutboundHttp {
    permissions: Arc<Permissions>,
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
    /// allowlist), whether the operator allows private destinations, and the call's budget of
    /// requests; timeouts are [`OutboundConfig::default`]'s.
    pub fn new(permissions: Arc<Permissions>, allow_private: bool, max_requests: u32) -> Self {
        Self::with_config(
            permissions,
            OutboundConfig {
                allow_private,
                max_requests,
                ..OutboundConfig::default()
            },
        )
    }

    /// The policy for one call with every setting given.
    pub fn with_config(permissions: Arc<Permissions>, config: OutboundConfig) -> Self {
        OutboundHttp {
            permissions,
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
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .parse::<IpAddr>()
            .ok();
        Ok(Destination {
            explicit_port: port != default_port,
            tls: default_port == 443,
            host,
            port,
            literal,
        })
    }
}

/// A request's destination once admitted.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// Lowercased host as in the URI (IPv6 in brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Whether the port differs from the scheme's default (and so belongs in `Host`).
    explicit_port: bool,
    tls: bool,
    /// The host as an IP address, when it is a literal.
    pub(crate) literal: Option<IpAddr>,
}

impl Destination {
    /// The value of the `Host` header for this destination.
    fn host_header(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }
}

impl WasiHttpHooks for OutboundHttp {
    /// Every scheme is let through to [`send_request`](Self::send_request), which refuses all
    /// but `http` and `https` and records the refusal (refusing here would leave no record).
    fn is_supported_scheme(&mut self, _scheme: &Scheme) -> bool {
        true
    }

    /// Checks the request (see the [module documentation](self)), then sends it with
    /// [`wasmtime_wasi_http::default_send_request`] under this call's timeouts.
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
        let config = self.config;
        let options = capped_options(options, &config);
        let denials = self.denials.clone();
        let counters = Arc::clone(&self.counters);
        Box::new(async move {
            let pinned = check_address(&destination, &config, &options, &denials).await?;
            let request = retarget(request, &destination, pinned)?;
            counters.sent.fetch_add(1, Ordering::Relaxed);
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
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

/// Refuses non-public destinations unless the operator allows them; returns the checked
/// address to connect to, when there is one.
///
/// A name is resolved here and refused if any address is not public. `default_send_request`
/// connects by name and would resolve again, leaving a DNS-rebinding window (the name could
/// answer differently the second time); [`retarget`] closes it for plain `http` by connecting
/// to the checked address. For `https` the name must stay in the URI for certificate
/// verification and SNI, so the window remains there: closing it needs a connector of our own
/// (rustls with a pinned address), which is not worth a dependency until a plan needs it.
async fn check_address(
    destination: &Destination,
    config: &OutboundConfig,
    options: &RequestOptions,
    denials: &Denials,
) -> Result<Option<SocketAddr>, HttpError> {
    if config.allow_private {
        return Ok(None);
    }
    let addresses = match destination.literal {
        Some(ip) => vec![SocketAddr::new(ip, destination.port)],
        None => {
            let lookup = tokio::net::lookup_host((destination.host.as_str(), destination.port));
            let timeout = options.connect_timeout.unwrap_or(config.connect_timeout);
            match tokio::time::timeout(timeout, lookup).await {
                Err(_) => return Err(HttpError::DnsTimeout),
                Ok(Err(_)) => {
                    return Err(HttpError::DnsError {
                        rcode: Some("address not available".to_owned()),
                        info_code: None,
                    });
                }
                Ok(Ok(found)) => found.collect(),
            }
        }
    };
    if addresses.iter().any(|a| !is_public_address(a.ip())) {
        denials.record(Denial {
            host: destination.host.clone(),
            port: Some(destination.port),
            reason: DenialReason::PrivateAddress,
            retry_after: None,
        });
        return Err(HttpError::HttpRequestDenied);
    }
    match addresses.first() {
        Some(address) => Ok(Some(*address)),
        None => Err(HttpError::DestinationNotFound),
    }
}

/// Points the request at exactly what was checked: the pinned address for plain `http`, else
/// `host:port` (dropping any user info), keeping the `Host` header on the requested name.
pub(crate) fn retarget(
    mut request: Request<WasiBody>,
    destination: &Destination,
    pinned: Option<SocketAddr>,
) -> Result<Request<WasiBody>, HttpError> {
    if !request.headers().contains_key(HOST) {
        let host = HeaderValue::try_from(destination.host_header())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        request.headers_mut().insert(HOST, host);
    }
    let authority = match pinned {
        Some(address) if !destination.tls => address.to_string(),
        _ => format!("{}:{}", destination.host, destination.port),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.authority =
        Some(Authority::try_from(authority).map_err(|_| HttpError::HttpRequestUriInvalid)?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    Ok(request)
}

/// Whether `ip` is a public unicast address a plugin may reach when private destinations are
/// refused.
///
/// Not public: IPv4 `0.0.0.0/8` (unspecified), `10/8`, `100.64/10` (CGNAT), `127/8`,
/// `169.254/16` (link-local, cloud metadata), `172.16/12`, `192.0.0/24`, the documentation
/// nets, `192.168/16`, `198.18/15`, `224/4` (multicast), `240/4` and the broadcast address;
/// IPv6 `::` and `::1`, `fc00::/7` (unique local), `fe80::/10` (link-local), `fec0::/10`,
/// `ff00::/8` (multicast), `2001:db8::/32`, `100::/64`; and IPv6 forms that embed an IPv4
/// address (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) whose IPv4 address is not public.
///
/// ```
/// use plinth_host::capabilities::http::is_public_address;
/// assert!(is_public_address("93.184.215.14".parse()?));
/// assert!(!is_public_address("169.254.169.254".parse()?));
/// assert!(!is_public_address("::ffff:127.0.0.1".parse()?));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let not_public = a == 0
        || a == 10
        || (a == 100 && (b & 0xc0) == 64)
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (b & 0xf0) == 16)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 168)
        || (a == 198 && (b & 0xfe) == 18)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !not_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let not_public = (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xff00) == 0xff00
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]);
    !not_public
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible (which covers `::` and `::1`),
/// NAT64 or 6to4 IPv6 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Empty;

    fn request(uri: &str) -> Request<WasiBody> {
        let body = Empty::<Bytes>::new()
            .map_err(HttpError::from)
            .boxed_unsync();
        let mut request = Request::new(body);
        *request.uri_mut() = uri.parse().unwrap_or_default();
        request
    }

    fn destination(host: &str, port: u16, explicit_port: bool, tls: bool) -> Destination {
        Destination {
            host: host.to_owned(),
            port,
            explicit_port,
            tls,
            literal: None,
        }
    }

    #[test]
    fn plain_http_is_pinned_to_the_checked_address_and_keeps_the_host_name() {
        let pinned = SocketAddr::from(([93, 184, 215, 14], 80));
        let request = retarget(
            request("http://api.example.com/v1?q=1"),
            &destination("api.example.com", 80, false, false),
            Some(pinned),
        );
        let Ok(request) = request else {
            panic!("retarget failed");
        };
        assert_eq!(request.uri().to_string(), "http://93.184.215.14:80/v1?q=1");
        assert_eq!(
            request.headers().get(HOST).map(HeaderValue::as_bytes),
            Some(&b"api.example.com"[..])
        );
    }

    #[test]
    fn https_keeps_the_name_and_user_info_is_dropped() {
        let pinned = SocketAddr::from(([93, 184, 215, 14], 8443));
        let request = retarget(
            request("https://user@api.example.com:8443/"),
            &destination("api.example.com", 8443, true, true),
            Some(pinned),
        );
        let Ok(request) = request else {
            panic!("retarget failed");
        };
        assert_eq!(request.uri().to_string(), "https://api.example.com:8443/");
        assert_eq!(
            request.headers().get(HOST).map(HeaderValue::as_bytes),
            Some(&b"api.example.com:8443"[..])
        );
    }

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
