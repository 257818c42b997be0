//! Run logs: what tenants' plugins did, for the tenants and the plugins' developers.
//!
//! The host hands every call through an install to the [`recorder::Recorder`] as it ends; its
//! writer stores them in batches, off the event path ([`store`], [`batch`]): the run itself (entry,
//! version, duration, fuel, memory, outcome, log lines), its day's counts per install
//! ([`daily`]) and, for a failure that is the plugin's, its plugin's failure report
//! ([`reports`]). Payloads and outputs are kept only for installs whose tenant turned capture
//! on, cut to [`MAX_CAPTURED_BYTES`]; the install's secret configuration values are redacted
//! from everything stored (module `redact`).
//!
//! Each tenant's plan bounds its run log: days kept and runs kept ([`retention`]).

pub mod batch;
pub mod daily;
mod encoder;
pub mod query;
pub mod recorder;
mod redact;
pub mod reports;
pub mod retention;
pub(crate) mod routes;
mod run_id;
mod signature;
pub mod store;
mod view;

pub use recorder::{Recorder, RecorderCounters, RunLogSettings};
pub use redact::REDACTED;

/// The most bytes of a run's payload, and of its output, kept when its install captures them.
pub const MAX_CAPTURED_BYTES: usize = 16 * 1024;
