//! The two SQLite operations a backup needs: a consistent copy of a live database, and the
//! integrity check of a restored one.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};

use super::BackupError;

/// How long a copy waits for a lock a writer holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the existing database `path` (never creating it).
async fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(|source| BackupError::Sqlite {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a consistent copy of the live database `source` to the new file `target` with
/// `VACUUM INTO`: one read transaction, so writers may go on meanwhile (in WAL mode) and the
/// copy is the database as of one moment.
///
/// # Errors
///
/// [`BackupError::Sqlite`] if the database cannot be opened or copied.
pub(super) async fn snapshot(source: &Path, target: &Path) -> Result<(), BackupError> {
    let fail = |source_error| BackupError::Sqlite {
        path: source.to_path_buf(),
        source: source_error,
    };
    let target_text = target
        .to_str()
        .ok_or_else(|| BackupError::Invalid(format!("{} is not UTF-8", target.display())))?
        .to_owned();
    let mut connection = open(source).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(target_text)
        .execute(&mut connection)
        .await
        .map_err(fail)?;
    connection.close().await.map_err(fail)
}

/// Runs `PRAGMA integrity_check` on the database `path` (named `name` in errors).
///
/// # Errors
///
/// [`BackupError::Integrity`] with SQLite's first complaint; [`BackupError::Sqlite`] if it
/// cannot be opened.
pub(super) async fn check_integrity(path: &Path, name: &str) -> Result<(), BackupError> {
    let fail = |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let mut connection = open(path).await?;
    let report: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .map_err(fail)?;
    connection.close().await.map_err(fail)?;
    if report == "ok" {
        Ok(())
    } else {
        Err(BackupError::Integrity {
            path: name.to_owned(),
            report,
        })
    }
}
