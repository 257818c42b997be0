//! One current-thread tokio runtime per fuzzing process, for the async host functions.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// The process's runtime, built on first use.
///
/// # Panics
///
/// If tokio cannot build a current-thread runtime (then no target can run at all).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
}
