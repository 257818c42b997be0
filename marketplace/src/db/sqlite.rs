//! What is SQLite's own: migrations, connection settings, full-text search (FTS5).

use super::EmbeddedMigration;

/// SQLite's migrations, in order.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[(
    1,
    "core",
    include_str!("../../migrations/sqlite/0001_core.sql"),
)];

/// Run on every new connection: WAL journaling (readers never wait for the writer), a busy
/// timeout so concurrent writers queue rather than fail, and foreign keys enforced.
pub(crate) const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";
