//! plinth-host: the data plane.
//!
//! The host runs signed plugin components for many tenants at once. Each call runs in a fresh
//! sandbox (a wasmtime `Store`) that carries the tenant's identity, the permissions the tenant
//! granted, its configuration and its limits; capabilities are linked only when granted.
#![deny(missing_docs)]

pub mod bindings;
pub mod breaker;
pub mod budget;
pub mod cache;
pub mod capabilities;
pub mod capacity;
mod cpu;
pub mod egress;
pub mod engine;
pub mod error;
mod footprint;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod guest_text;
pub mod installs;
pub mod invoke;
pub mod kv;
pub mod limits;
mod loaded;
pub mod local_changes;
pub mod metering;
pub mod plugin;
pub mod rates;
pub mod runs;
pub mod runtime;
pub mod sandbox;
pub mod statements;
pub mod trust;
mod workers;

pub use budget::{EventBudget, QuotaGrant};
pub use capacity::{Capacity, CapacityConfig, Footprint, TenantShare};
pub use engine::{EngineConfig, Metering, PlinthEngine};
pub use error::{Error, InvokeError};
pub use installs::{
    BreakerStateName, BreakerStatus, CallFailure, Delivery, HostEvent, HttpServed, InstallInfo,
    InstallSpec, RollbackReady, RolledBack, Swapped, UpgradeReady,
};
pub use invoke::{Call, Event, Invocation, Usage};
pub use limits::Limits;
pub use plugin::{LoadedPlugin, PreparedPlugin};
pub use runs::{RunEntry, RunLogging, RunRecord, RunRecorder};
pub use runtime::{Host, HostConfig, HostPolicies, PoolInUse};
