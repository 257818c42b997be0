//! The run log's encoder: a thread of its own, at a low scheduling priority, that turns the
//! writer's batches of records into what is stored ([`store::prepare`]: redaction, the runs
//! serialised from their records and compressed, the daily counts) and frees the records.
//!
//! That work is most of what recording costs. Done on the API's runtime, a batch held one of
//! its worker threads for a millisecond at a time, and it competed with the event path as an
//! equal when the cores were busy. On a thread of its own it runs in the gaps the event path
//! leaves, and when the cores are saturated the scheduler gives the event path the larger
//! share ([`NICE`]): the runs then wait in the recorder's bounded queue, and past it they are
//! dropped and counted, rather than the events slowed.

use std::sync::mpsc;

use plinth_host::RunRecord;
use tokio::sync::oneshot;

use super::store::{self, Prepared};
use crate::error::{Error, Result};

/// The encoder thread's nice value (Linux: higher is lower priority, 19 the lowest). At 10 a
/// thread gets about a tenth of the share of a thread at the default 0 when both want a core,
/// and all of any core nobody else wants.
pub const NICE: i32 = 10;

/// A batch to encode and where its result goes. The writer awaits each before it sends the
/// next, so at most one is queued.
type Job = (Vec<RunRecord>, oneshot::Sender<Result<Prepared>>);

/// The handle of the encoder thread; the thread ends when the handle is dropped.
#[derive(Debug)]
pub(super) struct Encoder {
    jobs: mpsc::Sender<Job>,
}

impl Encoder {
    /// Starts the encoder thread.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the thread cannot be started.
    pub(super) fn start() -> Result<Encoder> {
        let (jobs, received) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("plinth-run-log".to_owned())
            .spawn(move || {
                lower_priority();
                while let Ok((batch, done)) = received.recv() {
                    let _ = done.send(store::prepare(&batch));
                    // The records are freed here too, not on the writer's runtime.
                    drop(batch);
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the run log's encoder: {e}")))?;
        Ok(Encoder { jobs })
    }

    /// What `batch` adds to the run log's tables, prepared on the encoder thread.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the runs cannot be serialised or the thread has stopped.
    pub(super) async fn prepare(&self, batch: Vec<RunRecord>) -> Result<Prepared> {
        let stopped = || Error::Internal("the run log's encoder has stopped".to_owned());
        let (done, prepared) = oneshot::channel();
        self.jobs.send((batch, done)).map_err(|_| stopped())?;
        prepared.await.map_err(|_| stopped())?
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

    #[tokio::test]
    async fn batches_are_prepared_on_the_encoder_thread() -> Result<()> {
        let encoder = Encoder::start()?;
        let failed = InvokeError::Internal("boom".into());
        let prepared = encoder
            .prepare(vec![
                run("t1", Ok(3)),
                run("t2", Err(failed)),
                run("t1", Ok(0)),
            ])
            .await?;
        let mut batches: Vec<(&str, i64, i64)> = prepared
            .batches
            .iter()
            .map(|batch| (batch.tenant.as_str(), batch.runs, batch.failures))
            .collect();
        batches.sort_unstable();
        assert_eq!(batches, [("t1", 2, 0), ("t2", 1, 1)]);
        assert_eq!(prepared.daily.values().sum::<i64>(), 3);
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
        let encoder = Encoder::start()?;
        // Once a batch is prepared, the thread has lowered its priority.
        encoder.prepare(vec![run("t1", Ok(1))]).await?;
        let nice = nice_values("plinth-run-log");
        assert!(!nice.is_empty(), "no encoder thread found");
        assert!(nice.iter().all(|&value| value == NICE), "{nice:?}");
        Ok(())
    }
}
