//! `plinth:plugin/log`: leveled, structured log lines, always granted.
//!
//! Lines go to `tracing` (target `plinth::plugin`) tagged with tenant, plugin and version, and
//! are kept with the call's outcome. A call keeps at most `max_log_lines` lines of at most
//! `max_log_line_bytes` bytes; further lines are dropped and counted, and a plugin is never
//! failed for logging too much.

use serde::Serialize;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::log::{self as wit, Level};
use crate::sandbox::{CallIdentity, SandboxState};

/// One line a plugin logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message, truncated to the per-line cap.
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
}

/// The log capability's per-call state.
#[derive(Debug)]
pub struct LogState {
    lines: Vec<LogLine>,
    dropped: u32,
    max_lines: u32,
    max_line_bytes: usize,
}

impl LogState {
    /// A log for one call with these caps.
    pub fn new(max_lines: u32, max_line_bytes: u32) -> Self {
        LogState {
            lines: Vec::new(),
            dropped: 0,
            max_lines,
            max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Records one line (or counts it as dropped) and emits it to `tracing`.
    pub(crate) fn write(
        &mut self,
        identity: &CallIdentity,
        level: &'static str,
        message: &str,
        fields: Vec<(String, String)>,
    ) {
        if self.lines.len() >= usize::try_from(self.max_lines).unwrap_or(usize::MAX) {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let message = truncate(message, self.max_line_bytes);
        tracing::info!(
            target: "plinth::plugin",
            tenant = %identity.tenant,
            plugin = %identity.plugin,
            version = %identity.version,
            level,
            ?fields,
            "{message}"
        );
        self.lines.push(LogLine {
            level,
            message,
            fields,
        });
    }

    /// The lines kept and how many were dropped.
    pub(crate) fn finish(self) -> (Vec<LogLine>, u32) {
        (self.lines, self.dropped)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

pub(crate) fn link(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

impl wit::Host for SandboxState {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.log
            .write(&self.identity, level_name(level), &message, fields);
        Ok(())
    }
}
