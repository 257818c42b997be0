//! `plinth plugin verify`: check a package's signatures.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::commands::keygen::read_public_key;

/// Verify that a package is intact and signed by the given developer key.
///
/// Exits 0 only if the archive is well formed, its content matches the signed digest, and the
/// developer signature was made by the key in FILE.pub (and, with --marketplace-key, the
/// marketplace countersignature by that key).
#[derive(Debug, clap::Args)]
pub struct VerifyCommand {
    /// The `.plinth` package to verify.
    #[arg(value_name = "PKG")]
    package: PathBuf,
    /// The developer's public key (a `.pub` file written by `plinth keygen`).
    #[arg(long, value_name = "FILE.pub")]
    public_key: PathBuf,
    /// Also require a valid marketplace countersignature by this public key.
    #[arg(long, value_name = "FILE.pub")]
    marketplace_key: Option<PathBuf>,
}

impl VerifyCommand {
    /// Verifies and prints a one-line verdict.
    pub fn execute(self) -> anyhow::Result<()> {
        let developer = read_public_key(&self.public_key)?;
        let marketplace = self
            .marketplace_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;
        let package = super::read_package(&self.package)?;
        package
            .verify_developer(&developer)
            .with_context(|| format!("{}: developer signature", self.package.display()))?;
        if let Some(marketplace) = &marketplace {
            package
                .verify_countersignature(marketplace)
                .with_context(|| {
                    format!("{}: marketplace countersignature", self.package.display())
                })?;
        }
        println!(
            "OK {} {} digest {} signed by {}{}",
            package.manifest.plugin.id,
            package.manifest.plugin.version,
            package.digest(),
            developer.fingerprint(),
            marketplace
                .map(|key| format!(", countersigned by {}", key.fingerprint()))
                .unwrap_or_default()
        );
        Ok(())
    }
}
