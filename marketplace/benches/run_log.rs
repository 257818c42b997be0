//! What the run log costs: the event path with run logging on against the same server with it
//! off, in one run, and the storage a thousand runs take.
//!
//! `cargo bench --workspace --bench run_log` starts two Plinth servers in this process, each
//! with its own database and host, identical but for `Settings::runs.enabled`, with `hello`
//! installed for one tenant. The same load generator drives them alternately (off, on, on,
//! off, …; [`ROUNDS`] rounds of [`MEASURE`] each, the "on" side's time counting until its
//! queue is written) at 1 and 16 connections and prints events/s and p99 of each and the ratio
//! on/off. Then it counts the runs the "on" server stored and the bytes its run-log tables
//! take (SQLite: the database file after a checkpoint, against the same file of the "off"
//! server; PostgreSQL: `pg_total_relation_size` of the three tables), per 1,000 runs. Last,
//! the writer alone: [`WRITER_RUNS`] runs like `hello`'s (one log line) of an enterprise
//! tenant, recorded through a fresh recorder on a fresh database and written, to give the
//! cost of storing one run in microseconds of one task. `PLINTH_BENCH_DATABASE=postgres` runs
//! all of it on PostgreSQL. To profile one side, `PLINTH_RUN_LOG_ONLY=on` (or `off`) starts
//! only that server and drives it for [`MEASURE_ALONE`] at 16 connections;
//! `PLINTH_RUN_LOG_ONLY=writer` measures only the writer.

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use plinth_marketplace::Settings;
use plinth_test_support::TestDatabase;

use support::load::{self, Stats};
use support::{delivered, start_with_settings};

/// Requests and time of the unmeasured warm-up of each server.
const WARM_UP: (usize, Duration) = (2_000, Duration::from_secs(3));

/// Runs the writer-alone measurement records.
const WRITER_RUNS: usize = 100_000;

/// Measured rounds per connection count (each measures both sides, in turns first).
const ROUNDS: usize = 6;

/// How long each side is driven in a round: a fixed time rather than a count of requests, so
/// that the writer works alongside the event path as it would in steady state.
const MEASURE: Duration = Duration::from_secs(3);

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

/// Drives `bench` for `time` from `connections` connections; the runs still queued at the end
/// are written before it returns, and the time that takes counts as the side's.
async fn measure(
    generator: &tokio::runtime::Handle,
    bench: &support::Bench,
    targets: Vec<load::Target>,
    connections: usize,
    time: Duration,
) -> Result<Stats> {
    let mut stats = load::run_limited(
        generator,
        &bench.client,
        targets,
        connections,
        delivered,
        (usize::MAX, time),
    )
    .await?;
    if let Some(recorder) = bench.state.run_recorder() {
        let started = std::time::Instant::now();
        recorder.flush().await;
        stats.add_time(started.elapsed());
    }
    Ok(stats)
}

async fn run(generator: &tokio::runtime::Handle) -> Result<()> {
    let only = std::env::var("PLINTH_RUN_LOG_ONLY").ok();
    if only.as_deref() == Some("writer") {
        return writer_alone().await;
    }
    let mut sides = Vec::new();
    for enabled in [false, true] {
        if only
            .as_deref()
            .is_some_and(|side| side != if enabled { "on" } else { "off" })
        {
            continue;
        }
        let database = support::database().await?;
        let cache = tempfile::tempdir()?;
        let mut settings = Settings::default();
        settings.runs.enabled = enabled;
        let bench = start_with_settings(&database, cache.path(), settings).await?;
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
        sides.push((database, cache, bench, targets));
    }
    if let (Some(side), Some((_, _, bench, targets))) = (&only, sides.first()) {
        let stats = measure(generator, bench, targets.clone(), 16, MEASURE_ALONE).await?;
        println!("| scenario | connections | events/s | p50 ms | p95 ms | p99 ms |");
        println!("|---|---|---|---|---|---|");
        stats.print(&format!("run log {side}"), 16);
        return Ok(());
    }
    println!(
        "| connections | off events/s | off p99 ms | on events/s | on p99 ms | events/s on/off | p99 on/off |"
    );
    println!("|---|---|---|---|---|---|---|");
    for connections in [1, 16] {
        let mut off: Option<Stats> = None;
        let mut on: Option<Stats> = None;
        for round in 0..ROUNDS {
            // Off then on, then on then off: whichever goes first in a round has no edge.
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                let Some((_, _, bench, targets)) = sides.get(index) else {
                    continue;
                };
                let stats =
                    measure(generator, bench, targets.clone(), connections, MEASURE).await?;
                let slot = if index == 0 { &mut off } else { &mut on };
                match slot {
                    Some(total) => total.merge(stats),
                    None => *slot = Some(stats),
                }
            }
        }
        let (Some(off), Some(on)) = (off, on) else {
            continue;
        };
        println!(
            "| {connections} | {:.0} | {:.2} | {:.0} | {:.2} | {:.3} | {:.2} |",
            off.rate(),
            off.quantile_ms(0.99),
            on.rate(),
            on.quantile_ms(0.99),
            on.rate() / off.rate(),
            on.quantile_ms(0.99) / off.quantile_ms(0.99)
        );
    }
    // Storage: everything the "on" server recorded is written once its queue is flushed.
    let (off_database, _, off_bench, _) = &sides[0];
    let (on_database, _, on_bench, _) = &sides[1];
    if let Some(recorder) = on_bench.state.run_recorder() {
        recorder.flush().await;
    }
    let runs: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_batches")
            .fetch_one(on_bench.state.db().pool())
            .await?;
    let on_bytes = run_log_bytes(on_database, on_bench.state.db()).await?;
    let baseline = match on_database {
        TestDatabase::Sqlite(_) => run_log_bytes(off_database, off_bench.state.db()).await?,
        TestDatabase::Postgres(_) => 0,
    };
    let dropped = on_bench.state.metrics().run_counters().dropped.get();
    println!();
    println!("| runs stored | runs dropped | run-log bytes | bytes per 1,000 runs |");
    println!("|---|---|---|---|");
    println!(
        "| {runs} | {dropped} | {} | {:.0} |",
        on_bytes - baseline,
        (on_bytes - baseline) as f64 * 1000.0 / runs.max(1) as f64
    );
    writer_alone().await
}

/// Records [`WRITER_RUNS`] runs through a recorder of its own and prints how long storing
/// them took.
async fn writer_alone() -> Result<()> {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use plinth_host::capabilities::log::LogLine;
    use plinth_host::{RunEntry, RunRecord, RunRecorder as _, Usage};
    use plinth_marketplace::runs::{Recorder, RecorderCounters, RunLogSettings};

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
    let (recorder, writer) = Recorder::spawn(db, &RunLogSettings::default(), counters.clone());
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
