//! `plinth plugin run`: run one event through a plugin in a local sandbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use plinth_host::egress::CheckedResolver;
use plinth_host::kv::KvStore;
use plinth_host::trust::TrustPolicy;
use plinth_host::{Call, Event, Host, HostConfig, Limits, Metering};

/// Run one event through a plugin package in a local sandbox, exactly as the host would.
///
/// The plugin gets every permission its manifest asks for. Signatures are not checked (this is
/// local development). Output goes to stdout, the plugin's log lines to stderr; a trap,
/// timeout or exhaustion exits non-zero with the typed error.
#[derive(Debug, clap::Args)]
pub struct RunCommand {
    /// The `.plinth` package to run.
    #[arg(value_name = "PKG")]
    package: PathBuf,
    /// The event topic (one the plugin subscribes to).
    #[arg(long, value_name = "TOPIC")]
    event: String,
    /// The event payload, as JSON.
    #[arg(long, value_name = "JSON", default_value = "null")]
    payload: String,
    /// Turn fuel metering on with this much fuel.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Memory limit in MiB.
    #[arg(long, value_name = "N", default_value_t = 64)]
    memory_mb: u64,
    /// Wall-clock limit in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    timeout_ms: u64,
    /// A configuration value for the plugin (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The tenant to run as (its kv namespace).
    #[arg(long, default_value = "local")]
    tenant: String,
    /// Where the kv data and compiled-component cache live.
    #[arg(long, value_name = "DIR", default_value = "./plinth-data")]
    data_dir: PathBuf,
    /// Let the plugin reach loopback and private addresses over HTTP.
    #[arg(long)]
    allow_private_http: bool,
    /// Print the whole outcome (output, error, logs, usage) as JSON.
    #[arg(long)]
    json: bool,
    /// Run the event this many times, each in a fresh instance as the host does, and print
    /// the time per call (the outcome shown is the last call's).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    repeat: u32,
}

impl RunCommand {
    /// Loads the package, runs the event and reports the outcome.
    pub fn execute(self) -> anyhow::Result<()> {
        serde_json::from_str::<serde_json::Value>(&self.payload)
            .with_context(|| format!("--payload is not valid JSON: {}", self.payload))?;
        let config = parse_config(&self.config)?;
        let package = super::read_package(&self.package)?;
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(self.run(package, config))
    }

    async fn run(
        self,
        package: plinth_package::Package,
        config: BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let kv_url = format!("sqlite://{}", self.data_dir.join("run-kv.db").display());
        let kv = KvStore::connect(&kv_url)
            .await
            .context("cannot open the kv store")?;
        let mut host_config =
            HostConfig::new(self.data_dir.join("compiled"), TrustPolicy::development());
        host_config.engine = super::local_engine();
        host_config.kv = Some(kv);
        host_config.egress = CheckedResolver::system(self.allow_private_http);
        let host = Host::new(host_config)?;
        let started = Instant::now();
        let loaded = host.load(&package)?;
        let load_time = started.elapsed();
        let metering = if self.fuel.is_some() {
            Metering::Fuel
        } else {
            Metering::Epoch
        };
        let prepared = host.prepare(&loaded, &package.manifest.permissions, metering)?;
        let mut limits = Limits::default()
            .with_memory_mb(self.memory_mb)
            .with_timeout(Duration::from_millis(self.timeout_ms));
        if let Some(fuel) = self.fuel {
            limits = limits.with_fuel(fuel);
        }
        let config = Arc::new(config);
        let mut times = Vec::with_capacity(self.repeat as usize);
        let mut first_memory = 0;
        let mut invocation = None;
        for i in 0..self.repeat {
            let call = host
                .invoke(
                    &prepared,
                    Call {
                        tenant: self.tenant.clone(),
                        event: Event {
                            id: format!("local-run-{i}"),
                            topic: self.event.clone(),
                            payload: self.payload.clone().into_bytes(),
                            depth: 0,
                        },
                        config: Arc::clone(&config),
                        limits: limits.clone(),
                    },
                )
                .await;
            if i == 0 {
                first_memory = call.usage.memory_bytes;
            }
            times.push(call.usage.wall);
            invocation = Some(call);
        }
        let invocation = invocation.context("--repeat is at least 1")?;
        if self.repeat > 1 {
            eprintln!("{}", timing_summary(load_time, &mut times, first_memory));
        }

        if self.json {
            let (output, error) = match &invocation.result {
                Ok(output) => (output.as_deref().map(output_value), None),
                Err(error) => (
                    None,
                    Some(serde_json::json!({"code": error.code(), "message": error.to_string()})),
                ),
            };
            let report = serde_json::json!({
                "output": output,
                "error": error,
                "logs": invocation.logs,
                "emitted": invocation.emitted.iter().map(|event| serde_json::json!({
                    "topic": event.topic,
                    "payload": output_value(&event.payload),
                })).collect::<Vec<_>>(),
                "usage": {
                    "wall_us": invocation.usage.wall.as_micros(),
                    "fuel": invocation.usage.fuel,
                    "memory_bytes": invocation.usage.memory_bytes,
                    "outbound_requests": invocation.usage.outbound_requests,
                    "kv_bytes_written": invocation.usage.kv_bytes_written,
                },
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for line in &invocation.logs {
                eprintln!("[{}] {}", line.level, line.message);
            }
            for event in &invocation.emitted {
                eprintln!(
                    "emitted {}: {}",
                    event.topic,
                    String::from_utf8_lossy(&event.payload)
                );
            }
            if let Ok(Some(output)) = &invocation.result {
                match serde_json::from_slice::<serde_json::Value>(output) {
                    Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
                    Err(_) => println!("{}", String::from_utf8_lossy(output)),
                }
            }
        }
        if let Err(error) = invocation.result {
            bail!("{error} [{}]", error.code());
        }
        Ok(())
    }
}

/// One line on how long loading and each call took: the first call, then the median, 99th
/// percentile and fastest of all; and the memory the first call used.
fn timing_summary(load: Duration, times: &mut [Duration], first_memory: u64) -> String {
    let first = times.first().copied().unwrap_or_default();
    times.sort_unstable();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(index).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{} calls: first {:.3} ms, median {:.3} ms, p99 {:.3} ms, fastest {:.3} ms per call; \
         memory at first call {:.1} MiB; loaded (compiled or from cache) in {:.2} s",
        times.len(),
        ms(first),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(0.0)),
        first_memory as f64 / f64::from(1u32 << 20),
        load.as_secs_f64()
    )
}

/// The plugin's output as JSON, or as a string if it is not JSON.
fn output_value(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Parses `KEY=VALUE` pairs.
fn parse_config(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("--config {pair:?} is not KEY=VALUE"),
        })
        .collect()
}
