//! Settings of a marketplace: limits and periods an operator may tune.

use std::time::Duration;

use plinth_host::egress::CheckedResolver;
use plinth_package::ArchiveLimits;

/// Limits and periods of the marketplace.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a log-in session lasts, in milliseconds.
    pub session_ttl_ms: i64,
    /// How long a deleted tenant's data is kept before it is purged, in milliseconds.
    pub tenant_grace_ms: i64,
    /// Size limits a submitted package is held to (the compressed limit caps the upload).
    pub package_limits: ArchiveLimits,
    /// Publisher namespaces nobody may take.
    pub reserved_namespaces: Vec<String>,
    /// How notifications are delivered to webhooks.
    pub webhooks: WebhookSettings,
    /// The revenue-share ledger: webhook secret, hold, payout threshold, split and fees.
    pub ledger: crate::ledger::LedgerSettings,
    /// The platform's own billing of tenants: processor, e-mail, dunning.
    pub billing: crate::billing::BillingSettings,
    /// What this process serves when several share one PostgreSQL database.
    pub role: crate::server::Role,
    /// How many log-in and sign-up attempts an account and a client address may make.
    pub throttle: crate::auth::throttle::ThrottleSettings,
    /// The most tenants one account may create (operators are not limited); a deleted tenant
    /// counts until it is purged.
    pub max_tenants_per_account: u32,
    /// What one publisher may keep in the marketplace.
    pub publisher_limits: PublisherLimits,
    /// How the host's runs are queued and written to the run log.
    pub runs: crate::runs::RunLogSettings,
    /// How this process works the queue of asynchronous events.
    pub queue: crate::queue::QueueSettings,
    /// Whether `/metrics` also counts plugin calls per tenant (one series per tenant and
    /// outcome: turn it on only where the number of tenants is small).
    pub metrics_per_tenant: bool,
}

/// What one publisher may keep in the marketplace: every submission in review waits on the
/// reviewers, and every stored package takes room in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherLimits {
    /// Submissions in review at once.
    pub max_in_review: u32,
    /// Bytes of packages stored (every submission kept with its package: in review, approved,
    /// rejected or sent back by a reviewer; those rejected by validation keep only their report).
    pub max_stored_bytes: u64,
}

impl Default for PublisherLimits {
    fn default() -> Self {
        PublisherLimits {
            max_in_review: 10,
            max_stored_bytes: 1 << 30,
        }
    }
}

/// How notifications are delivered to the webhooks tenants and publishers configure.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How deliveries resolve webhook hosts and which addresses they may reach: private,
    /// loopback and link-local ones only if it allows them (off in production; `plinth serve`
    /// turns it on with `PLINTH_ALLOW_PRIVATE_HTTP=1`, tests do). The same policy as plugins'
    /// outbound HTTP.
    pub egress: CheckedResolver,
    /// Attempts per delivery before it is recorded as failed.
    pub max_attempts: u32,
    /// The wait before the second attempt; each later wait doubles, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
    /// The most deliveries in flight at once (per server).
    pub concurrency: usize,
    /// How often the deliverer looks for due deliveries.
    pub poll_every: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            egress: CheckedResolver::default(),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60 * 60),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            poll_every: Duration::from_secs(2),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            role: crate::server::Role::default(),
            session_ttl_ms: 30 * crate::clock::DAY_MS,
            tenant_grace_ms: 30 * crate::clock::DAY_MS,
            package_limits: ArchiveLimits::default(),
            reserved_namespaces: [
                "plinth",
                "admin",
                "api",
                "marketplace",
                "official",
                "operator",
                "root",
                "security",
                "support",
                "system",
                "www",
            ]
            .map(str::to_owned)
            .to_vec(),
            webhooks: WebhookSettings::default(),
            ledger: crate::ledger::LedgerSettings::default(),
            billing: crate::billing::BillingSettings::default(),
            throttle: crate::auth::throttle::ThrottleSettings::default(),
            max_tenants_per_account: 3,
            publisher_limits: PublisherLimits::default(),
            runs: crate::runs::RunLogSettings::default(),
            queue: crate::queue::QueueSettings::default(),
            metrics_per_tenant: false,
        }
    }
}

impl Settings {
    /// The most bytes a submission may upload.
    pub fn max_package_bytes(&self) -> usize {
        usize::try_from(self.package_limits.compressed).unwrap_or(usize::MAX)
    }
}
