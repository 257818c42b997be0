//! Backups: one file that holds everything a marketplace needs to start again elsewhere, and
//! restoring it into a fresh data dir.
//!
//! A backup is a gzip'd tar whose first entry is [`MANIFEST_FILE`] ([`BackupManifest`]: the
//! format, when and by which `plinth` it was made, and every other entry with its size and
//! SHA-256), followed by:
//!
//! - on SQLite, `marketplace.db` and `kv.db`, each a consistent snapshot of the live database
//!   taken with `VACUUM INTO` (the server may keep running; the two are taken one after the
//!   other). Package artifacts live in `marketplace.db`, so they come with it;
//! - the keys found in the data dir: `marketplace.key` (and `.pub`), `secrets.key`,
//!   `audit.key`. A key kept elsewhere (an environment variable, `--marketplace-key`) is not
//!   copied; the manifest names it under [`BackupManifest::keys_not_found`];
//! - the payout files under `payouts/`.
//!
//! The compiled-component cache is not copied (it is derived from the artifacts and tied to the
//! engine that compiled it); the manifest lists its entries ([`BackupManifest::compiled`]) and
//! a restored host compiles each component once. On PostgreSQL the database is dumped with
//! `pg_dump` (see `docs/operator.md`); the backup then holds the same files without databases.
//!
//! [`create`] writes the backup to a temporary file next to its destination and renames it
//! into place (mode 0600: it holds the keys), never over an existing file. [`restore`] refuses
//! a data dir that is not empty, reads the manifest first, accepts only the entries it lists
//! (regular files under known names, no links, no `..`), checks each one's size and SHA-256
//! and SQLite's integrity check of each database in a staging directory next to the target,
//! and only then renames the staging directory into place: a failed restore leaves nothing.
//!
//! ```no_run
//! # async fn run() -> Result<(), plinth_marketplace::backup::BackupError> {
//! use std::path::Path;
//! use plinth_marketplace::backup::{self, Source};
//!
//! let source = Source { data_dir: Path::new("./plinth-data"), database_url: None };
//! let manifest = backup::create(&source, Path::new("plinth-backup.tar.gz")).await?;
//! println!("{} files", manifest.files.len());
//! backup::restore(Path::new("plinth-backup.tar.gz"), Path::new("./restored-data")).await?;
//! # Ok(())
//! # }
//! ```

mod contents;
mod create;
mod restore;
mod sqlite;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use contents::{DATABASE_FILES, KEY_FILES, PAYOUTS_DIR};
pub use create::create;
pub use restore::restore;

/// The name of the manifest, the first entry of every backup.
pub const MANIFEST_FILE: &str = "backup.json";
/// The backup format this `plinth` writes and reads.
pub const FORMAT: u32 = 1;

/// Where the marketplace to back up keeps its state.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The data dir `plinth serve` runs with.
    pub data_dir: &'a std::path::Path,
    /// The PostgreSQL URL it runs with, if any (its database is then dumped with `pg_dump`,
    /// not by [`create`]). Only its scheme is read; it is never logged.
    pub database_url: Option<&'a str>,
}

/// What a backup holds; its first entry, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    /// The backup format ([`FORMAT`]).
    pub format: u32,
    /// The version of `plinth` that wrote it.
    pub plinth_version: String,
    /// When it was written (RFC 3339, UTC).
    pub created_at: String,
    /// `sqlite` (the databases are in the backup) or `postgres` (they are dumped apart).
    pub backend: String,
    /// Every other entry, in archive order.
    pub files: Vec<BackedUpFile>,
    /// Keys the data dir did not hold: keep them with the backup some other way.
    pub keys_not_found: Vec<String>,
    /// The compiled-component cache at the time of the backup (not copied).
    pub compiled: Vec<CompiledEntry>,
}

/// One file in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackedUpFile {
    /// Its path relative to the data dir, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its content, hex.
    pub sha256: String,
}

/// One entry of the compiled-component cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledEntry {
    /// Its file name (`<wasm sha256>-<engine hash>.cwasm`).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why a backup or a restore failed. Nothing is left half-written when it does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data dir holds no SQLite marketplace database (and no database URL was given).
    #[error(
        "no marketplace database at {} (give the data dir `plinth serve` uses, or --database-url)",
        .0.display()
    )]
    NoDatabase(PathBuf),
    /// `--database-url` names a SQLite database: a SQLite marketplace is backed up from its
    /// data dir.
    #[error(
        "a backup takes a PostgreSQL --database-url or none; back up a SQLite marketplace from its \
         data dir"
    )]
    SqliteUrl,
    /// A SQLite database could not be snapshotted or checked.
    #[error("SQLite database {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The backup's destination already exists.
    #[error("{} already exists: a backup never replaces a file", .0.display())]
    OutputExists(PathBuf),
    /// The restore's target is a directory that is not empty, or not a directory.
    #[error(
        "{} is not an empty directory: restore only into a new or empty data dir",
        .0.display()
    )]
    TargetNotEmpty(PathBuf),
    /// The file is not a backup this `plinth` can read, or it was changed since it was written.
    #[error("not a valid Plinth backup: {0}")]
    Invalid(String),
    /// The backup was written by a newer `plinth` in a format this one does not know.
    #[error("backup format {found} is newer than this plinth reads ({FORMAT}); use a newer plinth")]
    Format {
        /// The format the manifest names.
        found: u32,
    },
    /// A restored SQLite database fails `PRAGMA integrity_check`.
    #[error("the restored {path} fails SQLite's integrity check: {report}")]
    Integrity {
        /// The database, relative to the data dir.
        path: String,
        /// SQLite's first complaint.
        report: String,
    },
}

impl BackupError {
    /// An I/O error about `path`.
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.into();
        move |source| BackupError::Io { path, source }
    }
}
