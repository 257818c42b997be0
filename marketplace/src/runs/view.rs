//! A run as the writer stores it, borrowed from the host's record: [`RunView`] serialises
//! exactly as the [`StoredRun`] a reader decodes (postcard keeps fields in order and writes a
//! `&str` as it writes a `String`), but copies nothing it does not change. Only what the
//! writer computes (the run's id, its outcome's message, a described HTTP entry, captured
//! bodies) or redacts is owned; the plugin, version, topic and log lines are the record's.
//!
//! The writer used to build a [`StoredRun`] of every record: about ten strings allocated and
//! a few hundred bytes moved per run, then freed again: copies and frees were the largest
//! parts of the encoder's time in the `run_log` benchmark's profile.

use std::borrow::Cow;

use plinth_host::capabilities::log::LogLine;
use plinth_host::{RunEntry, RunRecord};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use uuid::Uuid;

use super::batch::BatchRun;
#[cfg(doc)]
use super::batch::StoredRun;
use super::query::RunCapture;
use super::redact::Redactor;
use super::run_id;
use crate::usage::db_count;

/// The most bytes of a run's error message, and of its entry, kept.
pub(super) const MAX_TEXT_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes, at a character boundary, marked with `…` when cut.
pub(super) fn cut(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text;
    }
    let mut text = text.into_owned();
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    Cow::Owned(text)
}

/// One run of a batch being written, borrowed from its record.
pub(super) struct RunView<'a> {
    record: &'a RunRecord,
    redactor: Redactor<'a>,
    /// The run's id (a UUIDv7 carrying its start).
    pub(super) id: Uuid,
    /// When it started, in Unix milliseconds.
    pub(super) started_at: i64,
    /// How long it took, in microseconds.
    pub(super) duration_us: i64,
    /// `ok` or the error's code.
    pub(super) outcome: &'static str,
    /// The error's message (redacted, cut), when it failed.
    pub(super) error_message: Option<String>,
    output_bytes: i64,
    /// The topic, `METHOD /path` or the hook's name (redacted, cut).
    entry: Cow<'a, str>,
    capture: Option<RunCapture>,
}

impl<'a> RunView<'a> {
    /// The run `record` is, as stored.
    pub(super) fn of(record: &'a RunRecord) -> RunView<'a> {
        let redactor = Redactor::new(&record.secrets);
        let (id, started_at) = run_id::of_start(record.started_at);
        let duration_us =
            db_count(u64::try_from(record.usage.wall.as_micros()).unwrap_or(u64::MAX));
        let (outcome, error_message, output_bytes) = match &record.outcome {
            Ok(bytes) => ("ok", None, db_count(*bytes)),
            Err(error) => (
                error.code(),
                Some(
                    cut(
                        Cow::Owned(redactor.owned(error.to_string())),
                        MAX_TEXT_BYTES,
                    )
                    .into_owned(),
                ),
                0,
            ),
        };
        let described = match &record.entry {
            RunEntry::Event { topic, .. } => Cow::Borrowed(topic.as_str()),
            RunEntry::Hook { name } => Cow::Borrowed(*name),
            http @ RunEntry::Http { .. } => Cow::Owned(http.describe()),
        };
        let entry = cut(redact_cow(&redactor, described), MAX_TEXT_BYTES);
        let lossy = |bytes: &[u8]| String::from_utf8_lossy(&redactor.bytes(bytes)).into_owned();
        let capture = record.captured.as_ref().map(|captured| RunCapture {
            input: lossy(&captured.input),
            output: lossy(&captured.output),
            truncated: captured.truncated,
        });
        RunView {
            record,
            redactor,
            id,
            started_at,
            duration_us,
            outcome,
            error_message,
            output_bytes,
            entry,
            capture,
        }
    }

    /// The tenant it ran for.
    pub(super) fn tenant(&self) -> &'a str {
        &self.record.tenant
    }

    /// The plugin that ran.
    pub(super) fn plugin(&self) -> &'a str {
        &self.record.plugin
    }

    /// The version that ran.
    pub(super) fn version(&self) -> &'a str {
        &self.record.version
    }

    /// Whether the call was refused (capacity, quota, breaker) rather than failed in the
    /// plugin's code.
    pub(super) fn refused(&self) -> bool {
        self.record
            .outcome
            .as_ref()
            .is_err_and(plinth_host::InvokeError::is_refusal)
    }
}

/// `text` redacted: borrowed still when it holds no secret (owned text stays owned).
fn redact_cow<'t>(redactor: &Redactor<'_>, text: Cow<'t, str>) -> Cow<'t, str> {
    match text {
        Cow::Borrowed(text) => redactor.cow(text),
        Cow::Owned(text) => Cow::Owned(redactor.owned(text)),
    }
}

impl BatchRun for RunView<'_> {
    fn started_at(&self) -> i64 {
        self.started_at
    }

    fn id(&self) -> String {
        self.id.hyphenated().to_string()
    }

    fn failed(&self) -> bool {
        self.outcome != "ok"
    }

    fn cmp_start(&self, other: &Self) -> std::cmp::Ordering {
        // A UUID's bytes sort as its lower-case hyphenated text does.
        (self.started_at, self.id).cmp(&(other.started_at, other.id))
    }
}

impl Serialize for RunView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let usage = &record.usage;
        let mut id = Uuid::encode_buffer();
        let mut run = serializer.serialize_struct("StoredRun", 18)?;
        run.serialize_field("id", &*self.id.hyphenated().encode_lower(&mut id))?;
        run.serialize_field("plugin", record.plugin.as_str())?;
        run.serialize_field("version", record.version.as_str())?;
        run.serialize_field("entry_kind", record.entry.kind())?;
        run.serialize_field("entry", &*self.entry)?;
        let event_id = match &record.entry {
            RunEntry::Event { id, .. } => Some(id.as_str()),
            _ => None,
        };
        run.serialize_field("event_id", &event_id)?;
        run.serialize_field("started_at", &self.started_at)?;
        run.serialize_field("duration_us", &self.duration_us)?;
        run.serialize_field("fuel", &usage.fuel.map(db_count))?;
        run.serialize_field("memory_bytes", &db_count(usage.memory_bytes))?;
        run.serialize_field("outbound_requests", &i64::from(usage.outbound_requests))?;
        run.serialize_field("kv_bytes_written", &db_count(usage.kv_bytes_written))?;
        run.serialize_field("outcome", self.outcome)?;
        run.serialize_field("error_message", &self.error_message)?;
        run.serialize_field("output_bytes", &self.output_bytes)?;
        run.serialize_field(
            "logs",
            &Lines {
                lines: &record.logs,
                redactor: &self.redactor,
            },
        )?;
        run.serialize_field("logs_dropped", &i64::from(record.logs_dropped))?;
        run.serialize_field("capture", &self.capture)?;
        run.end()
    }
}

/// A run's log lines, redacted as they are serialised (each as a `StoredLine`).
struct Lines<'a> {
    lines: &'a [LogLine],
    redactor: &'a Redactor<'a>,
}

impl Serialize for Lines<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.lines.iter().map(|line| Line {
            line,
            redactor: self.redactor,
        }))
    }
}

/// One log line, redacted as it is serialised.
struct Line<'a> {
    line: &'a LogLine,
    redactor: &'a Redactor<'a>,
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let redactor = self.redactor;
        let mut line = serializer.serialize_struct("StoredLine", 4)?;
        line.serialize_field("level", self.line.level)?;
        line.serialize_field("message", &*redactor.cow(&self.line.message))?;
        line.serialize_field("fields", &Fields(&self.line.fields, redactor))?;
        line.serialize_field("truncated", &self.line.truncated)?;
        line.end()
    }
}

/// A log line's fields, redacted as they are serialised (as `[key, value]` pairs).
struct Fields<'a>(&'a [(String, String)], &'a Redactor<'a>);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Fields(fields, redactor) = self;
        serializer.collect_seq(
            fields
                .iter()
                .map(|(key, value)| (redactor.cow(key), redactor.cow(value))),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use plinth_host::runs::Captured;
    use plinth_host::{InvokeError, Usage};

    use super::*;
    use crate::runs::batch::{self, StoredRun};
    use crate::runs::store::StoredLine;

    #[test]
    fn long_texts_are_cut_at_a_character() {
        assert_eq!(cut(Cow::Borrowed("short"), 10), "short");
        let cut_text = cut(Cow::Owned("é".repeat(10)), 8);
        assert!(cut_text.len() <= 8 && cut_text.ends_with('…'), "{cut_text}");
    }

    fn record(entry: RunEntry, outcome: Result<u64, InvokeError>) -> RunRecord {
        RunRecord {
            tenant: "t1".into(),
            plugin: "labs.hooks".into(),
            version: "1.2.0".into(),
            entry,
            started_at: UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
            usage: Usage {
                wall: Duration::from_micros(1_500),
                fuel: Some(42_000),
                memory_bytes: 1 << 20,
                outbound_requests: 2,
                kv_bytes_written: 77,
            },
            outcome,
            logs: vec![LogLine {
                level: "warn",
                message: "posting with s3cret".into(),
                fields: vec![
                    ("token".into(), "s3cret".into()),
                    ("user".into(), "ada".into()),
                ],
                truncated: true,
            }],
            logs_dropped: 3,
            captured: Some(Captured {
                input: b"{\"key\":\"s3cret\"}".to_vec(),
                output: vec![0xff, b'o', b'k'],
                truncated: false,
            }),
            secrets: Arc::from(vec!["s3cret".to_owned()]),
        }
    }

    /// What a reader decodes of `records` written as views, in their order.
    fn stored(records: &[RunRecord]) -> Result<Vec<StoredRun>, crate::Error> {
        let views: Vec<RunView<'_>> = records.iter().map(RunView::of).collect();
        batch::decode(&batch::encode(&views, &mut batch::Scratch::default())?)
    }

    #[test]
    fn a_view_reads_back_as_the_stored_run_redacted() -> Result<(), crate::Error> {
        let records = [
            record(
                RunEntry::Http {
                    method: "POST".into(),
                    path: "/hooks/s3cret".into(),
                },
                Err(InvokeError::PluginError {
                    kind: "failed".into(),
                    message: "bad token s3cret".into(),
                }),
            ),
            record(
                RunEntry::Event {
                    id: "ev-1".into(),
                    topic: "orders.created".into(),
                    depth: 0,
                },
                Ok(12),
            ),
        ];
        let runs = stored(&records)?;
        let [failed, event] = runs.as_slice() else {
            panic!("two runs, not {runs:?}");
        };
        assert_eq!(
            crate::runs::run_id::started_at_of(&failed.id),
            Some(1_795_000_000_123)
        );
        let line = StoredLine {
            level: "warn".into(),
            message: "posting with [redacted]".into(),
            fields: vec![
                ("token".into(), "[redacted]".into()),
                ("user".into(), "ada".into()),
            ],
            truncated: true,
        };
        let expected = StoredRun {
            id: failed.id.clone(),
            plugin: "labs.hooks".into(),
            version: "1.2.0".into(),
            entry_kind: "http".into(),
            entry: "POST /hooks/[redacted]".into(),
            event_id: None,
            started_at: 1_795_000_000_123,
            duration_us: 1_500,
            fuel: Some(42_000),
            memory_bytes: 1 << 20,
            outbound_requests: 2,
            kv_bytes_written: 77,
            outcome: failed.outcome.clone(),
            error_message: failed.error_message.clone(),
            output_bytes: 0,
            logs: vec![line],
            logs_dropped: 3,
            capture: Some(RunCapture {
                input: "{\"key\":\"[redacted]\"}".into(),
                output: "\u{fffd}ok".into(),
                truncated: false,
            }),
        };
        assert_eq!(failed, &expected);
        assert_ne!(failed.outcome, "ok");
        let message = failed.error_message.as_deref().unwrap_or_default();
        assert!(
            message.contains("[redacted]") && !message.contains("s3cret"),
            "{message}"
        );
        assert_eq!(
            event,
            &StoredRun {
                id: event.id.clone(),
                entry_kind: "event".into(),
                entry: "orders.created".into(),
                event_id: Some("ev-1".into()),
                outcome: "ok".into(),
                error_message: None,
                output_bytes: 12,
                ..expected.clone()
            }
        );
        assert_ne!(event.id, failed.id);
        Ok(())
    }

    #[test]
    fn a_long_entry_is_cut() -> Result<(), crate::Error> {
        let topic = "t".repeat(MAX_TEXT_BYTES * 2);
        let runs = stored(&[record(
            RunEntry::Event {
                id: "ev".into(),
                topic,
                depth: 0,
            },
            Ok(0),
        )])?;
        let entry = &runs[0].entry;
        assert!(
            entry.len() <= MAX_TEXT_BYTES && entry.ends_with('…'),
            "{}",
            entry.len()
        );
        Ok(())
    }

    #[test]
    fn views_sort_as_their_ids_text_does() {
        let records: Vec<RunRecord> = (0..64)
            .map(|_| record(RunEntry::Hook { name: "on-install" }, Ok(0)))
            .collect();
        let mut views: Vec<RunView<'_>> = records.iter().map(RunView::of).collect();
        views.sort_by(|a, b| a.cmp_start(b));
        let ids: Vec<String> = views.iter().map(BatchRun::id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
