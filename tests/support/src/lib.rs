//! Test helpers shared by Plinth's crates.
//!
//! Storage tests run on both backends: [`TestDatabase::sqlite`] gives a fresh SQLite file in a
//! temporary directory, [`TestDatabase::postgres`] a fresh PostgreSQL schema on the test server
//! (see [`postgres`]). Either is removed when dropped. [`bare`] runs `hello` on bare wasmtime,
//! the floor the benchmarks measure Plinth against. [`smtp`] is an SMTP server on loopback that
//! keeps the e-mail sent to it.

pub mod bare;
pub mod postgres;
pub mod smtp;

use postgres::TestSchema;

/// A fresh, empty database for one test, on one of the two backends.
#[derive(Debug)]
pub enum TestDatabase {
    /// A SQLite file in a temporary directory.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL schema of its own.
    Postgres(TestSchema),
}

impl TestDatabase {
    /// A fresh SQLite database file.
    pub fn sqlite() -> anyhow::Result<TestDatabase> {
        Ok(TestDatabase::Sqlite(tempfile::tempdir()?))
    }

    /// A fresh PostgreSQL schema named `<prefix>_<random>`; fails when the server is unreachable.
    pub async fn postgres(prefix: &str) -> anyhow::Result<TestDatabase> {
        Ok(TestDatabase::Postgres(TestSchema::create(prefix).await?))
    }

    /// The URL that opens this database (`sqlite://…?mode=rwc` or `postgres://…`).
    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display())
            }
            TestDatabase::Postgres(schema) => schema.url(),
        }
    }

    /// The backend's name, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            TestDatabase::Sqlite(_) => "sqlite",
            TestDatabase::Postgres(_) => "postgres",
        }
    }
}
