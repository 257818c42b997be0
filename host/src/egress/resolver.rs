//! [`CheckedResolver`]: one lookup per connection, every address checked before any is used.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::is_public_address;

/// What a [`Lookup`] answers: the addresses of a name, in the resolver's order.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. It only answers; [`CheckedResolver`] decides which answers
/// may be used. [`SystemLookup`] asks the operating system; tests put a scripted one in its place.
pub trait Lookup: Send + Sync + fmt::Debug {
    /// The addresses `host` (a name, never an IP literal) has now.
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|address| address.ip()).collect())
        })
    }
}

/// Why a name or address may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The host is, or resolves to (among others), an address that is not public, and the
    /// operator does not allow private destinations. Nothing was connected to.
    #[error(
        "{host} resolves to {address}, a private, loopback or link-local address, which this \
         host refuses"
    )]
    PrivateAddress {
        /// The host as asked for.
        host: String,
        /// The first address that is not public.
        address: IpAddr,
    },
    /// The name has no address.
    #[error("{host} has no address")]
    NotFound {
        /// The host as asked for.
        host: String,
    },
    /// The lookup itself failed.
    #[error("cannot resolve {host}: {reason}")]
    Lookup {
        /// The host as asked for.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

/// Resolves a host once and lets through only addresses the policy allows: every address must
/// be public (see [`is_public_address`]) unless the operator allows private destinations. An
/// IP literal is checked the same way without a lookup.
///
/// It is also a [`reqwest::dns::Resolve`], so a reqwest client connects only to the addresses
/// it checked (see [`super::EgressClient`]). Cheap to clone.
#[derive(Clone)]
pub struct CheckedResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl fmt::Debug for CheckedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedResolver")
            .field("lookup", &self.lookup)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Default for CheckedResolver {
    /// The system's resolver; private destinations refused.
    fn default() -> Self {
        CheckedResolver::system(false)
    }
}

impl CheckedResolver {
    /// The system's resolver; private destinations allowed only if `allow_private`.
    pub fn system(allow_private: bool) -> Self {
        CheckedResolver::with_lookup(Arc::new(SystemLookup), allow_private)
    }

    /// Names are looked up with `lookup`; private destinations allowed only if `allow_private`.
    pub fn with_lookup(lookup: Arc<dyn Lookup>, allow_private: bool) -> Self {
        CheckedResolver {
            lookup,
            allow_private,
        }
    }

    /// Whether private, loopback and link-local destinations are allowed (development, tests).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether `host` may be connected to at `address`.
    ///
    /// # Errors
    ///
    /// [`ResolveError::PrivateAddress`] if `address` is not public and private destinations are
    /// refused.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), ResolveError> {
        if self.allow_private || is_public_address(address) {
            Ok(())
        } else {
            Err(ResolveError::PrivateAddress {
                host: host.to_owned(),
                address,
            })
        }
    }

    /// The addresses to connect to for `host` (a name, or an IP literal, IPv6 in brackets or
    /// not): looked up once, and every one of them checked.
    ///
    /// # Errors
    ///
    /// [`ResolveError::PrivateAddress`] if any address is refused (then none is returned);
    /// [`ResolveError::NotFound`] or [`ResolveError::Lookup`] if there is none.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let addresses = match ip_literal(host) {
            Some(literal) => vec![literal],
            None => self
                .lookup
                .lookup(host)
                .await
                .map_err(|e| ResolveError::Lookup {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?,
        };
        if addresses.is_empty() {
            return Err(ResolveError::NotFound {
                host: host.to_owned(),
            });
        }
        for address in &addresses {
            self.check(host, *address)?;
        }
        Ok(addresses)
    }
}

/// The address `host` spells, if it is an IP literal (IPv6 in brackets or not).
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

impl Resolve for CheckedResolver {
    /// [`CheckedResolver::resolve`]; reqwest puts the URL's port on the addresses.
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addresses = CheckedResolver::resolve(&resolver, name.as_str()).await?;
            let addrs: Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|address| SocketAddr::new(address, 0)),
            );
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers from a fixed table and records what it was asked.
    #[derive(Debug, Default)]
    struct Table {
        answers: Vec<(&'static str, Vec<IpAddr>)>,
        asked: Mutex<Vec<String>>,
    }

    impl Lookup for Table {
        fn lookup(&self, host: &str) -> LookupFuture {
            self.asked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(host.to_owned());
            let found = self
                .answers
                .iter()
                .find(|(name, _)| *name == host)
                .map(|(_, addresses)| addresses.clone())
                .unwrap_or_default();
            Box::pin(std::future::ready(Ok(found)))
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[tokio::test]
    async fn one_private_address_among_public_ones_refuses_the_name() {
        let table = Arc::new(Table {
            answers: vec![
                ("mixed.example", vec![ip("93.184.215.14"), ip("127.0.0.1")]),
                (
                    "public.example",
                    vec![ip("93.184.215.14"), ip("2606:4700::1")],
                ),
            ],
            ..Table::default()
        });
        let resolver = CheckedResolver::with_lookup(table.clone(), false);
        assert_eq!(
            resolver.resolve("mixed.example").await,
            Err(ResolveError::PrivateAddress {
                host: "mixed.example".to_owned(),
                address: ip("127.0.0.1"),
            })
        );
        assert_eq!(
            resolver.resolve("public.example").await,
            Ok(vec![ip("93.184.215.14"), ip("2606:4700::1")])
        );
        assert_eq!(
            resolver.resolve("nowhere.example").await,
            Err(ResolveError::NotFound {
                host: "nowhere.example".to_owned()
            })
        );
        // Literals are checked without a lookup.
        assert!(resolver.resolve("[::1]").await.is_err());
        assert!(resolver.resolve("10.0.0.1").await.is_err());
        assert_eq!(resolver.resolve("8.8.8.8").await, Ok(vec![ip("8.8.8.8")]));
        let asked = table
            .asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(
            asked,
            ["mixed.example", "public.example", "nowhere.example"]
        );

        let allowing = CheckedResolver::with_lookup(table, true);
        assert_eq!(
            allowing.resolve("mixed.example").await,
            Ok(vec![ip("93.184.215.14"), ip("127.0.0.1")])
        );
    }
}
