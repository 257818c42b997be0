//! Leveled, structured log lines. Always granted.
//!
//! The host tags each line with the tenant, plugin and version, caps each line (message and
//! fields together, and the number of fields) and each call (lines and bytes; lines past the
//! cap are dropped, never failing the plugin), and escapes control characters and line breaks.
//!
//! ```no_run
//! use plinth_sdk::log;
//!
//! log::info("order received");
//! log::write(log::Level::Warn, "slow upstream", &[("ms", "1200"), ("host", "api.example.com")]);
//! ```

use crate::bindings::plugin::plinth::plugin::log as wit;

/// The severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing, usually disabled.
    Trace,
    /// Information useful when debugging a plugin.
    Debug,
    /// Normal operational messages.
    Info,
    /// Something unexpected that the plugin recovered from.
    Warn,
    /// A failure the tenant or developer should look at.
    Error,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Writes one line at `level` with structured `fields` (key, value pairs).
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    wit::write(level.into(), message, &fields);
}

/// Writes a [`Level::Trace`] line.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message.as_ref(), &[]);
}

/// Writes a [`Level::Debug`] line.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref(), &[]);
}

/// Writes a [`Level::Info`] line.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref(), &[]);
}

/// Writes a [`Level::Warn`] line.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message.as_ref(), &[]);
}

/// Writes a [`Level::Error`] line.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref(), &[]);
}
