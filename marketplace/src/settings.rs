//! Settings of a marketplace: limits and periods an operator may tune.

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
    /// The revenue-share ledger: webhook secret, hold, payout threshold, split and fees.
    pub ledger: crate::ledger::LedgerSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
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
            ledger: crate::ledger::LedgerSettings::default(),
        }
    }
}

impl Settings {
    /// The most bytes a submission may upload.
    pub fn max_package_bytes(&self) -> usize {
        usize::try_from(self.package_limits.compressed).unwrap_or(usize::MAX)
    }
}
