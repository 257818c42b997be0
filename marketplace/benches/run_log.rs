//! What the run log costs: the event path with run logging on against the same server with it
//! off, in one run, and the storage a thousand runs take.
//!
//! `cargo bench --workspace --bench run_log` starts one Plinth server in this process with
//! `hello` installed for one tenant, and gives its host a run recorder that can be switched
//! off ([`Switch`]: while off the host builds no record at all, as with `--run-log off`). The
//! same server is then measured with the recorder on and off in turns: an earlier version of
//! this bench compared two servers, and two identical servers in one process differ by a few
//! percent (measured: 0.92–0.97 with the run log off on both), as much as the 5% it had to
//! resolve.
//!
//! The load generator drives the server [`ROUNDS`] times for [`MEASURE`] with recording on and
//! as long with it off, which goes first alternating (off, on, on, off, …; an "on" window's
//! time counts until its queue is written), at 1 and 16 connections, and prints events/s and
//! p99 of each side and the ratio on/off; each round's own ratio (its two windows are adjacent)
//! as a mean with its 95% interval; and the machine's CPU time per event on each side (the
//! database's and the load generator's included) with this process's share, and who spent it
//! ([`ticks_by_name`]: this process's threads by name, the database's processes). Then the
//! storage the recorded runs took (SQLite: the database file after a checkpoint; PostgreSQL:
//! `pg_total_relation_size` of the three tables; both against the same before the
//! measurement), per 1,000 runs. Last, the writer alone:
//! [`WRITER_RUNS`] runs like `hello`'s (one log line) of an enterprise tenant, recorded through
//! a fresh recorder on a fresh database and written, to give the cost of storing one run in
//! microseconds. `PLINTH_BENCH_DATABASE=postgres` runs all of it on PostgreSQL. To profile one
//! side, `PLINTH_RUN_LOG_ONLY=on` (or `off`) drives only that side for [`MEASURE_ALONE`] at 16
//! connections; `PLINTH_RUN_LOG_ONLY=writer` measures only the writer.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use plinth_host::{RunRecord, RunRecorder};
use plinth_marketplace::Settings;
use plinth_marketplace::runs::{Recorder, RunLogSettings};
use plinth_test_support::TestDatabase;

use support::load::{self, Stats};
use support::{delivered, start_with_settings};

/// Requests and time of the unmeasured warm-up of each server.
const WARM_UP: (usize, Duration) = (2_000, Duration::from_secs(3));

/// Runs the writer-alone measurement records.
const WRITER_RUNS: usize = 100_000;

/// Measured rounds per connection count (each measures both sides).
///
/// 40: on this machine (shared, its stolen ticks in the output) one round's ratio varies by
/// ±10% and more; at 18 rounds the mean's 95% interval was ±0.03 to ±0.06 on a quiet day and
/// up to ±0.13 on a busy one, wider than the 5% it has to resolve.
const ROUNDS: usize = 40;

/// Student's t for a two-sided 95% interval with `ROUNDS - 1` (39) degrees of freedom.
const T_95: f64 = 2.02;

/// The mean of `values` and the half-width of its 95% confidence interval (Student's t with
/// [`T_95`]: `values` are [`ROUNDS`] rounds' ratios).
fn mean_and_interval(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, T_95 * (variance / n.max(1.0)).sqrt())
}

/// How long each side is driven in a round: a fixed time rather than a count of requests, so
/// that the writer works alongside the event path as it would in steady state; short, so that
/// the turns interleave finely and a change in the machine's load falls on both sides.
const MEASURE: Duration = Duration::from_secs(1);

/// The server's run recorder, which the bench switches on and off.
#[derive(Debug)]
struct Switch {
    on: AtomicBool,
    recorder: Arc<Recorder>,
}

impl RunRecorder for Switch {
    fn record(&self, run: RunRecord) {
        self.recorder.record(run);
    }

    fn recording(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// How long one side alone (`PLINTH_RUN_LOG_ONLY`) is driven: long enough to profile.
const MEASURE_ALONE: Duration = Duration::from_secs(12);

fn main() -> Result<()> {
    let generator = load::generator(2)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(generator.handle()))
}

/// Bytes the run log's tables take in `database`.
async fn run_log_bytes(database: &TestDatabase, db: &plinth_marketplace::Db) -> Result<i64> {
    match database {
        TestDatabase::Sqlite(dir) => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(db.pool())
                .await?;
            let file = std::fs::read_dir(dir.path())?
                .filter_map(Result::ok)
                .find(|entry| {
                    entry.path().extension().is_some_and(|e| e == "db")
                        && !entry.file_name().to_string_lossy().starts_with("kv")
                })
                .context("the marketplace's database file")?;
            Ok(i64::try_from(file.metadata()?.len())?)
        }
        TestDatabase::Postgres(_) => Ok(sqlx::query_scalar(
            "SELECT (pg_total_relation_size('run_batches') + pg_total_relation_size('run_daily') \
             + pg_total_relation_size('failure_reports'))::BIGINT",
        )
        .fetch_one(db.pool())
        .await?),
    }
}

/// The machine's CPU time so far, busy and stolen, in clock ticks (`/proc/stat`'s first
/// line: user, nice, system, irq and softirq are busy; idle and iowait are not; steal is time
/// the hypervisor gave another machine). Zero where there is no `/proc/stat`.
fn cpu_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let field = |n: usize| fields.get(n).copied().unwrap_or(0);
    (
        field(0) + field(1) + field(2) + field(5) + field(6),
        field(7),
    )
}

/// The command name and CPU time so far (user and system, in clock ticks) of the process or
/// thread whose `/proc` directory is `dir`; `None` if it cannot be read.
fn stat_of(dir: &std::path::Path) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // `pid (comm) state …`: after the command's closing parenthesis, utime and stime are
    // fields 14 and 15.
    let (head, fields) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map_or("", |(_, comm)| comm);
    let used = fields
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Some((comm.to_owned(), used))
}

/// This process's CPU time so far (user and system), in clock ticks; zero where there is no
/// `/proc/self/stat`.
fn own_ticks() -> u64 {
    stat_of(std::path::Path::new("/proc/self")).map_or(0, |(_, used)| used)
}

/// CPU ticks so far by who spent them: this process's threads grouped by name, and the
/// database's processes (every process named `postgres`) as `postgres`. A thread that ended
/// takes its ticks with it.
fn ticks_by_name() -> HashMap<String, u64> {
    let mut ticks = HashMap::new();
    let entries = |dir: &str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|entry| stat_of(&entry.path()))
    };
    let threads = entries("/proc/self/task");
    let database = entries("/proc").filter(|(comm, _)| comm == "postgres");
    for (comm, used) in threads.chain(database) {
        *ticks.entry(comm).or_default() += used;
    }
    ticks
}

/// The ticks spent between two [`ticks_by_name`] snapshots, by name.
fn ticks_between(
    before: &HashMap<String, u64>,
    after: HashMap<String, u64>,
) -> HashMap<String, u64> {
    after
        .into_iter()
        .map(|(name, ticks)| {
            let spent = ticks.saturating_sub(before.get(&name).copied().unwrap_or(0));
            (name, spent)
        })
        .collect()
}

/// What one side of the measurement took: its requests, and the machine's CPU ticks (busy,
/// stolen) meanwhile, the database's and the load generator's included.
struct Side {
    stats: Stats,
    ticks: (u64, u64),
    /// This process's share of the busy ticks.
    own: u64,
    /// The busy ticks by who spent them ([`ticks_by_name`]).
    by_name: HashMap<String, u64>,
}

impl Side {
    /// `ticks` of CPU time per event of this side, in microseconds (a clock tick is 10 ms).
    fn us_per_event(&self, ticks: u64) -> f64 {
        ticks as f64 * 10_000.0 / self.stats.count().max(1) as f64
    }

    /// CPU time the machine was busy per event, in microseconds.
    fn cpu_us_per_event(&self) -> f64 {
        self.us_per_event(self.ticks.0)
    }

    /// This process's CPU time per event, in microseconds.
    fn own_us_per_event(&self) -> f64 {
        self.us_per_event(self.own)
    }

    /// Adds `other`'s requests and ticks to this side's.
    fn merge(&mut self, other: Side) {
        self.stats.merge(other.stats);
        self.ticks.0 += other.ticks.0;
        self.ticks.1 += other.ticks.1;
        self.own += other.own;
        for (name, ticks) in other.by_name {
            *self.by_name.entry(name).or_default() += ticks;
        }
    }
}

/// Drives `bench` for `time` from `connections` connections with `switch` on or off; the runs
/// still queued at the end are written before it returns, and the time that takes counts as
/// the side's.
async fn measure(
    generator: &tokio::runtime::Handle,
    bench: &support::Bench,
    (switch, on): (&Switch, bool),
    targets: Vec<load::Target>,
    (connections, time): (usize, Duration),
) -> Result<Side> {
    switch.on.store(on, Ordering::Relaxed);
    let (ticks_before, own_before, named_before) = (cpu_ticks(), own_ticks(), ticks_by_name());
    let mut stats = load::run_limited(
        generator,
        &bench.client,
        targets,
        connections,
        delivered,
        (usize::MAX, time),
    )
    .await?;
    if on {
        let started = std::time::Instant::now();
        switch.recorder.flush().await;
        stats.add_time(started.elapsed());
    }
    let ticks_after = cpu_ticks();
    Ok(Side {
        stats,
        ticks: (
            ticks_after.0.saturating_sub(ticks_before.0),
            ticks_after.1.saturating_sub(ticks_before.1),
        ),
        own: own_ticks().saturating_sub(own_before),
        by_name: ticks_between(&named_before, ticks_by_name()),
    })
}

/// Runs stored in the database of `bench`.
async fn runs_stored(bench: &support::Bench) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_batches")
            .fetch_one(bench.state.db().pool())
            .await?,
    )
}

async fn run(generator: &tokio::runtime::Handle) -> Result<()> {
    let only = std::env::var("PLINTH_RUN_LOG_ONLY").ok();
    if only.as_deref() == Some("writer") {
        return writer_alone().await;
    }
    let database = support::database().await?;
    let cache = tempfile::tempdir()?;
    let mut settings = Settings::default();
    // The bench sets the host's recorder itself.
    settings.runs.enabled = false;
    let bench = start_with_settings(&database, cache.path(), settings).await?;
    let (recorder, _writer) = Recorder::spawn(
        bench.state.db().clone(),
        &RunLogSettings::default(),
        bench.state.metrics().run_counters(),
    )?;
    let switch = Arc::new(Switch {
        on: AtomicBool::new(true),
        recorder,
    });
    anyhow::ensure!(
        bench.state.runtime()?.host.set_run_recorder(switch.clone()),
        "the host has a run recorder already"
    );
    bench.publish_examples().await?;
    let tenant = bench.tenant("solo", &["examples.hello"]).await?;
    let targets = bench.event_targets(&[(tenant, "greet")]);
    load::run_limited(
        generator,
        &bench.client,
        targets.clone(),
        16,
        delivered,
        WARM_UP,
    )
    .await?;
    switch.recorder.flush().await;
    if let Some(side) = &only {
        let on = side == "on";
        let stats = measure(
            generator,
            &bench,
            (&switch, on),
            targets,
            (16, MEASURE_ALONE),
        )
        .await?;
        println!("| scenario | connections | events/s | p50 ms | p95 ms | p99 ms |");
        println!("|---|---|---|---|---|---|");
        stats.stats.print(&format!("run log {side}"), 16);
        println!(
            "CPU per event: {:.1} µs, of which this process {:.1} µs",
            stats.cpu_us_per_event(),
            stats.own_us_per_event()
        );
        return Ok(());
    }
    let runs_before = runs_stored(&bench).await?;
    let bytes_before = run_log_bytes(&database, bench.state.db()).await?;
    println!(
        "| connections | off events/s | off p99 ms | on events/s | on p99 ms | events/s on/off | rounds' on/off, mean ± 95% | p99 on/off | CPU µs/event off | on | of which this process, off | on | stolen ticks |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut by_name = Vec::new();
    for connections in [1, 16] {
        let mut sides: [Option<Side>; 2] = [None, None];
        // Each round's on/off ratio: its two windows are adjacent, so a change in the
        // machine's load between rounds falls on both.
        let mut ratios = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let mut rates = [0.0; 2];
            // Off then on, then on then off: whichever goes first in a round has no edge.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for on in order {
                let stats = measure(
                    generator,
                    &bench,
                    (&switch, on),
                    targets.clone(),
                    (connections, MEASURE),
                )
                .await?;
                rates[usize::from(on)] = stats.stats.rate();
                match &mut sides[usize::from(on)] {
                    Some(total) => total.merge(stats),
                    slot @ None => *slot = Some(stats),
                }
            }
            ratios.push(rates[1] / rates[0].max(f64::MIN_POSITIVE));
        }
        let (paired, interval) = mean_and_interval(&ratios);
        let [Some(off), Some(on)] = sides else {
            continue;
        };
        let (off_cpu, on_cpu) = (off.cpu_us_per_event(), on.cpu_us_per_event());
        let (off_own, on_own) = (off.own_us_per_event(), on.own_us_per_event());
        let mut names: Vec<&String> = off.by_name.keys().chain(on.by_name.keys()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let per_event =
                |side: &Side| side.us_per_event(side.by_name.get(name).copied().unwrap_or(0));
            let (off_us, on_us) = (per_event(&off), per_event(&on));
            if off_us + on_us >= 0.5 {
                by_name.push(format!(
                    "| {connections} | {name} | {off_us:.1} | {on_us:.1} | {:+.1} |",
                    on_us - off_us
                ));
            }
        }
        let (off, on, stolen) = (off.stats, on.stats, off.ticks.1 + on.ticks.1);
        println!(
            "| {connections} | {:.0} | {:.2} | {:.0} | {:.2} | {:.3} | {paired:.3} ± {interval:.3} | {:.2} | {off_cpu:.1} | {on_cpu:.1} | {off_own:.1} | {on_own:.1} | {stolen} |",
            off.rate(),
            off.quantile_ms(0.99),
            on.rate(),
            on.quantile_ms(0.99),
            on.rate() / off.rate(),
            on.quantile_ms(0.99) / off.quantile_ms(0.99)
        );
    }
    println!();
    println!("| connections | CPU spent by | µs/event off | on | on − off |");
    println!("|---|---|---|---|---|");
    for line in by_name {
        println!("{line}");
    }
    // Storage: what the measured "on" windows recorded.
    let runs = runs_stored(&bench).await? - runs_before;
    let bytes = run_log_bytes(&database, bench.state.db()).await? - bytes_before;
    let dropped = bench.state.metrics().run_counters().dropped.get();
    println!();
    println!("| runs stored | runs dropped | run-log bytes | bytes per 1,000 runs |");
    println!("|---|---|---|---|");
    println!(
        "| {runs} | {dropped} | {bytes} | {:.0} |",
        bytes as f64 * 1000.0 / runs.max(1) as f64
    );
    writer_alone().await
}

/// Records [`WRITER_RUNS`] runs through a recorder of its own and prints how long storing
/// them took.
async fn writer_alone() -> Result<()> {
    use std::time::{Instant, SystemTime};

    use plinth_host::capabilities::log::LogLine;
    use plinth_host::{RunEntry, Usage};
    use plinth_marketplace::runs::RecorderCounters;

    let database = support::database().await?;
    let db = plinth_marketplace::Db::connect(&database.url()).await?;
    // An enterprise tenant: every run is kept, as in the measurement above.
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, plan, created_at) \
         VALUES ('t-0000', 'writer', 'Writer', 'enterprise', 0)",
    )
    .execute(db.pool())
    .await?;
    let counters = RecorderCounters::default();
    let (recorder, writer) = Recorder::spawn(db, &RunLogSettings::default(), counters.clone())?;
    let run = RunRecord {
        tenant: "t-0000".into(),
        plugin: "examples.hello".into(),
        version: "0.1.0".into(),
        entry: RunEntry::Event {
            id: "01a2".into(),
            topic: "greet".into(),
            depth: 0,
        },
        started_at: SystemTime::now(),
        usage: Usage {
            wall: Duration::from_micros(180),
            memory_bytes: 1 << 20,
            ..Usage::default()
        },
        outcome: Ok(13),
        logs: vec![LogLine {
            level: "info",
            message: "greeting".into(),
            fields: vec![("name".into(), "Ada".into())],
            truncated: false,
        }],
        logs_dropped: 0,
        captured: None,
        secrets: Arc::from(Vec::<String>::new()),
    };
    let started = Instant::now();
    for _ in 0..WRITER_RUNS / 5_000 {
        for _ in 0..5_000 {
            recorder.record(run.clone());
        }
        recorder.flush().await;
    }
    let took = started.elapsed();
    writer.abort();
    println!();
    println!("| writer alone | runs | dropped | seconds | runs/s | µs per run |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.2} | {:.0} | {:.1} |",
        if matches!(database, TestDatabase::Sqlite(_)) {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        counters.written.get(),
        counters.dropped.get(),
        took.as_secs_f64(),
        counters.written.get() as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / counters.written.get().max(1) as f64
    );
    Ok(())
}
