//! The options every command that reads the marketplace's database shares.

use std::path::PathBuf;

use anyhow::Context as _;
use plinth_marketplace::Db;
use plinth_marketplace::audit::key::AuditKey;

/// Where the marketplace's database is: SQLite under the data dir, or a PostgreSQL URL.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Directory of the SQLite database (as given to `plinth serve`).
    #[arg(
        long,
        env = "PLINTH_DATA_DIR",
        default_value = "./plinth-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL to use instead of SQLite.
    #[arg(long, env = "PLINTH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// Opens the database (applying pending migrations).
    pub async fn open(&self) -> anyhow::Result<Db> {
        super::serve::open_database(&self.data_dir, self.database_url.as_deref()).await
    }

    /// Opens the database with the audit key (`PLINTH_AUDIT_KEY`, else `DIR/audit.key`), for
    /// commands that append to the audit log (`create`: make the key if there is none) or
    /// verify it (the key must exist).
    pub async fn open_with_audit_key(&self, create: bool) -> anyhow::Result<Db> {
        let key = if create {
            AuditKey::load_or_create(&self.data_dir)
        } else {
            AuditKey::load(&self.data_dir)
        }
        .context("cannot load the audit key")?;
        Ok(self.open().await?.with_audit_key(key))
    }
}

/// A current-thread async runtime for a one-shot command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints the verdict of a `verify` command: the report (`sound` says it in a line) or, with
/// `json`, either side as JSON on stdout. A violation is the command's error, as `broken` says it.
pub fn print_verdict<R: serde::Serialize, V: serde::Serialize>(
    verdict: Result<R, V>,
    json: bool,
    sound: impl FnOnce(&R) -> String,
    broken: impl FnOnce(&V) -> String,
) -> anyhow::Result<()> {
    match verdict {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", sound(&report));
            }
            Ok(())
        }
        Err(violation) => {
            if json {
                println!("{}", serde_json::to_string(&violation)?);
            }
            anyhow::bail!("{}", broken(&violation))
        }
    }
}
