//! The run log's encoder: a thread of its own, at a low scheduling priority, that takes the
//! runs the recorder queued, gathers them into batches, turns each into what is stored
//! ([`store::prepare`]: redaction, the runs serialised from their records and compressed, the
//! daily counts), frees the records, and hands the result to the writer task, which stores it.
//!
//! That work is most of what recording costs. Done on the API's runtime, a batch held one of
//! its worker threads for a millisecond at a time, and it competed with the event path as an
//! equal when the cores were busy. On a thread of its own it runs in the gaps the event path
//! leaves, and when the cores are saturated the scheduler gives the event path the larger
//! share ([`NICE`]): the runs then wait in the recorder's bounded queue, and past it they are
//! dropped and counted, rather than the events slowed. The batches are gathered here too, not
//! on the runtime: a run then crosses from the event path's thread to this one once, and the
//! runtime touches it no more (it used to move every run from the queue into a batch itself).
//!
//! A batch is handed on when it is full, [`RunLogSettings::linger`] after its first run, or at
//! once when a flush comes. While a batch lingers the thread naps in [`TICK`]s and takes what
//! arrived meanwhile all at once: it is woken once a tick, not once a run (a flush wakes it).

use std::thread::Thread;
use std::time::{Duration, Instant};

use plinth_host::RunRecord;
use tokio::sync::{mpsc, oneshot};

use super::batch::Scratch;
use super::recorder::RunLogSettings;
use super::store::{self, Prepared};
use crate::error::{Error, Result};

/// The encoder thread's nice value (Linux: higher is lower priority, 19 the lowest). At 10 a
/// thread gets about a tenth of the share of a thread at the default 0 when both want a core,
/// and all of any core nobody else wants.
pub const NICE: i32 = 10;

/// How long the encoder naps while a batch lingers.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// What the recorder queues for the encoder.
#[expect(
    clippy::large_enum_variant,
    reason = "a run is queued as it is: boxing it would allocate on the event path for each \
              run, and free it on this thread; a flush is rare"
)]
pub(super) enum Message {
    /// A run that ended.
    Run(RunRecord),
    /// Answered once every run queued before it is written (or dropped).
    Flush(oneshot::Sender<()>),
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Run(run) => f.debug_tuple("Run").field(&run.tenant).finish(),
            Message::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// A batch the encoder hands the writer task.
pub(super) struct Encoded {
    /// What the batch adds to the tables (`None` for a flush that found no runs).
    pub(super) prepared: Option<Result<Prepared>>,
    /// The runs in it.
    pub(super) runs: u64,
    /// The flushes to answer once it is stored.
    pub(super) flushes: Vec<oneshot::Sender<()>>,
}

/// Starts the encoder thread on the recorder's queue, handing batches to `encoded`; returns
/// the thread, to wake it (`unpark`) when a flush is queued. The thread ends once the queue's
/// senders are gone or the writer task has stopped taking batches.
///
/// # Errors
///
/// [`Error::Internal`] if the thread cannot be started.
pub(super) fn start(
    queue: mpsc::Receiver<Message>,
    settings: &RunLogSettings,
    encoded: mpsc::Sender<Encoded>,
) -> Result<Thread> {
    let max_batch = settings.max_batch.max(1);
    let linger = settings.linger;
    let thread = std::thread::Builder::new()
        .name("plinth-run-log".to_owned())
        .spawn(move || {
            lower_priority();
            encode(queue, max_batch, linger, &encoded);
        })
        .map_err(|e| Error::Internal(format!("cannot start the run log's encoder: {e}")))?;
    Ok(thread.thread().clone())
}

/// The encoder thread's loop (see the module's documentation).
fn encode(
    mut queue: mpsc::Receiver<Message>,
    max_batch: usize,
    linger: Duration,
    encoded: &mpsc::Sender<Encoded>,
) {
    // Kept from batch to batch, as are the encoding's buffers.
    let mut batch: Vec<RunRecord> = Vec::with_capacity(max_batch);
    let mut scratch = Scratch::default();
    let mut flushes = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        let deadline = Instant::now() + linger;
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Run(run) => batch.push(run),
                    Message::Flush(done) => flushes.push(done),
                }
                if batch.len() < max_batch && flushes.is_empty() {
                    next = queue.try_recv().ok();
                }
            }
            let now = Instant::now();
            if batch.len() >= max_batch || !flushes.is_empty() || now >= deadline {
                break;
            }
            std::thread::park_timeout(TICK.min(deadline - now));
            next = queue.try_recv().ok();
        }
        let prepared = (!batch.is_empty()).then(|| store::prepare(&batch, &mut scratch));
        let runs = batch.len() as u64;
        // The records are freed here, not on the writer's runtime.
        batch.clear();
        let handed = Encoded {
            prepared,
            runs,
            flushes: std::mem::take(&mut flushes),
        };
        if encoded.blocking_send(handed).is_err() {
            // The writer task has stopped: nothing more will be stored.
            break;
        }
    }
}

/// Gives the calling thread the nice value [`NICE`] (only it: on Linux a thread's nice value
/// is its own). Elsewhere, or if the system refuses, the thread keeps its priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), NICE) {
            tracing::warn!(%error, "the run log's encoder keeps the default priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use plinth_host::{InvokeError, RunEntry, Usage};

    use super::*;

    fn run(tenant: &str, outcome: std::result::Result<u64, InvokeError>) -> RunRecord {
        RunRecord {
            tenant: tenant.into(),
            plugin: "examples.hello".into(),
            version: "0.1.0".into(),
            entry: RunEntry::Hook { name: "on-install" },
            started_at: SystemTime::now(),
            usage: Usage::default(),
            outcome,
            logs: Vec::new(),
            logs_dropped: 0,
            captured: None,
            secrets: Arc::from(Vec::<String>::new()),
        }
    }

    /// An encoder thread batching at most `max_batch` runs for `linger`: its queue, and the
    /// batches it hands on.
    fn encoder(
        max_batch: usize,
        linger: Duration,
    ) -> Result<(mpsc::Sender<Message>, mpsc::Receiver<Encoded>)> {
        let (queue, received) = mpsc::channel(64);
        let (handed, encoded) = mpsc::channel(1);
        let settings = RunLogSettings {
            max_batch,
            linger,
            ..RunLogSettings::default()
        };
        start(received, &settings, handed)?;
        Ok((queue, encoded))
    }

    /// The next batch `encoded` brings (an error after a minute: the encoder is stuck).
    async fn next(encoded: &mut mpsc::Receiver<Encoded>) -> Result<Encoded> {
        tokio::time::timeout(Duration::from_secs(60), encoded.recv())
            .await
            .ok()
            .flatten()
            .ok_or_else(|| Error::Internal("the encoder handed on no batch".to_owned()))
    }

    async fn queue(queue: &mpsc::Sender<Message>, message: Message) -> Result<()> {
        queue
            .send(message)
            .await
            .map_err(|_| Error::Internal("the encoder's queue is closed".to_owned()))
    }

    #[tokio::test]
    async fn a_flush_hands_on_what_was_queued_before_it() -> Result<()> {
        // A linger longer than the test: only the flush can hand the batch on.
        let (sender, mut encoded) = encoder(100, Duration::from_secs(3600))?;
        let failed = InvokeError::Internal("boom".into());
        for run in [run("t1", Ok(3)), run("t2", Err(failed)), run("t1", Ok(0))] {
            queue(&sender, Message::Run(run)).await?;
        }
        let (done, answered) = oneshot::channel();
        queue(&sender, Message::Flush(done)).await?;
        queue(&sender, Message::Run(run("t3", Ok(1)))).await?;
        let batch = next(&mut encoded).await?;
        assert_eq!((batch.runs, batch.flushes.len()), (3, 1));
        let prepared = batch.prepared.transpose()?;
        let prepared = prepared.ok_or_else(|| Error::Internal("no runs prepared".to_owned()))?;
        let mut batches: Vec<(&str, i64, i64)> = prepared
            .batches
            .iter()
            .map(|batch| (batch.tenant.as_str(), batch.runs, batch.failures))
            .collect();
        batches.sort_unstable();
        assert_eq!(batches, [("t1", 2, 0), ("t2", 1, 1)]);
        assert_eq!(prepared.daily.values().sum::<i64>(), 3);
        // The writer answers the flush once the batch is stored.
        for done in batch.flushes {
            let _ = done.send(());
        }
        answered
            .await
            .map_err(|_| Error::Internal("the flush was not answered".to_owned()))?;
        // A flush with nothing before it is handed on at once, without runs.
        let (done, _answered) = oneshot::channel();
        queue(&sender, Message::Flush(done)).await?;
        let batch = next(&mut encoded).await?;
        assert_eq!((batch.runs, batch.flushes.len()), (1, 1));
        let (done, _answered) = oneshot::channel();
        queue(&sender, Message::Flush(done)).await?;
        let empty = next(&mut encoded).await?;
        assert!(empty.prepared.is_none());
        assert_eq!((empty.runs, empty.flushes.len()), (0, 1));
        Ok(())
    }

    #[tokio::test]
    async fn a_full_batch_goes_without_lingering_and_a_lone_run_after_the_linger() -> Result<()> {
        let (sender, mut encoded) = encoder(2, Duration::from_millis(50))?;
        for tenant in ["t1", "t2", "t3"] {
            queue(&sender, Message::Run(run(tenant, Ok(1)))).await?;
        }
        assert_eq!(next(&mut encoded).await?.runs, 2);
        // The third run is alone: the linger hands it on, no flush needed.
        let lone = next(&mut encoded).await?;
        assert_eq!((lone.runs, lone.flushes.len()), (1, 0));
        // Once the queue's senders are gone, the thread stops and hands on nothing more.
        drop(sender);
        let after = tokio::time::timeout(Duration::from_secs(60), encoded.recv()).await;
        assert!(matches!(after, Ok(None)), "the encoder did not stop");
        Ok(())
    }

    /// The nice values of this process's threads named `name`.
    #[cfg(target_os = "linux")]
    fn nice_values(name: &str) -> Vec<i32> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .filter_map(std::result::Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == name)
            })
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // After the command's closing parenthesis: state is field 3, nice field 19.
                let (_, fields) = stat.rsplit_once(')')?;
                fields.split_whitespace().nth(16)?.parse().ok()
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_encoder_thread_runs_at_a_low_priority() -> Result<()> {
        let (sender, mut encoded) = encoder(1, Duration::from_secs(3600))?;
        // Once a batch is handed on, the thread has lowered its priority.
        queue(&sender, Message::Run(run("t1", Ok(1)))).await?;
        next(&mut encoded).await?;
        let nice = nice_values("plinth-run-log");
        assert!(!nice.is_empty(), "no encoder thread found");
        assert!(nice.iter().all(|&value| value == NICE), "{nice:?}");
        Ok(())
    }
}
