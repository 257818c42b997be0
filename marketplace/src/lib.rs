//! plinth-marketplace: Plinth's control plane.
//!
//! Storage on SQLite (the embedded default) or PostgreSQL ([`db`]), accounts and roles
//! ([`accounts`], [`auth`]), tenants and plans ([`tenants`]), publishers and their signing
//! keys ([`publishers`]), submissions with validation ([`submissions`]), the review workflow
//! ([`review`]), the catalog with full-text search ([`catalog`]), ratings ([`ratings`]),
//! inboxes with webhook delivery ([`notifications`]), metering, quotas and rate limits
//! ([`usage`], [`rate_limit`], shared across processes by [`rate_leases`]), run logs and
//! failure reports ([`runs`]), the queue of asynchronous events and schedules ([`queue`],
//! [`schedules`]), the revenue-share ledger ([`ledger`]), tenants' own billing ([`billing`]), backups ([`backup`]), and the HTTP
//! API that serves them all ([`server`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), plinth_marketplace::Error> {
//! use plinth_marketplace::{AppState, Db, Settings, server};
//! use plinth_marketplace::audit::key::AuditKey;
//! let data_dir = std::path::Path::new("./plinth-data");
//! let db = Db::open_data_dir(data_dir).await?.with_audit_key(AuditKey::load_or_create(data_dir)?);
//! let key = plinth_marketplace::signing_key::load_or_create(data_dir)?;
//! let state = AppState::new(db, Settings::default(), key);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.map_err(|e| {
//!     plinth_marketplace::Error::Internal(e.to_string())
//! })?;
//! server::serve(listener, state, std::future::pending(), std::time::Duration::from_secs(10)).await
//! # }
//! ```

pub mod accounts;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod body;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod db;
mod display_name;
pub mod error;
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod installs;
mod key_file;
pub mod key_rotation;
pub mod ledger;
pub mod month;
pub mod notifications;
pub mod plugin_http;
pub mod publishers;
pub mod queue;
pub mod rate_leases;
pub mod rate_limit;
pub mod ratings;
pub mod review;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod signing_key;
pub mod state;
pub mod statements;
pub mod submissions;
pub mod tenants;
pub mod usage;
pub mod versions;

pub use db::{Backend, Db};
pub use error::{Error, Result};
pub use settings::Settings;
pub use state::{AppState, Runtime};
