//! Run records: what each call through an install did (when, through which entry, on which
//! version, for how long, with what outcome and log lines), handed to a [`RunRecorder`] so
//! tenants and developers can look at their plugins' runs.
//!
//! The host builds a [`RunRecord`] only when a recorder is set ([`Host::set_run_recorder`](crate::Host::set_run_recorder)),
//! after the call has ended and its install's bookkeeping is done. The recorder runs on the
//! call's path, so it must not block: the marketplace's queues the record and writes batches
//! from another task.
//!
//! Payloads and outputs are copied into a record only for installs whose tenant turned capture
//! on ([`RunLogging::capture_bytes`]); the install's secret configuration values travel with the
//! record ([`RunLogging::secrets`]) so whoever stores it can redact them.

use std::sync::Arc;
use std::time::SystemTime;

use crate::capabilities::log::LogLine;
use crate::error::InvokeError;
use crate::invoke::{Invocation, Usage};

/// How an install's runs are recorded: part of its [`InstallSpec`](crate::InstallSpec).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLogging {
    /// When set, each run keeps its payload (or HTTP request body) and output, each cut to
    /// this many bytes; `None` (the default) keeps neither.
    pub capture_bytes: Option<usize>,
    /// The install's secret configuration values: whoever stores a record must replace them
    /// in its log lines, payload and output.
    pub secrets: Arc<[String]>,
}

/// Which export of the plugin a run called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEntry {
    /// `handler.on-event` for an event.
    Event {
        /// The event's id (onward events: the id of the event that emitted it, then `/`).
        id: String,
        /// The event's topic.
        topic: String,
        /// Emit hops that led to it (0 from outside).
        depth: u32,
    },
    /// The plugin's HTTP handler.
    Http {
        /// The request's method.
        method: String,
        /// The path the plugin saw.
        path: String,
    },
    /// A lifecycle hook (`on-install`, `on-upgrade`, `on-uninstall`).
    Hook {
        /// The hook's name.
        name: &'static str,
    },
}

impl RunEntry {
    /// `event`, `http` or `hook`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunEntry::Event { .. } => "event",
            RunEntry::Http { .. } => "http",
            RunEntry::Hook { .. } => "hook",
        }
    }

    /// What the entry was called with, in one line: the topic, `METHOD /path`, or the hook.
    pub fn describe(&self) -> String {
        match self {
            RunEntry::Event { topic, .. } => topic.clone(),
            RunEntry::Http { method, path } => format!("{method} {path}"),
            RunEntry::Hook { name } => (*name).to_string(),
        }
    }
}

/// What a captured run took in and gave back, each cut to the install's capture size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The event's payload or the HTTP request's body.
    pub input: Vec<u8>,
    /// The output (an event's result, an HTTP response's body); empty for none.
    pub output: Vec<u8>,
    /// Whether the input or output was cut.
    pub truncated: bool,
}

/// One call through an install, as it ended.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The tenant it ran for.
    pub tenant: String,
    /// The plugin's id.
    pub plugin: String,
    /// The version that ran.
    pub version: String,
    /// The export it called.
    pub entry: RunEntry,
    /// When it started (wall clock).
    pub started_at: SystemTime,
    /// What it used.
    pub usage: Usage,
    /// Bytes of output on success, or the typed error.
    pub outcome: Result<u64, InvokeError>,
    /// The plugin's log lines (within the per-call caps).
    pub logs: Vec<LogLine>,
    /// Lines dropped past the per-call caps.
    pub logs_dropped: u32,
    /// Input and output, when the install captures them.
    pub captured: Option<Captured>,
    /// Values to redact before the record is stored or shown.
    pub secrets: Arc<[String]>,
}

/// Where the host hands its run records: it must return quickly and never block.
pub trait RunRecorder: Send + Sync + std::fmt::Debug {
    /// One run that ended.
    fn record(&self, run: RunRecord);

    /// Whether runs are wanted now: while it answers `false` the host builds no record at all,
    /// as without a recorder (a recorder that can be paused; the `run_log` benchmark's, which
    /// measures one server with recording on and off in turns). Called on every call's path.
    fn recording(&self) -> bool {
        true
    }
}

impl RunRecord {
    /// The record of a call through an install that ended as `invocation`, whose log lines
    /// move into the record (nothing reads them once the run is recorded). `input` is what
    /// capture would keep of the call's input (borrowed: copied only when captured); `output`
    /// overrides the invocation's output (an HTTP response body).
    pub(crate) fn of(
        (tenant, plugin, version): (&str, &str, &str),
        entry: RunEntry,
        logging: &RunLogging,
        invocation: &mut Invocation,
        input: &[u8],
        output: Option<&[u8]>,
    ) -> RunRecord {
        let returned = match &invocation.result {
            Ok(Some(bytes)) => Some(bytes.as_slice()),
            _ => None,
        };
        let output = output.or(returned);
        let outcome = match &invocation.result {
            Ok(_) => Ok(output.map_or(0, |bytes| bytes.len() as u64)),
            Err(error) => Err(error.clone()),
        };
        let captured = logging.capture_bytes.map(|max| {
            let cut = |bytes: &[u8]| bytes[..bytes.len().min(max)].to_vec();
            let output = output.unwrap_or_default();
            Captured {
                input: cut(input),
                output: cut(output),
                truncated: input.len() > max || output.len() > max,
            }
        });
        let started_at = SystemTime::now()
            .checked_sub(invocation.usage.wall)
            .unwrap_or_else(SystemTime::now);
        RunRecord {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            version: version.to_string(),
            entry,
            started_at,
            usage: invocation.usage.clone(),
            outcome,
            logs: std::mem::take(&mut invocation.logs),
            logs_dropped: invocation.logs_dropped,
            captured,
            secrets: Arc::clone(&logging.secrets),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn ok(output: &[u8]) -> Invocation {
        let mut invocation =
            Invocation::failed(InvokeError::Internal(String::new()), Instant::now());
        invocation.result = Ok(Some(output.to_vec()));
        invocation.usage.wall = Duration::from_millis(5);
        invocation
    }

    #[test]
    fn nothing_is_captured_unless_the_install_asks() {
        let entry = RunEntry::Hook { name: "on-install" };
        let record = RunRecord::of(
            ("t", "p", "1.0.0"),
            entry.clone(),
            &RunLogging::default(),
            &mut ok(b"output"),
            b"payload",
            None,
        );
        assert_eq!(record.captured, None);
        assert_eq!(record.outcome, Ok(6));
        let capturing = RunLogging {
            capture_bytes: Some(4),
            secrets: Arc::from(vec!["s3cret".to_string()]),
        };
        let mut logged = ok(b"output");
        logged.logs.push(LogLine {
            level: "info",
            message: "hello".into(),
            fields: vec![("k".into(), "v".into())],
            truncated: false,
        });
        let record = RunRecord::of(
            ("t", "p", "1.0.0"),
            entry,
            &capturing,
            &mut logged,
            b"pay",
            None,
        );
        // The log lines moved into the record.
        assert!(logged.logs.is_empty());
        assert_eq!(record.logs.len(), 1);
        assert_eq!(record.logs[0].message, "hello");
        let captured = record.captured.unwrap_or_default();
        assert_eq!(captured.input, b"pay");
        assert_eq!(captured.output, b"outp");
        assert!(captured.truncated);
        assert_eq!(&*record.secrets, ["s3cret".to_string()]);
    }

    #[test]
    fn entries_describe_themselves() {
        let http = RunEntry::Http {
            method: "POST".into(),
            path: "/hook".into(),
        };
        assert_eq!(
            (http.kind(), http.describe().as_str()),
            ("http", "POST /hook")
        );
        let event = RunEntry::Event {
            id: "e1".into(),
            topic: "order.created".into(),
            depth: 0,
        };
        assert_eq!(event.describe(), "order.created");
    }
}
