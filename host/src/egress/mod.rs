//! Egress: where the platform's own outbound HTTP may go, decided in one place.
//!
//! Plugins' requests ([`crate::capabilities::http`]) and the marketplace's webhook deliveries
//! both connect only through an [`EgressClient`], whose [`CheckedResolver`] looks a name up
//! **once**, checks **every** address it got against the policy ([`is_public_address`], unless
//! the operator allows private destinations) and hands only those checked addresses to the
//! connector. Nothing resolves the name a second time, so a name that answers a public address
//! to the check and a private one to the connection (DNS rebinding) has no window to do it in.
//! TLS still verifies the certificate for the requested name and sends it as SNI: the name stays
//! in the URL, only its resolution is ours.
//!
//! An [`EgressClient`] follows no redirects (a redirect is a new request that passes the same
//! checks when its caller chooses to send it) and uses no proxy from the environment.
//!
//! ```no_run
//! use plinth_host::egress::{CheckedResolver, EgressClient, EgressOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = EgressClient::new(CheckedResolver::system(false), EgressOptions::default())?;
//! let url = reqwest::Url::parse("https://hooks.example.com/x")?;
//! let response = client.execute(reqwest::Request::new(reqwest::Method::GET, url)).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

mod address;
mod client;
mod resolver;

pub use address::is_public_address;
pub use client::{EgressClient, EgressError, EgressOptions};
pub use resolver::{CheckedResolver, Lookup, LookupFuture, ResolveError, SystemLookup};
