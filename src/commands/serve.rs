//! `plinth serve`: the marketplace and its web console on one port, SQLite under the data dir unless a database URL
//! is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use std::sync::Arc;

use plinth_host::egress::CheckedResolver;
use plinth_host::kv::KvStore;
use plinth_host::rates::RateLeases;
use plinth_host::trust::TrustPolicy;
use plinth_host::{Host, HostConfig};
use plinth_marketplace::audit::{self, key::AuditKey};
use plinth_marketplace::billing::BillingSettings;
use plinth_marketplace::billing::mail::MailSettings;
use plinth_marketplace::billing::processor::Processor;
use plinth_marketplace::billing::processor::stripe::StripeProcessor;
use plinth_marketplace::db::Backend;
use plinth_marketplace::rate_leases::DbLeases;
use plinth_marketplace::secrets::SecretsKey;
use plinth_marketplace::server::Role;
use plinth_marketplace::settings::PublisherLimits;
use plinth_marketplace::{AppState, Db, Runtime, Settings, installs, server, signing_key};

/// Run the marketplace: HTTP API, review, catalog (and, with installs, the host).
///
/// Needs nothing else: with no `--database-url` it keeps everything in SQLite under
/// `--data-dir`, created on first start. Stops on SIGINT or SIGTERM after finishing the
/// requests in flight.
#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, env = "PLINTH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the SQLite database, the marketplace key and caches.
    #[arg(
        long,
        env = "PLINTH_DATA_DIR",
        default_value = "./plinth-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://…`) to use instead of SQLite.
    #[arg(long, env = "PLINTH_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The marketplace's signing key (created if missing); default `DIR/marketplace.key`.
    #[arg(long, value_name = "FILE")]
    marketplace_key: Option<PathBuf>,
    /// How long to wait for requests in flight on shutdown, in seconds.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// The payment processor's webhook signing secret; without it `POST /v1/billing/webhook`
    /// answers 503 `billing_not_configured`.
    #[arg(
        long,
        env = "PLINTH_BILLING_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    billing_webhook_secret: Option<String>,
    /// The payment processor's API (Stripe's shapes); tests and local development point it at
    /// `plinth-processor-double`.
    #[arg(
        long,
        env = "PLINTH_BILLING_PROCESSOR_URL",
        default_value = "https://api.stripe.com",
        value_name = "URL"
    )]
    billing_processor_url: String,
    /// The processor's secret API key; without it tenants are not billed (plans that cost
    /// money answer 409 `billing_not_configured`).
    #[arg(
        long,
        env = "PLINTH_BILLING_PROCESSOR_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    billing_processor_key: Option<String>,
    /// The address people reach this server at, for links in e-mail and the processor's return
    /// pages; default `http://` + the listening address.
    #[arg(long, env = "PLINTH_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Where billing e-mail is sent: `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host`, or `smtp://127.0.0.1:2525` (plain); without it e-mail waits in the outbox.
    #[arg(
        long,
        env = "PLINTH_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    smtp_url: Option<String>,
    /// The From address of billing e-mail.
    #[arg(
        long,
        env = "PLINTH_MAIL_FROM",
        default_value = "Plinth <billing@localhost>",
        value_name = "ADDRESS"
    )]
    mail_from: String,
    /// Hours after the 1st, 2nd, … declined payment of an invoice before it is tried again.
    #[arg(
        long,
        env = "PLINTH_DUNNING_RETRY_HOURS",
        default_value = "72,120,168",
        value_name = "HOURS,…",
        value_delimiter = ','
    )]
    dunning_retry_hours: Vec<i64>,
    /// Days a tenant stays past due before it is suspended.
    #[arg(
        long,
        env = "PLINTH_SUSPEND_AFTER_DAYS",
        default_value_t = 14,
        value_name = "DAYS"
    )]
    suspend_after_days: i64,
    /// How often billing does what time brings (trials, month ends, retries, alerts, e-mail).
    #[arg(
        long,
        env = "PLINTH_BILLING_TICK_SECS",
        default_value_t = 300,
        value_name = "SECS"
    )]
    billing_tick_secs: u64,
    /// Days a publisher's part of a charge is held before it can be paid out.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    payout_hold_days: i64,
    /// The least available balance a payout run pays, in minor units (2500 = 25.00).
    #[arg(long, default_value_t = 2500, value_name = "MINOR_UNITS")]
    payout_threshold: i64,
    /// Where payout files are written; default `DIR/payouts`.
    #[arg(long, value_name = "DIR")]
    payout_dir: Option<PathBuf>,
    /// What this process serves: `all`; or, for several processes on one PostgreSQL
    /// database, `marketplace` (the API and background work) or `host` (events and plugin
    /// HTTP, following installs through the database's change notifications).
    #[arg(long, env = "PLINTH_ROLE", default_value = "all", value_name = "ROLE")]
    role: Role,
    /// Memory all running plugin calls together may reserve, in MiB (each call reserves its
    /// memory limit; calls beyond it wait briefly, then are refused with 503 `capacity`).
    #[arg(
        long,
        env = "PLINTH_PLUGIN_MEMORY_MB",
        default_value_t = 4096,
        value_name = "MIB"
    )]
    plugin_memory_mb: u64,
    /// Plugin calls that may run at once on this host (each tenant also has its plan's share).
    #[arg(
        long,
        env = "PLINTH_PLUGIN_CALLS",
        default_value_t = 256,
        value_name = "N"
    )]
    plugin_calls: u32,
    /// Threads that run plugin code, apart from those serving the API; default four per core.
    #[arg(long, env = "PLINTH_PLUGIN_THREADS", value_name = "N")]
    plugin_threads: Option<usize>,
    /// Plugin calls that may run guest code at the same moment (the others wait for one to
    /// yield or wait on a host call; a freed slot goes to the waiting tenant holding fewest);
    /// default one per plugin thread. Fewer keeps cores free for the API.
    #[arg(long, env = "PLINTH_PLUGIN_CPU_SLOTS", value_name = "N")]
    plugin_cpu_slots: Option<usize>,
    /// The most tenants one account may create (operators are not limited; a deleted tenant
    /// counts until it is purged).
    #[arg(
        long,
        env = "PLINTH_MAX_TENANTS_PER_ACCOUNT",
        default_value_t = 3,
        value_name = "N"
    )]
    max_tenants_per_account: u32,
    /// The most submissions one publisher may have in review at once.
    #[arg(
        long,
        env = "PLINTH_MAX_SUBMISSIONS_IN_REVIEW",
        default_value_t = 10,
        value_name = "N"
    )]
    max_submissions_in_review: u32,
    /// The most package bytes one publisher may keep stored, in MiB.
    #[arg(
        long,
        env = "PLINTH_MAX_PUBLISHER_STORAGE_MB",
        default_value_t = 1024,
        value_name = "MIB"
    )]
    max_publisher_storage_mb: u64,
    /// Whether plugin runs are recorded in the tenants' run logs (`on` or `off`).
    #[arg(long, env = "PLINTH_RUN_LOG", value_enum, default_value_t = Switch::On)]
    run_log: Switch,
    /// Whether `/metrics` also counts plugin calls per tenant (one series per tenant and
    /// outcome; for deployments with few tenants).
    #[arg(long, env = "PLINTH_METRICS_PER_TENANT", value_enum, default_value_t = Switch::Off)]
    metrics_per_tenant: Switch,
    /// How long a host holds a claimed asynchronous event before another host may deliver it
    /// (renewed while the plugins run), in seconds: how soon the events of a host that died
    /// are delivered again.
    #[arg(long, env = "PLINTH_EVENT_LEASE_SECS", default_value_t = 60, value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    event_lease_secs: u64,
    /// Asynchronous events this process delivers at once (of one tenant, a quarter of them).
    #[arg(long, env = "PLINTH_EVENT_WORKERS", default_value_t = 16, value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1024))]
    event_workers: u64,
    /// How log lines are written to stderr: `text` for people, `json` (one object a line, with
    /// the request id, tenant, plugin and version of the spans it is in) for log collectors.
    #[arg(long, env = "PLINTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

impl ServeCommand {
    /// How the server's log lines are to be written.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// Opens the database (migrating it), loads the key and serves until a signal.
    pub fn execute(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(self.run())
    }

    async fn run(self) -> anyhow::Result<()> {
        let billing = self.billing_settings()?;
        let audit_key = AuditKey::load_or_create(&self.data_dir)?;
        let db = open_database(&self.data_dir, self.database_url.as_deref())
            .await?
            .with_audit_key(audit_key);
        audit::seal_unsealed_log(&db)
            .await
            .context("cannot seal the audit log")?;
        let key_path = self
            .marketplace_key
            .unwrap_or_else(|| self.data_dir.join(signing_key::FILE_NAME));
        let key = signing_key::load_or_create_file(&key_path)?;
        let capacity = HostCapacity {
            memory_mb: self.plugin_memory_mb,
            calls: self.plugin_calls,
            threads: self.plugin_threads,
            cpu_slots: self.plugin_cpu_slots,
        };
        // One outbound policy for plugins' requests and webhook deliveries alike.
        let egress = CheckedResolver::system(allow_private_http());
        // On PostgreSQL the processes of a deployment hold tenants' outbound rates between
        // them, as the API's (`AppState` does that from the database itself).
        let rate_leases = (db.backend() == Backend::Postgres)
            .then(|| Arc::new(DbLeases::new(db.clone())) as Arc<dyn RateLeases>);
        let runtime = start_host(
            &self.data_dir,
            self.database_url.as_deref(),
            &key,
            &capacity,
            egress.clone(),
            rate_leases,
        )
        .await?;
        anyhow::ensure!(
            self.role == Role::All || db.backend() == Backend::Postgres,
            "--role {} needs a PostgreSQL --database-url: the processes share its database",
            self.role
        );
        let mut settings = Settings {
            role: self.role,
            ..Settings::default()
        };
        settings.webhooks.egress = egress;
        settings.max_tenants_per_account = self.max_tenants_per_account;
        settings.runs.enabled = self.run_log == Switch::On;
        settings.metrics_per_tenant = self.metrics_per_tenant == Switch::On;
        settings.queue.lease = std::time::Duration::from_secs(self.event_lease_secs);
        settings.queue.concurrency = usize::try_from(self.event_workers).unwrap_or(16);
        settings.queue.per_tenant = settings.queue.concurrency.div_ceil(4);
        settings.publisher_limits = PublisherLimits {
            max_in_review: self.max_submissions_in_review,
            max_stored_bytes: self.max_publisher_storage_mb.saturating_mul(1 << 20),
        };
        anyhow::ensure!(
            self.payout_hold_days >= 0 && self.payout_threshold > 0,
            "--payout-hold-days must be 0 or more and --payout-threshold more than 0"
        );
        settings.ledger.webhook_secret = self.billing_webhook_secret.filter(|s| !s.is_empty());
        settings.ledger.hold_ms = self
            .payout_hold_days
            .saturating_mul(plinth_marketplace::clock::DAY_MS);
        settings.ledger.payout_threshold = self.payout_threshold;
        settings.ledger.payout_dir = self
            .payout_dir
            .unwrap_or_else(|| self.data_dir.join("payouts"));
        settings.billing = billing;
        let state = AppState::with_runtime(db, settings, key, runtime);
        let restored = installs::restore_all(&state).await?;
        tracing::info!(restored, "installs restored into the host");
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, role = %self.role, marketplace_key = %state.public_key(), "plinth serve started");
        println!("plinth serve: listening on http://{address}");
        server::serve_with(
            listener,
            state,
            // The console is the control plane's face; hosts serve the data plane only.
            self.role
                .serves_control_plane()
                .then(plinth_console::routes),
            shutdown_signal(),
            Duration::from_secs(self.drain_secs),
        )
        .await?;
        tracing::info!("plinth serve stopped");
        Ok(())
    }
}

impl ServeCommand {
    /// The platform's billing from the flags.
    fn billing_settings(&self) -> anyhow::Result<BillingSettings> {
        anyhow::ensure!(
            self.dunning_retry_hours
                .iter()
                .all(|h| (0..=24 * 365).contains(h))
                && (0..=365).contains(&self.suspend_after_days)
                && self.billing_tick_secs > 0,
            "--dunning-retry-hours must be 0 to 8760 each, --suspend-after-days 0 to 365 and \
             --billing-tick-secs more than 0"
        );
        let processor = match self
            .billing_processor_key
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            Some(key) => Some(Arc::new(
                StripeProcessor::new(
                    &self.billing_processor_url,
                    key.to_owned(),
                    Duration::from_secs(20),
                )
                .map_err(|e| anyhow::anyhow!("--billing-processor-url: {e}"))?,
            ) as Arc<dyn Processor>),
            None => None,
        };
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned();
        Ok(BillingSettings {
            processor,
            mail: self
                .smtp_url
                .as_ref()
                .filter(|u| !u.is_empty())
                .map(|url| MailSettings {
                    smtp_url: url.clone(),
                    from: self.mail_from.clone(),
                    timeout: Duration::from_secs(20),
                }),
            public_url,
            retry_after_ms: self
                .dunning_retry_hours
                .iter()
                .map(|h| h.saturating_mul(60 * 60 * 1000))
                .collect(),
            suspend_after_ms: self
                .suspend_after_days
                .saturating_mul(plinth_marketplace::clock::DAY_MS),
            tick_every: Duration::from_secs(self.billing_tick_secs),
            ..BillingSettings::default()
        })
    }
}

/// How much of the machine the host's plugin calls may take.
#[derive(Debug)]
struct HostCapacity {
    memory_mb: u64,
    calls: u32,
    threads: Option<usize>,
    cpu_slots: Option<usize>,
}

/// The host, trusting only packages countersigned by this marketplace's key; its kv data in
/// `DIR/kv.db` (or the PostgreSQL database), compiled components cached in `DIR/compiled`;
/// tenants' outbound rates shared through `rate_leases` when there is one.
async fn start_host(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    key: &plinth_package::SecretKey,
    capacity: &HostCapacity,
    egress: CheckedResolver,
    rate_leases: Option<Arc<dyn RateLeases>>,
) -> anyhow::Result<Runtime> {
    anyhow::ensure!(
        capacity.calls > 0
            && capacity.memory_mb > 0
            && capacity.threads != Some(0)
            && capacity.cpu_slots != Some(0),
        "--plugin-calls, --plugin-memory-mb, --plugin-threads and --plugin-cpu-slots must be \
         more than 0"
    );
    let kv_url = match database_url {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}?mode=rwc", data_dir.join("kv.db").display()),
    };
    let kv = KvStore::connect(&kv_url)
        .await
        .context("cannot open the kv store")?;
    let mut config = HostConfig::new(
        data_dir.join("compiled"),
        TrustPolicy::enforce(vec![key.public_key()]),
    );
    config.kv = Some(kv);
    config.egress = egress;
    config.engine.max_instances = capacity.calls;
    config.capacity.max_calls = capacity.calls;
    config.capacity.max_memory_bytes = capacity.memory_mb.saturating_mul(1 << 20);
    config.worker_threads = capacity.threads;
    config.cpu_slots = capacity.cpu_slots;
    config.rate_leases = rate_leases;
    let host = Host::new(config).context("cannot start the host")?;
    let secrets = SecretsKey::load_or_create(data_dir)?;
    Ok(Runtime {
        host: Arc::new(host),
        secrets,
    })
}

/// Whether `PLINTH_ALLOW_PRIVATE_HTTP=1`: plugins' outbound HTTP and webhooks may then reach
/// private and loopback addresses (development and tests only).
fn allow_private_http() -> bool {
    std::env::var("PLINTH_ALLOW_PRIVATE_HTTP").is_ok_and(|v| v == "1")
}

/// The marketplace database: `url` if given, else SQLite under `data_dir`.
pub async fn open_database(data_dir: &std::path::Path, url: Option<&str>) -> anyhow::Result<Db> {
    let db = match url {
        Some(url) => Db::connect(url).await,
        None => Db::open_data_dir(data_dir).await,
    };
    db.context("cannot open the marketplace database")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
