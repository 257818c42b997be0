//! `plinth admin restore`: a backup into a new data dir.

use std::path::PathBuf;

use anyhow::Context as _;
use plinth_marketplace::backup;

use super::backup::summary;
use crate::commands::database::runtime;

/// Restore a backup (from `plinth admin backup`) into a new or empty data dir.
///
/// Every file is checked against the backup's manifest (size and SHA-256) and every database
/// against SQLite's integrity check before anything is put in place; a data dir that is not
/// empty is refused. A PostgreSQL backup restores the keys and files only: restore the
/// database from its `pg_dump` with `pg_restore`. Then start `plinth serve` on the data dir.
#[derive(Debug, clap::Args)]
pub struct RestoreCommand {
    /// The backup file.
    backup: PathBuf,
    /// The data dir to restore into; it must not exist or be empty.
    #[arg(
        long,
        env = "PLINTH_DATA_DIR",
        default_value = "./plinth-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    /// Print the backup's manifest as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl RestoreCommand {
    /// Restores and says what came back.
    pub fn execute(self) -> anyhow::Result<()> {
        let manifest = runtime()?
            .block_on(backup::restore(&self.backup, &self.data_dir))
            .with_context(|| format!("cannot restore {}", self.backup.display()))?;
        if self.json {
            println!("{}", serde_json::to_string(&manifest)?);
        } else {
            println!(
                "restored the backup of {} into {}: {}",
                manifest.created_at,
                self.data_dir.display(),
                summary(&manifest)
            );
        }
        if manifest.backend == "postgres" {
            eprintln!(
                "note: this backup's database is PostgreSQL: restore its pg_dump with pg_restore \
                 before starting plinth serve with --database-url"
            );
        }
        if !manifest.keys_not_found.is_empty() {
            eprintln!(
                "warning: the backup holds no {}: give them to plinth serve as before \
                 (environment variables, --marketplace-key)",
                manifest.keys_not_found.join(", ")
            );
        }
        Ok(())
    }
}
