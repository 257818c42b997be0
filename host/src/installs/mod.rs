//! Which plugin versions run for which tenant, and their lifecycle: install → active ⇄
//! disabled → uninstalled, atomic upgrade with automatic rollback, manual rollback, and
//! dispatch of a tenant's events to its subscribed installs.
//!
//! Each install holds the version calls use *now* behind an [`ArcSwap`](arc_swap::ArcSwap): a
//! call takes its own reference when it starts, so an upgrade or rollback swaps atomically and
//! in-flight calls finish on the version they started with. Repeated failures open the
//! install's circuit breaker; a fresh upgrade whose failure rate passes the rollout policy is
//! rolled back automatically and a [`HostEvent`] says why.
//!
//! - `table`: the install table ([`InstallSpec`], the deployment an install runs, finding,
//!   adding and removing installs, [`InstallInfo`]);
//! - `lifecycle`: install, restore, apply, reconfigure, enable, detach, uninstall;
//! - `versions`: upgrade, rollback and revert ([`UpgradeReady`], [`RollbackReady`],
//!   [`Swapped`], [`RolledBack`]);
//! - `dispatch`: calls through installs: events ([`Host::dispatch`](crate::Host::dispatch),
//!   [`Delivery`]) and HTTP requests ([`Host::serve_http`](crate::Host::serve_http),
//!   [`HttpServed`]);
//! - `accounting`: what each such call leaves behind: the breaker, the failure log and the
//!   rollout guard ([`BreakerStatus`], [`CallFailure`], [`HostEvent`]).

mod accounting;
mod dispatch;
mod lifecycle;
mod table;
mod versions;

pub use accounting::{BreakerStateName, BreakerStatus, CallFailure, HostEvent, RECENT_FAILURES};
pub use dispatch::{Delivery, HttpServed};
pub use table::{InstallInfo, InstallSpec};
pub use versions::{RollbackReady, RolledBack, Swapped, UpgradeReady};

pub(crate) use table::InstallTable;
