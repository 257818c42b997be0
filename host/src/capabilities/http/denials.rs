//! Refused outbound requests: why ([`DenialReason`]), which ([`Denial`]), and the bounded log of
//! one call's refusals ([`Denials`]).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How many denials one call's log keeps; later ones are only counted, so a guest looping on
/// refused requests cannot grow host memory or flood the log.
pub const MAX_RECORDED_DENIALS: usize = 32;

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
/// it from [`super::OutboundHttp::denials`] before the call and read it after.
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
    pub(super) fn record(&self, denial: Denial) {
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
