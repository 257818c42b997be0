//! `plinth plugin sign`: sign a package with a publisher key.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::commands::keygen::read_secret_key;

/// Sign a package's digest with your secret key (replacing any earlier developer signature).
///
/// The package is rewritten in place atomically: if anything fails, the original is untouched.
#[derive(Debug, clap::Args)]
pub struct SignCommand {
    /// The `.plinth` package to sign.
    #[arg(value_name = "PKG")]
    package: PathBuf,
    /// The secret key written by `plinth keygen`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

impl SignCommand {
    /// Signs the package and writes it back.
    pub fn execute(self) -> anyhow::Result<()> {
        let secret = read_secret_key(&self.key)?;
        let mut package = super::read_package(&self.package)?;
        package.sign(&secret);
        package
            .write_to(&self.package)
            .with_context(|| format!("cannot write {}", self.package.display()))?;
        println!(
            "signed {} {} (digest {}) with key {}",
            package.manifest.plugin.id,
            package.manifest.plugin.version,
            package.digest(),
            secret.public_key().fingerprint()
        );
        Ok(())
    }
}
