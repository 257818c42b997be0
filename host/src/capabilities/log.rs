//! `plinth:plugin/log`: leveled, structured log lines, always granted.
//!
//! Lines go to `tracing` (target `plinth::plugin`) tagged with tenant, plugin and version, and
//! are kept with the call's outcome. Everything a guest logs (and writes to stdout or stderr,
//! which become lines too) is bounded by the call's [`Limits`]:
//! - per line: the message and every field key and value together fit in
//!   `max_log_line_bytes` (a key in [`MAX_FIELD_KEY_BYTES`]), with at most `max_log_fields`
//!   fields; what does not fit is cut, ending in `…`, and the line is marked `truncated`;
//! - per call: at most `max_log_lines` lines and `max_log_bytes` bytes are kept; further lines
//!   are dropped and counted.
//!
//! Control characters and line separators are escaped ([`crate::guest_text`]), so no line can
//! forge another in the server's log. A plugin is never failed for logging too much.

use plinth_package::Permissions;
use serde::Serialize;
use wasmtime::component::Linker;

use super::{CallContext, CallIdentity, Capability, HasView, SandboxView, View, view};
use crate::bindings::log::{self as wit, Level};
use crate::guest_text::escape_within;
use crate::limits::Limits;

/// Longest field key kept, in bytes; a longer key is cut.
pub const MAX_FIELD_KEY_BYTES: usize = 64;

/// One line a plugin logged, escaped and within the line caps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message, escaped and cut to the per-line cap.
    pub message: String,
    /// Structured fields, escaped and cut to the per-line caps.
    pub fields: Vec<(String, String)>,
    /// Whether the message or fields were cut, or fields dropped, to fit the line caps.
    pub truncated: bool,
}

impl LogLine {
    /// Bytes the line counts against the per-call cap: its message, keys and values.
    fn size(&self) -> usize {
        self.fields
            .iter()
            .fold(self.message.len(), |size, (key, value)| {
                size.saturating_add(key.len()).saturating_add(value.len())
            })
    }
}

/// The log capability's per-call state.
#[derive(Debug)]
pub struct LogState {
    lines: Vec<LogLine>,
    kept_bytes: usize,
    dropped: u32,
    max_lines: usize,
    max_line_bytes: usize,
    max_fields: usize,
    max_bytes: usize,
}

impl LogState {
    /// A log for one call with the log caps of `limits`.
    pub fn new(limits: &Limits) -> Self {
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        LogState {
            lines: Vec::new(),
            kept_bytes: 0,
            dropped: 0,
            max_lines: size(limits.max_log_lines.into()),
            max_line_bytes: size(limits.max_log_line_bytes.into()),
            max_fields: size(limits.max_log_fields.into()),
            max_bytes: size(limits.max_log_bytes),
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
        if self.lines.len() >= self.max_lines || self.kept_bytes >= self.max_bytes {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let line = self.bounded(level, message, &fields);
        let size = line.size();
        if self.kept_bytes.saturating_add(size) > self.max_bytes {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.kept_bytes += size;
        tracing::info!(
            target: "plinth::plugin",
            tenant = %identity.tenant,
            plugin = %identity.plugin,
            version = %identity.version,
            level,
            fields = ?line.fields,
            truncated = line.truncated,
            "{}",
            line.message
        );
        self.lines.push(line);
    }

    /// The line as kept: escaped, with the message, keys and values cut to the line's budget
    /// and fields past the cap dropped.
    fn bounded(&self, level: &'static str, message: &str, fields: &[(String, String)]) -> LogLine {
        let mut budget = self.max_line_bytes;
        let (message, mut truncated) = escape_within(message, budget);
        budget -= message.len();
        let mut kept = Vec::new();
        for (index, (key, value)) in fields.iter().enumerate() {
            if index >= self.max_fields || budget == 0 {
                truncated = true;
                break;
            }
            let (key, key_cut) = escape_within(key, MAX_FIELD_KEY_BYTES.min(budget));
            budget -= key.len();
            let (value, value_cut) = escape_within(value, budget);
            budget -= value.len();
            truncated |= key_cut || value_cut;
            kept.push((key, value));
        }
        LogLine {
            level,
            message,
            fields: kept,
            truncated,
        }
    }

    /// The lines kept and how many were dropped.
    pub(crate) fn finish(self) -> (Vec<LogLine>, u32) {
        (self.lines, self.dropped)
    }
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

/// The log capability: always granted, its state the call's [`LogState`].
#[derive(Debug)]
pub struct Log;

impl Capability for Log {
    type State = LogState;

    fn granted(_: &Permissions) -> bool {
        true
    }

    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasView<Log>>(linker, view::<Log, T>)
    }

    fn prepare(call: &CallContext<'_>) -> LogState {
        LogState::new(call.limits)
    }
}

impl wit::Host for View<'_, LogState> {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.state
            .write(self.identity, level_name(level), &message, fields);
        Ok(())
    }
}
