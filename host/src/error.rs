//! The crate's errors: [`Error`] for loading and managing plugins, [`InvokeError`] for one call.

/// Why the host could not load, prepare or manage a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wasmtime refused the engine configuration.
    #[error("wasmtime engine: {0}")]
    Engine(String),
    /// The component could not be linked with the granted capabilities: it imports something
    /// the grant does not cover, or its exports are not a Plinth plugin's.
    #[error("{plugin} cannot be instantiated: {message}")]
    Link {
        /// `<id>@<version>`.
        plugin: String,
        /// What is missing or wrong.
        message: String,
    },
    /// The tenant's grant includes a permission the plugin's manifest never asked for.
    #[error(
        "{plugin} does not ask for {grant:?}; a grant can only cover what the manifest declares"
    )]
    GrantNotRequested {
        /// `<id>@<version>`.
        plugin: String,
        /// The grant that was not requested, as its sentence.
        grant: String,
    },
    /// The compiled-component cache failed (I/O) or the component does not compile.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The package is not trusted: a signature is missing, invalid or by an unknown key.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// The tenant has no install of the plugin.
    #[error("{tenant} has no install of {plugin}")]
    NotInstalled {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
    },
    /// The tenant already has an install of the plugin (upgrade it instead).
    #[error("{tenant} already has {plugin} installed")]
    AlreadyInstalled {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
    },
    /// The plugin exports no `wasi:http/incoming-handler`.
    #[error("{plugin} does not serve HTTP")]
    NotServingHttp {
        /// `<id>@<version>`.
        plugin: String,
    },
    /// There is no earlier version to roll back to.
    #[error("{tenant}'s install of {plugin} has no previous version to roll back to")]
    NothingToRollBack {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
    },
    /// The install changed between a lifecycle hook and the change it prepared (another
    /// upgrade, rollback, reconfiguration or removal got there first), so that change was not
    /// applied.
    #[error("{tenant}'s install of {plugin} changed while its hook ran; nothing was applied")]
    InstallChanged {
        /// The tenant.
        tenant: String,
        /// The plugin id.
        plugin: String,
    },
    /// A lifecycle hook of the plugin failed, so the install or upgrade did not happen.
    #[error("{plugin} failed its {hook} hook: {error}")]
    Lifecycle {
        /// `<id>@<version>`.
        plugin: String,
        /// `on-install`, `on-upgrade` or `on-uninstall`.
        hook: &'static str,
        /// How the hook failed.
        error: InvokeError,
    },
    /// The kv store failed.
    #[error(transparent)]
    Kv(#[from] crate::kv::KvError),
    /// The kv capability is granted but the host has no kv store.
    #[error("the kv capability is granted but this host has no kv store configured")]
    NoKvStore,
}

/// How one call of a plugin failed. Every variant is the call's own failure: the host and
/// other tenants are unaffected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// Fuel metering was on and the call used all its fuel.
    #[error("the call ran out of fuel ({limit} units)")]
    OutOfFuel {
        /// The fuel the call had.
        limit: u64,
    },
    /// The call passed its wall-clock deadline (guest code or a host call).
    #[error("the call passed its {limit_ms} ms deadline")]
    Timeout {
        /// The deadline, in milliseconds.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memories and tables past the limit.
    #[error("the plugin passed its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// The plugin trapped (a panic, stack overflow, unreachable, …).
    #[error("the plugin trapped: {message}")]
    Trap {
        /// What the trap was, and the plugin's panic message if it printed one.
        message: String,
    },
    /// The plugin returned more output than allowed.
    #[error("the plugin returned {size} bytes, more than the {limit}-byte limit")]
    OutputTooLarge {
        /// The output's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The plugin reached for a capability it was not granted (e.g. a host outside its HTTP
    /// allowlist) and failed because of it.
    #[error("permission denied: {capability}: {detail}")]
    PermissionDenied {
        /// `http`, `kv`, `events`, …
        capability: String,
        /// What was refused.
        detail: String,
    },
    /// The plugin returned an error of its own.
    #[error("the plugin failed ({kind}): {message}")]
    PluginError {
        /// `invalid-payload`, `invalid-config`, `capability` or `failed`.
        kind: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin does not subscribe to the event's topic.
    #[error("the plugin does not subscribe to {topic:?}")]
    NotSubscribed {
        /// The topic.
        topic: String,
    },
    /// The install's circuit breaker is open after repeated failures; the call was not run.
    #[error("the plugin is failing repeatedly; calls resume in {retry_after_ms} ms")]
    CircuitOpen {
        /// When the breaker lets a trial call through.
        retry_after_ms: u64,
    },
    /// The plugin failed after its tenant passed a rate of its plan (e.g. outbound HTTP
    /// requests per minute, shared by all of the tenant's installs).
    #[error("the tenant has used its {what}; retry in {retry_after_ms} ms")]
    RateLimited {
        /// Which rate.
        what: String,
        /// When the rate allows more.
        retry_after_ms: u64,
    },
    /// The call was not run: the host's capacity or the tenant's share of it is in use (or
    /// one call needs more than all of it). Not the plugin's fault: it never counts against
    /// its circuit breaker.
    #[error("not run for lack of capacity: {message}")]
    Capacity {
        /// What was short.
        message: String,
        /// When trying again makes sense; `None` when it never will (the call is larger than
        /// the whole budget).
        retry_after_ms: Option<u64>,
    },
    /// The call was not run: the tenant has used its plan's invocations this month.
    #[error("not run: the tenant has used {used} of its {limit} invocations this month")]
    QuotaExceeded {
        /// Invocations counted this month.
        used: u64,
        /// The plan's monthly invocations.
        limit: u64,
    },
    /// The call was not run: the inbound event that led to it spent its budget (invocations
    /// across all emit hops, or bytes of results). The cascade ended here.
    #[error("not run: the event spent its budget of {budget}; {skipped} deliveries were not made")]
    EventBudgetExhausted {
        /// The budget spent, e.g. `32 invocations`.
        budget: String,
        /// Deliveries the cascade would still have made.
        skipped: u64,
    },
    /// The host failed (not the plugin): instantiation or a host resource failed.
    #[error("host error: {0}")]
    Internal(String),
}

impl From<crate::capacity::CapacityError> for InvokeError {
    fn from(error: crate::capacity::CapacityError) -> Self {
        let retry_after_ms = match &error {
            crate::capacity::CapacityError::TooLarge { .. } => None,
            crate::capacity::CapacityError::Busy { retry_after, .. } => {
                Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))
            }
        };
        InvokeError::Capacity {
            message: error.to_string(),
            retry_after_ms,
        }
    }
}

impl InvokeError {
    /// A stable snake_case code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::OutOfFuel { .. } => "out_of_fuel",
            InvokeError::Timeout { .. } => "timeout",
            InvokeError::MemoryLimit { .. } => "memory_limit",
            InvokeError::Trap { .. } => "trap",
            InvokeError::OutputTooLarge { .. } => "output_too_large",
            InvokeError::PermissionDenied { .. } => "permission_denied",
            InvokeError::PluginError { .. } => "plugin_error",
            InvokeError::NotSubscribed { .. } => "not_subscribed",
            InvokeError::CircuitOpen { .. } => "circuit_open",
            InvokeError::RateLimited { .. } => "rate_limited",
            InvokeError::Capacity { .. } => "capacity",
            InvokeError::QuotaExceeded { .. } => "quota_exceeded",
            InvokeError::EventBudgetExhausted { .. } => "event_budget_exhausted",
            InvokeError::Internal(_) => "internal",
        }
    }

    /// Whether the call was refused before it ran (breaker open, capacity, quota, the event's
    /// budget): such a call used nothing, is not metered and says nothing about the plugin.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            InvokeError::CircuitOpen { .. }
                | InvokeError::Capacity { .. }
                | InvokeError::QuotaExceeded { .. }
                | InvokeError::EventBudgetExhausted { .. }
        )
    }
}
