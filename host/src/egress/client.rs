//! [`EgressClient`]: a reqwest client that connects only to addresses its [`CheckedResolver`]
//! let through.

use std::sync::Arc;
use std::time::Duration;

use super::resolver::{CheckedResolver, ResolveError, ip_literal};
use reqwest::redirect::Policy;

/// How an [`EgressClient`] connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressOptions {
    /// Longest wait for the lookup, the TCP connection and the TLS handshake together.
    pub connect_timeout: Duration,
    /// Longest a whole request may take, body included; `None`: no limit but the caller's.
    pub timeout: Option<Duration>,
    /// Whether idle connections are kept for later requests to the same host (they were made
    /// to checked addresses). Off: every request connects, and so resolves, afresh.
    pub reuse_connections: bool,
    /// The `User-Agent` sent when a request has none.
    pub user_agent: Option<&'static str>,
}

impl Default for EgressOptions {
    /// 10 s to connect, no overall timeout, no reuse, no `User-Agent`.
    fn default() -> Self {
        EgressOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: None,
            reuse_connections: false,
            user_agent: None,
        }
    }
}

/// Why a request through an [`EgressClient`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The destination was refused or could not be resolved; nothing was connected to.
    #[error(transparent)]
    Resolve(ResolveError),
    /// The request failed on the way (connection, TLS, protocol, timeout).
    #[error("{0}")]
    Request(#[source] reqwest::Error),
    /// The client could not be built (its TLS configuration).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl EgressError {
    /// The resolver's refusal if that is what ended `error`, else `error` itself.
    fn from_request(error: reqwest::Error) -> EgressError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(current) = cause {
            if let Some(refused) = current.downcast_ref::<ResolveError>() {
                return EgressError::Resolve(refused.clone());
            }
            cause = current.source();
        }
        EgressError::Request(error)
    }
}

/// An HTTP client that reaches only what its [`CheckedResolver`] allows: names through the
/// resolver (one lookup per connection, every address checked), IP literals checked before the
/// request is sent. No redirects are followed and no proxy is used. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    resolver: CheckedResolver,
}

impl EgressClient {
    /// A client resolving through `resolver`, connecting as `options` say.
    ///
    /// # Errors
    ///
    /// [`EgressError::Client`] if the TLS configuration cannot be built.
    pub fn new(resolver: CheckedResolver, options: EgressOptions) -> Result<Self, EgressError> {
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver.clone()))
            .no_proxy()
            .redirect(Policy::none())
            .connect_timeout(options.connect_timeout);
        if let Some(timeout) = options.timeout {
            builder = builder.timeout(timeout);
        }
        if !options.reuse_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        if let Some(agent) = options.user_agent {
            builder = builder.user_agent(agent);
        }
        let client = builder.build().map_err(EgressError::Client)?;
        Ok(EgressClient { client, resolver })
    }

    /// The resolver (and so the policy) this client connects through.
    pub fn resolver(&self) -> &CheckedResolver {
        &self.resolver
    }

    /// Sends `request` and answers the response head (the body streams from it).
    ///
    /// # Errors
    ///
    /// [`EgressError::Resolve`] if the destination is refused or unknown, before anything is
    /// connected; [`EgressError::Request`] if the request fails on the way.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, EgressError> {
        // reqwest connects to an IP literal without asking the resolver: check it here.
        if let Some(host) = request.url().host_str()
            && let Some(address) = ip_literal(host)
        {
            self.resolver
                .check(host, address)
                .map_err(EgressError::Resolve)?;
        }
        self.client
            .execute(request)
            .await
            .map_err(EgressError::from_request)
    }
}
