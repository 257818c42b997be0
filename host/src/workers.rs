//! The threads plugin code runs on: a runtime of its own, apart from the one that serves the
//! API, so that no plugin load can hold the threads `/healthz` and the control plane need.
//!
//! Calls yield at every epoch tick ([`crate::invoke`]), so within this runtime a busy plugin
//! shares the threads with every other call; between runtimes the operating system shares the
//! cores.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::Error;

/// The plugin runtime. Dropping it stops its threads without waiting for calls in flight.
#[derive(Debug)]
pub(crate) struct Workers {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Workers {
    /// A runtime of `threads` worker threads (at least one).
    pub(crate) fn new(threads: usize) -> Result<Self, Error> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("plinth-plugin")
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("cannot start the plugin runtime: {e}")))?;
        Ok(Workers {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `call` on the plugin runtime. It runs to its end even if the handle is dropped.
    pub(crate) fn spawn<F>(&self, call: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(call)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // A runtime may not be dropped (blocking) inside another one's async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
