//! How runs are kept: a tenant's runs that one write stores, whose starts lie within
//! [`MAX_SPAN_MS`], become one row of `run_batches` whose body is the runs serialised with
//! postcard (a compact binary serde format: no field names) and compressed with LZ4. One insert then stores hundreds of runs: the `run_log` benchmark's profile showed
//! a row and an index entry per run costing the event path's cores more than the 5% the issue
//! allows once they are saturated. Readers decompress the batches a query reaches.
//!
//! LZ4 (the `lz4_flex` crate, pure Rust) because consecutive runs repeat their plugin, version,
//! topic and log lines: it compresses several times at well under a microsecond a run, where
//! zlib costs several. With JSON, this module's first format, the writer took 1.5 µs a run
//! in the `run_log` benchmark, against 1.2 with postcard, and batches were 10% larger.

use serde::{Deserialize, Serialize};

use super::query::RunCapture;
use super::store::StoredLine;
use crate::error::{Error, Result};

/// The longest time between the starts of the first and the last run of a batch, in
/// milliseconds: a run started at `t` is in a batch whose `last_at` lies in
/// `t..=t + MAX_SPAN_MS`, so finding it reads a minute of batches at most.
pub const MAX_SPAN_MS: i64 = 60_000;

/// One run as a batch keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The run's id (a UUIDv7 carrying `started_at`).
    pub id: String,
    /// The plugin (the install) that ran.
    pub plugin: String,
    /// The version that ran.
    pub version: String,
    /// `event`, `http` or `hook`.
    pub entry_kind: String,
    /// The topic, `METHOD /path` or the hook's name (secrets redacted).
    pub entry: String,
    /// The event's id, for events.
    pub event_id: Option<String>,
    /// When it started, in Unix milliseconds.
    pub started_at: i64,
    /// How long it took, in microseconds.
    pub duration_us: i64,
    /// Fuel burnt, when metered by fuel.
    pub fuel: Option<i64>,
    /// Peak bytes of memories and tables.
    pub memory_bytes: i64,
    /// Outbound HTTP requests sent.
    pub outbound_requests: i64,
    /// Bytes written to kv.
    pub kv_bytes_written: i64,
    /// `ok` or the error's code.
    pub outcome: String,
    /// The error's message (secrets redacted), when it failed.
    pub error_message: Option<String>,
    /// Bytes of output.
    pub output_bytes: i64,
    /// The plugin's log lines (secrets redacted).
    pub logs: Vec<StoredLine>,
    /// Lines dropped past the caps.
    pub logs_dropped: i64,
    /// Payload and output, when the install captured them (redacted; UTF-8, invalid bytes
    /// replaced).
    pub capture: Option<RunCapture>,
}

impl StoredRun {
    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.outcome != "ok"
    }

    /// Whether its log lines or error contain `needle` (already lower-cased).
    pub(super) fn mentions(&self, needle: &str) -> bool {
        let has = |text: &str| text.to_lowercase().contains(needle);
        self.error_message.as_deref().is_some_and(has)
            || self.logs.iter().any(|line| {
                has(&line.message)
                    || line
                        .fields
                        .iter()
                        .any(|(key, value)| has(key) || has(value))
            })
    }
}

/// A batch ready to insert.
#[derive(Debug)]
pub(super) struct BatchRow {
    pub(super) tenant: String,
    /// The newest run's start.
    pub(super) last_at: i64,
    /// The newest run's id.
    pub(super) id: String,
    /// The oldest run's start.
    pub(super) first_at: i64,
    pub(super) runs: i64,
    pub(super) failures: i64,
    pub(super) body: Vec<u8>,
}

/// The first byte of a batch's body: how the rest is written. 1: the runs in postcard (the
/// fields of [`StoredRun`] in order), LZ4-compressed with their size in front.
const FORMAT: u8 = 1;

/// A run a batch can hold: a [`StoredRun`] (read back, rewritten by a trim), or a run borrowed
/// from its record as the writer stores it (`view::RunView`). Both serialise as a
/// [`StoredRun`].
pub(super) trait BatchRun: Serialize {
    /// When it started, in Unix milliseconds.
    fn started_at(&self) -> i64;
    /// Its id.
    fn id(&self) -> String;
    /// Whether it failed.
    fn failed(&self) -> bool;
    /// The order of runs in a batch: by start, then by id.
    fn cmp_start(&self, other: &Self) -> std::cmp::Ordering;
}

impl BatchRun for StoredRun {
    fn started_at(&self) -> i64 {
        self.started_at
    }

    fn id(&self) -> String {
        self.id.clone()
    }

    fn failed(&self) -> bool {
        StoredRun::failed(self)
    }

    fn cmp_start(&self, other: &Self) -> std::cmp::Ordering {
        (self.started_at, &self.id).cmp(&(other.started_at, &other.id))
    }
}

/// The buffers a batch is serialised and compressed in, kept from one batch to the next by
/// whoever encodes many (the run log's encoder): a batch of 2,048 runs is about 600 KB
/// serialised, and buffers allocated afresh for each batch (and grown as it is written) cost
/// the encoder more in page faults and copies than the compression itself, in the `run_log`
/// benchmark's profile.
///
/// Buffers past [`Scratch::KEEP`] bytes are let go after the batch that grew them: batches of
/// captured runs can be tens of megabytes (2,048 runs of 16 KiB payloads and outputs), and
/// one such burst should not hold that much for the life of the process.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    raw: Vec<u8>,
    compressed: Vec<u8>,
}

impl Scratch {
    /// The most bytes a buffer keeps from one batch to the next (the runs of a batch of
    /// 2,048 `hello`-like runs take about 600 KB).
    const KEEP: usize = 4 << 20;

    /// Lets go of buffers grown past [`Scratch::KEEP`].
    fn trim(&mut self) {
        for buffer in [&mut self.raw, &mut self.compressed] {
            if buffer.capacity() > Self::KEEP {
                *buffer = Vec::new();
            }
        }
    }
}

/// `runs`, oldest first, as the body of a batch, encoded in `scratch`'s buffers.
///
/// # Errors
///
/// [`Error::Internal`] if they cannot be serialised.
pub(super) fn encode<R: Serialize>(runs: &[R], scratch: &mut Scratch) -> Result<Vec<u8>> {
    let mut raw = std::mem::take(&mut scratch.raw);
    raw.clear();
    let raw = postcard::to_extend(runs, raw)
        .map_err(|e| Error::Internal(format!("serialising runs: {e}")))?;
    let size = u32::try_from(raw.len())
        .map_err(|_| Error::Internal(format!("a batch of {} bytes", raw.len())))?;
    let most = lz4_flex::block::get_maximum_output_size(raw.len());
    // Grown (and zeroed) only when a batch needs more than any before it.
    if scratch.compressed.len() < most {
        scratch.compressed.resize(most, 0);
    }
    let compressed = lz4_flex::block::compress_into(&raw, &mut scratch.compressed)
        .map_err(|e| Error::Internal(format!("compressing runs: {e}")))?;
    scratch.raw = raw;
    // What `lz4_flex::compress_prepend_size` writes: the size, little-endian, then the block.
    let mut body = Vec::with_capacity(1 + 4 + compressed);
    body.push(FORMAT);
    body.extend_from_slice(&size.to_le_bytes());
    body.extend_from_slice(&scratch.compressed[..compressed]);
    scratch.trim();
    Ok(body)
}

/// The runs of a batch's `body`, oldest first.
///
/// # Errors
///
/// [`Error::Internal`] if the body is not one the writer wrote.
pub fn decode(body: &[u8]) -> Result<Vec<StoredRun>> {
    let corrupt =
        |e: &dyn std::fmt::Display| Error::Internal(format!("a stored batch of runs: {e}"));
    let Some((&FORMAT, compressed)) = body.split_first() else {
        return Err(corrupt(&"an unknown format"));
    };
    let raw = lz4_flex::decompress_size_prepended(compressed).map_err(|e| corrupt(&e))?;
    postcard::from_bytes(&raw).map_err(|e| corrupt(&e))
}

/// `tenant`'s `runs` (in any order) as batches: sorted by start, cut wherever the next run
/// would make a batch span more than [`MAX_SPAN_MS`]. The runs are sorted as references, so
/// sorting moves pointers, not runs. They are encoded in `scratch`.
///
/// # Errors
///
/// [`Error::Internal`] if they cannot be serialised.
pub(super) fn batches<R: BatchRun>(
    tenant: &str,
    runs: &mut [&R],
    scratch: &mut Scratch,
) -> Result<Vec<BatchRow>> {
    runs.sort_by(|a, b| a.cmp_start(b));
    let mut rows = Vec::new();
    let mut start = 0;
    while start < runs.len() {
        let first_at = runs[start].started_at();
        let end = runs[start..]
            .iter()
            .position(|run| run.started_at() - first_at > MAX_SPAN_MS)
            .map_or(runs.len(), |offset| start + offset);
        rows.push(row_of(tenant, &runs[start..end], scratch)?);
        start = end;
    }
    Ok(rows)
}

/// The batch of `tenant`'s `runs` (sorted by start, at least one), encoded in `scratch`.
///
/// # Errors
///
/// [`Error::Internal`] if they are none or cannot be serialised.
pub(super) fn row_of<R: BatchRun>(
    tenant: &str,
    runs: &[&R],
    scratch: &mut Scratch,
) -> Result<BatchRow> {
    let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
        return Err(Error::Internal("an empty batch of runs".to_owned()));
    };
    Ok(BatchRow {
        tenant: tenant.to_owned(),
        last_at: last.started_at(),
        id: last.id(),
        first_at: first.started_at(),
        runs: i64::try_from(runs.len()).unwrap_or(i64::MAX),
        failures: i64::try_from(runs.iter().filter(|run| run.failed()).count()).unwrap_or(i64::MAX),
        body: encode(runs, scratch)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, started_at: i64, outcome: &str) -> StoredRun {
        StoredRun {
            id: id.to_owned(),
            plugin: "examples.hello".to_owned(),
            version: "0.1.0".to_owned(),
            entry_kind: "event".to_owned(),
            entry: "greet".to_owned(),
            event_id: Some("ev".to_owned()),
            started_at,
            duration_us: 120,
            fuel: Some(5_000),
            memory_bytes: 65_536,
            outbound_requests: 0,
            kv_bytes_written: 0,
            outcome: outcome.to_owned(),
            error_message: (outcome != "ok").then(|| format!("Boom at {id}")),
            output_bytes: 12,
            logs: vec![StoredLine {
                level: "info".to_owned(),
                message: "greeting".to_owned(),
                fields: vec![("Name".to_owned(), "Ada".to_owned())],
                truncated: false,
            }],
            logs_dropped: 0,
            capture: None,
        }
    }

    #[test]
    fn a_batch_reads_back_as_written() -> Result<()> {
        let runs = vec![run("a", 1_000, "ok"), run("b", 1_001, "timeout")];
        let mut scratch = Scratch::default();
        let body = encode(&runs, &mut scratch)?;
        assert_eq!(decode(&body)?, runs);
        assert!(decode(b"not a batch").is_err());
        // The buffers kept from a larger batch do not leak into a smaller one.
        let one = vec![run("c", 2_000, "ok")];
        assert_eq!(decode(&encode(&one, &mut scratch)?)?, one);
        assert!(scratch.raw.capacity() > 0, "the buffers are kept");
        // A batch larger than the buffers keep reads back, and its buffers are let go.
        let mut big = run("d", 3_000, "ok");
        big.capture = Some(RunCapture {
            input: "x".repeat(Scratch::KEEP),
            output: String::new(),
            truncated: false,
        });
        let big = vec![big];
        assert_eq!(decode(&encode(&big, &mut scratch)?)?, big);
        assert_eq!(
            (scratch.raw.capacity(), scratch.compressed.capacity()),
            (0, 0)
        );
        Ok(())
    }

    #[test]
    fn bodies_are_what_the_first_writer_wrote() -> Result<()> {
        // Batches stored before the encoder kept its buffers must still read back: the body is
        // the format byte, then LZ4 with the size in front of the postcard runs.
        let runs: Vec<StoredRun> = (0..50)
            .map(|i| {
                run(
                    &format!("r{i}"),
                    1_000 + i,
                    if i % 7 == 0 { "trap" } else { "ok" },
                )
            })
            .collect();
        let raw = postcard::to_allocvec(&runs).map_err(|e| Error::Internal(e.to_string()))?;
        let mut first = vec![FORMAT];
        first.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
        assert_eq!(encode(&runs, &mut Scratch::default())?, first);
        Ok(())
    }

    #[test]
    fn batches_span_a_minute_at_most() -> Result<()> {
        let runs = [
            run("c", 70_000, "ok"),
            run("a", 1_000, "trap"),
            run("b", 61_000, "ok"),
            run("d", 200_000, "ok"),
        ];
        let rows = batches(
            "t1",
            &mut runs.iter().collect::<Vec<_>>(),
            &mut Scratch::default(),
        )?;
        let spans: Vec<(i64, i64, i64, i64, &str)> = rows
            .iter()
            .map(|row| {
                (
                    row.first_at,
                    row.last_at,
                    row.runs,
                    row.failures,
                    row.id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                (1_000, 61_000, 2, 1, "b"),
                (70_000, 70_000, 1, 0, "c"),
                (200_000, 200_000, 1, 0, "d")
            ]
        );
        Ok(())
    }

    #[test]
    fn text_is_found_in_logs_fields_and_errors() {
        let failed = run("x", 1, "plugin");
        assert!(failed.mentions("boom"));
        assert!(failed.mentions("name"));
        assert!(failed.mentions("ada"));
        assert!(!failed.mentions("grace"));
        assert!(!run("y", 1, "ok").mentions("boom"));
    }
}
