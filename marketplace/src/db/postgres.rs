//! What is PostgreSQL's own: migrations and full-text search (a weighted `tsvector`).

use super::EmbeddedMigration;

/// PostgreSQL's migrations, in order.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[(
    1,
    "core",
    include_str!("../../migrations/postgres/0001_core.sql"),
)];
