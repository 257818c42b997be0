//! The host's [`RunRecorder`]: runs are queued on the call's path without waiting (a bounded
//! queue; when it is full the run is counted as dropped, never waited for), gathered into
//! batches and encoded on a thread of low priority (module `encoder`), and written by one task
//! per process, off the event path. A batch is written when it is full or
//! [`RunLogSettings::linger`] after its first run, whichever comes first, or at once when a
//! reader asks ([`Recorder::flush`]): one transaction stores many runs however few calls there
//! are at a time.
//!
//! The writer counts each tenant's runs as it writes them, from a count it takes in the
//! database at the tenant's first batch and again every [`RECOUNT_EVERY`]; when the count
//! passes the plan's `max_runs`, the oldest runs beyond it are dropped at once. The retention
//! in days, and plan changes in between, are the housekeeping's ([`super::retention`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use plinth_host::{RunRecord, RunRecorder};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::encoder::{self, Encoded, Message};
use super::store::{self, Prepared};
use crate::db::Db;
use crate::error::Result;
use crate::state::AppState;

/// How runs are queued and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLogSettings {
    /// Whether runs are recorded at all (the routes then list what was recorded before).
    pub enabled: bool,
    /// Runs waiting to be written at most (per process); more are dropped and counted.
    pub queue: usize,
    /// Runs one write stores at most.
    pub max_batch: usize,
    /// How long a batch waits for more runs after its first.
    pub linger: Duration,
}

impl Default for RunLogSettings {
    fn default() -> Self {
        RunLogSettings {
            enabled: true,
            queue: 10_000,
            // A transaction a write: on PostgreSQL its cost (the statements' round trips, the
            // commit) is most of what a run costs the database: 0.5-1.2 µs a run at 2,048 runs
            // a write, 2.1 µs at 512 (README, "What the run log costs").
            max_batch: 2048,
            linger: Duration::from_millis(200),
        }
    }
}

/// Counters of the recorder, exported as metrics.
#[derive(Debug, Clone, Default)]
pub struct RecorderCounters {
    /// Runs stored.
    pub written: Counter,
    /// Runs dropped: the queue was full or their batch could not be stored.
    pub dropped: Counter,
}

/// Queues runs for the encoder. Clones share the queue.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Message>,
    /// The encoder thread, woken from its nap when a flush is queued.
    encoder: Thread,
    counters: RecorderCounters,
}

impl RunRecorder for Recorder {
    fn record(&self, run: RunRecord) {
        if self.queue.try_send(Message::Run(run)).is_err() {
            self.counters.dropped.inc();
        }
    }
}

impl Recorder {
    /// A recorder writing to `db`, and its writer task (abort it after [`Recorder::flush`] to
    /// stop; the encoder thread stops at the next batch it would hand on, or once the recorder
    /// is dropped).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Internal`] if the encoder thread cannot be started.
    pub fn spawn(
        db: Db,
        settings: &RunLogSettings,
        counters: RecorderCounters,
    ) -> Result<(Arc<Recorder>, JoinHandle<()>)> {
        let (queue, received) = mpsc::channel(settings.queue.max(1));
        // One batch stored while the next is encoded: the encoder waits past that.
        let (handed, encoded) = mpsc::channel(1);
        let encoder = encoder::start(received, settings, handed)?;
        let writer = Writer {
            db,
            counters: counters.clone(),
            volumes: HashMap::new(),
        };
        let task = tokio::spawn(writer.run(encoded));
        Ok((
            Arc::new(Recorder {
                queue,
                encoder,
                counters,
            }),
            task,
        ))
    }

    /// Waits until every run queued before this call is written (or dropped).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            self.encoder.unpark();
            let _ = written.await;
        }
    }

    /// Runs queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Starts recording the runs of `state`'s host, unless the settings turn the run log off or
/// there is no host; returns the writer task (abort it after [`Recorder::flush`] to stop).
pub(crate) fn start(state: &AppState) -> Option<JoinHandle<()>> {
    let runtime = state.runtime().ok()?;
    if !state.settings().runs.enabled {
        return None;
    }
    let (recorder, writer) = match Recorder::spawn(
        state.db().clone(),
        &state.settings().runs,
        state.metrics().run_counters(),
    ) {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(%error, "runs are not recorded");
            return None;
        }
    };
    // One recorder per host: a second server on the same state keeps the first's.
    if state.set_run_recorder(Arc::clone(&recorder)) && runtime.host.set_run_recorder(recorder) {
        Some(writer)
    } else {
        writer.abort();
        None
    }
}

struct Writer {
    db: Db,
    counters: RecorderCounters,
    /// What the writer knows of each tenant's run count.
    volumes: HashMap<String, Known>,
}

/// How often the writer counts a tenant's runs in the database again (its plan may have
/// changed, the housekeeping may have dropped some).
pub const RECOUNT_EVERY: Duration = Duration::from_secs(10 * 60);

/// A tenant's run count as the writer keeps it: counted, plus what it wrote since.
#[derive(Debug, Clone, Copy)]
struct Known {
    runs: u64,
    max_runs: u64,
    counted_at: Instant,
}

impl Writer {
    /// Stores the batches the encoder hands on, and answers the flushes that came with them.
    async fn run(mut self, mut encoded: mpsc::Receiver<Encoded>) {
        while let Some(Encoded {
            prepared,
            runs,
            flushes,
        }) = encoded.recv().await
        {
            match prepared {
                Some(Ok(prepared)) => self.write(&prepared, runs).await,
                Some(Err(error)) => {
                    tracing::error!(%error, runs, "runs could not be prepared; they are dropped");
                    self.counters.dropped.inc_by(runs);
                }
                None => {}
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Stores `prepared`, `runs` runs (retrying twice), and enforces the volumes of the
    /// tenants it adds to.
    async fn write(&mut self, prepared: &Prepared, runs: u64) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match store::write(&self.db, prepared).await {
                Ok(()) => break,
                Err(error) if attempt < 3 => {
                    tracing::warn!(%error, runs, attempt, "storing runs failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(error) => {
                    tracing::error!(%error, runs, "storing runs failed; they are dropped");
                    self.counters.dropped.inc_by(runs);
                    return;
                }
            }
        }
        self.counters.written.inc_by(runs);
        let mut written: HashMap<&str, u64> = HashMap::new();
        for batch in &prepared.batches {
            *written.entry(&batch.tenant).or_default() += u64::try_from(batch.runs).unwrap_or(0);
        }
        for (tenant, count) in written {
            // A tenant's first batch in this process is counted at once.
            let due = self.volumes.get_mut(tenant).is_none_or(|known| {
                known.runs = known.runs.saturating_add(count);
                known.runs > known.max_runs || known.counted_at.elapsed() >= RECOUNT_EVERY
            });
            if !due {
                continue;
            }
            match store::enforce_volume(&self.db, tenant).await {
                Ok(volume) => {
                    if volume.dropped > 0 {
                        tracing::debug!(
                            tenant,
                            dropped = volume.dropped,
                            "runs beyond the plan's volume"
                        );
                    }
                    self.volumes.insert(
                        tenant.to_owned(),
                        Known {
                            runs: volume.runs,
                            max_runs: volume.max_runs,
                            counted_at: Instant::now(),
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, tenant, "enforcing the run log's volume");
                    // Counted again with the next batch.
                    self.volumes.remove(tenant);
                }
            }
        }
    }
}
