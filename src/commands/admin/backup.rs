//! `plinth admin backup`: one file holding what the marketplace needs to start again.

use std::path::PathBuf;

use anyhow::Context as _;
use plinth_marketplace::backup::{self, BackupManifest, Source};

use crate::commands::database::{DatabaseArgs, runtime};

/// Write a backup of the marketplace to one new file.
///
/// On SQLite it holds a consistent copy of each database, taken while the server runs (package
/// artifacts included), the keys in the data dir and the payout files. On PostgreSQL, dump the
/// database with `pg_dump` and keep this file (the keys and files) with the dump. The file holds
/// the keys: keep it as safe as them. Restore it with `plinth admin restore`.
#[derive(Debug, clap::Args)]
pub struct BackupCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Where to write the backup (a gzip'd tar); it must not exist yet.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print the backup's manifest as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl BackupCommand {
    /// Writes the backup and says what it holds.
    pub fn execute(self) -> anyhow::Result<()> {
        let source = Source {
            data_dir: &self.database.data_dir,
            database_url: self.database.database_url.as_deref(),
        };
        let manifest = runtime()?
            .block_on(backup::create(&source, &self.out))
            .context("cannot write the backup")?;
        if self.json {
            println!("{}", serde_json::to_string(&manifest)?);
        } else {
            println!(
                "backup written to {}: {}",
                self.out.display(),
                summary(&manifest)
            );
        }
        if manifest.backend == "postgres" {
            eprintln!(
                "note: the PostgreSQL database is not in the backup: dump it with pg_dump and \
                 keep the dump with this file (see docs/operator.md)"
            );
        }
        if !manifest.keys_not_found.is_empty() {
            eprintln!(
                "warning: not in the data dir, so not in the backup: {} (kept in an environment \
                 variable or elsewhere? keep them with this backup)",
                manifest.keys_not_found.join(", ")
            );
        }
        Ok(())
    }
}

/// `2 databases, 4 keys, 1 payout file (123456 bytes); 3 compiled components left out
/// (compiled again on first start)`.
pub fn summary(manifest: &BackupManifest) -> String {
    let count = |prefix: fn(&str) -> bool| {
        manifest
            .files
            .iter()
            .filter(|file| prefix(&file.path))
            .count()
    };
    let databases = count(|path| backup::DATABASE_FILES.contains(&path));
    let keys = count(|path| backup::KEY_FILES.contains(&path));
    let payouts = count(|path| path.starts_with(&format!("{}/", backup::PAYOUTS_DIR)));
    let bytes: u64 = manifest.files.iter().map(|file| file.bytes).sum();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {} ({bytes} bytes); {} left out (compiled again on first start)",
        plural(databases, "database", "databases"),
        plural(keys, "key", "keys"),
        plural(payouts, "payout file", "payout files"),
        plural(
            manifest.compiled.len(),
            "compiled component",
            "compiled components"
        ),
    )
}
