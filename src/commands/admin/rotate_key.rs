//! `plinth admin rotate-key`: a new marketplace countersigning key.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::key_rotation::{self, Retirement};
use plinth_marketplace::signing_key;
use plinth_package::SecretKey;

use crate::commands::database::{DatabaseArgs, runtime};

/// Rotate the marketplace key: make a new one, have a state statement signed by the current
/// key introduce it to hosts, countersign every published package again with it, and replace
/// the key file (the old one is kept beside it as `…retired-<time>`). Restart every server
/// with the new key file afterwards.
#[derive(Debug, clap::Args)]
pub struct RotateKeyCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The current key file; default `DIR/marketplace.key`.
    #[arg(long, value_name = "FILE")]
    marketplace_key: Option<PathBuf>,
    /// Hours the old key stays trusted beside the new one.
    #[arg(long, default_value_t = 24, value_name = "HOURS")]
    overlap_hours: u64,
    /// The old key is compromised: hosts stop trusting it at once (no overlap).
    #[arg(long)]
    compromised: bool,
}

impl RotateKeyCommand {
    /// Rotates and prints what was done as JSON.
    pub fn execute(self) -> anyhow::Result<()> {
        let path = self
            .marketplace_key
            .clone()
            .unwrap_or_else(|| self.database.data_dir.join(signing_key::FILE_NAME));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the marketplace key {}", path.display()))?;
        let old = SecretKey::parse(text.trim())
            .with_context(|| format!("cannot parse the marketplace key {}", path.display()))?;
        let new = SecretKey::generate().context("cannot make a key")?;
        let retirement = if self.compromised {
            Retirement::Compromised
        } else {
            Retirement::Overlap(Duration::from_secs(self.overlap_hours.saturating_mul(3600)))
        };
        let rotated = runtime()?.block_on(async {
            let db = self.database.open_with_audit_key(true).await?;
            let rotated = key_rotation::rotate(&db, &old, &new, retirement, now_ms()).await;
            db.close().await;
            rotated.context("cannot rotate the marketplace key")
        })?;
        // The key file is replaced last: until then servers keep signing with the old key,
        // which hosts trust throughout.
        let retired = path.with_extension(format!("key.retired-{}", now_ms() / 1000));
        std::fs::rename(&path, &retired)
            .with_context(|| format!("cannot move the old key to {}", retired.display()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot write the new key to {}", path.display()))?;
        writeln!(file, "{}", new.to_file_string())?;
        std::fs::write(
            path.with_extension("key.pub"),
            format!("{}\n", new.public_key()),
        )?;
        eprintln!(
            "rotated the marketplace key to {}; the old one is in {}. Restart every server with the new key file.",
            new.public_key().fingerprint(),
            retired.display()
        );
        println!("{}", serde_json::to_string_pretty(&rotated)?);
        Ok(())
    }
}
