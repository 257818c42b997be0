//! Row-level security on PostgreSQL (issue 24): the defence in depth that catches a query that
//! forgot its `WHERE tenant_id = …`.
//!
//! The tables are found from the schema, not listed here: every table with a `tenant_id` (and
//! `tenants`), and every table tied to one of those by a single-column foreign key, must have
//! row-level security on, forced, with a policy, unless the marketplace exempts it by name. Then,
//! with two tenants' data in them, a tenant-scoped transaction's deliberately unfiltered
//! `SELECT` of every such table returns exactly that tenant's rows, it cannot write another
//! tenant's row, and a connection that never set a scope sees no tenant's rows. The tests
//! connect as an ordinary role that owns the schema (see `plinth_test_support::postgres`), as
//! the application does in production.

mod common;
mod publishing;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail, ensure};
use plinth_marketplace::db::postgres::scope::EXEMPT;
use plinth_marketplace::queue::worker::work_due;
use plinth_marketplace::{Settings, clock::now_ms};
use plinth_test_artifacts::QUEUE_PROBE;
use plinth_test_support::TestDatabase;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{AssertSqlSafe, Row};

use common::TestApp;
use publishing::{developer, permissions_digest, publish};

/// How a table's rows are tied to a tenant.
#[derive(Debug, Clone)]
enum Tie {
    /// Its own column (`tenant_id`, or `id` for `tenants`).
    Column(String),
    /// Through a foreign key `fk` to `parent.key`, whose rows have the tenant in `column`.
    Parent {
        fk: String,
        parent: String,
        key: String,
        column: String,
    },
}

/// The marketplace's own tenant-scoped tables (the host's kv tables share the schema; the
/// host namespaces them itself, and its store holds no tenant scope yet).
const HOST_TABLES: &[&str] = &["kv_entries", "kv_usage"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_transaction_sees_only_its_own_rows_in_every_tenant_scoped_table() -> Result<()> {
    let mut settings = Settings::default();
    settings.queue.background = false;
    let app =
        TestApp::start_with_host_settings(TestDatabase::postgres("rls").await?, settings).await?;
    let (acme, globex) = two_tenants_with_data(&app).await?;
    let db = app.db();

    let tables = tenant_scoped_tables(db).await?;
    for must in [
        "installs",
        "tokens",
        "queued_events",
        "queued_event_results",
        "tenants",
    ] {
        ensure!(
            tables.contains_key(must),
            "{must} not found as tenant-scoped: {tables:?}"
        );
    }
    // Every one has its policy, forced on the owner too.
    for table in tables.keys() {
        let row = sqlx::query(
            "SELECT c.relrowsecurity AS on, c.relforcerowsecurity AS forced, \
                    (SELECT COUNT(*) FROM pg_policies p \
                     WHERE p.schemaname = current_schema() AND p.tablename = c.relname) AS policies \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1",
        )
        .bind(table)
        .fetch_one(db.pool())
        .await?;
        let (on, forced, policies): (bool, bool, i64) = (
            row.try_get("on")?,
            row.try_get("forced")?,
            row.try_get("policies")?,
        );
        ensure!(
            on && forced && policies > 0,
            "table {table} is tenant-scoped but has no forced row-level security policy \
             (on {on}, forced {forced}, {policies} policies): add one in its migration"
        );
    }

    // Inside acme's transaction an unfiltered query returns acme's rows, all of them.
    let mut with_both = 0;
    for (table, tie) in &tables {
        let theirs = |tenant: &str| owned_count(db, table, tie, tenant.to_owned());
        let (acme_rows, globex_rows) = (theirs(&acme).await?, theirs(&globex).await?);
        let mut tx = db.begin_tenant(&acme).await?;
        let seen: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM \"{table}\"")))
                .fetch_one(&mut *tx)
                .await?;
        tx.rollback().await?;
        ensure!(
            seen == acme_rows,
            "{table}: acme's transaction saw {seen} rows; acme has {acme_rows}"
        );
        with_both += i64::from(acme_rows > 0 && globex_rows > 0);
    }
    ensure!(
        with_both >= 6,
        "only {with_both} tables hold both tenants' rows"
    );
    // A tenant's read-only transaction is scoped alike.
    let mut read = db.begin_tenant_read(&globex).await?;
    let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM installs")
        .fetch_all(&mut *read)
        .await?;
    read.rollback().await?;
    ensure!(
        tenants == [globex.clone()],
        "globex's read saw installs of {tenants:?}"
    );

    // Nor can it write another tenant's row.
    let mut tx = db.begin_tenant(&acme).await?;
    let written = sqlx::query(
        "INSERT INTO schedule_ticks (tenant_id, plugin_id, schedule, last_tick) \
         VALUES ($1, 'labs.probe', 'every 1h t', 0)",
    )
    .bind(&globex)
    .execute(&mut *tx)
    .await;
    match written {
        Err(sqlx::Error::Database(e)) if e.message().contains("row-level security") => {}
        other => bail!("acme's transaction wrote a globex row: {other:?}"),
    }
    drop(tx);

    // A connection that set no scope (not the marketplace's pool) sees no tenant's rows.
    let url = db.url().to_owned();
    let mut bare = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
    let installs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM installs")
        .fetch_one(&mut bare)
        .await?;
    ensure!(
        installs == 0,
        "a connection without a scope saw {installs} installs"
    );
    Ok(())
}

/// Tenants `acme` and `globex`, each with the probe installed, an API key, a member, and a
/// delivered asynchronous event (with its results); returns their ids.
async fn two_tenants_with_data(app: &TestApp) -> Result<(String, String)> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    publish(app, &dev, &operator, &QUEUE_PROBE, "labs.probe", "0.1.0").await?;
    let digest = permissions_digest(app, "labs.probe", "0.1.0").await?;
    let mut ids = Vec::new();
    for slug in ["acme", "globex"] {
        let (_, owner) = app.user(&format!("owner@{slug}.example")).await?;
        app.tenant(&owner, slug).await?;
        app.user(&format!("member@{slug}.example")).await?;
        app.post(
            &format!("/v1/tenants/{slug}/members"),
            Some(&owner),
            json!({"email": format!("member@{slug}.example"), "role": "member"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        app.post(
            &format!("/v1/tenants/{slug}/installs"),
            Some(&owner),
            json!({"plugin": "labs.probe", "permissions_digest": digest}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        let key = app.api_key(&owner, slug).await?;
        app.post(
            &format!("/v1/tenants/{slug}/events"),
            Some(&key),
            json!({"topic": "job", "payload": {"emit": 1}, "delivery": "async"}),
        )
        .await?
        .expect(StatusCode::ACCEPTED)?;
        let shown = app
            .get(&format!("/v1/tenants/{slug}"), Some(&owner))
            .await?
            .expect(StatusCode::OK)?;
        ids.push(shown.body["id"].as_str().context("tenant id")?.to_owned());
    }
    work_due(&app.state, now_ms()).await?;
    work_due(&app.state, now_ms()).await?;
    // The runs of those calls are written in the background: all of them before counting.
    if let Some(recorder) = app.state.run_recorder() {
        recorder.flush().await;
    }
    let [acme, globex] = <[String; 2]>::try_from(ids).map_err(|_| anyhow::anyhow!("two ids"))?;
    Ok((acme, globex))
}

/// Every tenant-scoped table of the schema but the exempt ones, with how it is tied to a
/// tenant.
async fn tenant_scoped_tables(db: &plinth_marketplace::Db) -> Result<BTreeMap<String, Tie>> {
    let mut tables = BTreeMap::new();
    let direct = sqlx::query(
        "SELECT CAST(c.table_name AS TEXT) AS table_name, \
                CAST(c.column_name AS TEXT) AS column_name FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND (c.column_name = 'tenant_id' OR (c.table_name = 'tenants' AND c.column_name = 'id'))",
    )
    .fetch_all(db.pool())
    .await?;
    for row in direct {
        let table: String = row.try_get("table_name")?;
        tables.insert(table, Tie::Column(row.try_get("column_name")?));
    }
    let children = sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS child, CAST(a.attname AS TEXT) AS fk, \
                CAST(p.relname AS TEXT) AS parent, CAST(pa.attname AS TEXT) AS key \
         FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] \
         JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1] \
         WHERE k.contype = 'f' AND array_length(k.conkey, 1) = 1 \
           AND n.nspname = current_schema() AND c.oid <> p.oid",
    )
    .fetch_all(db.pool())
    .await?;
    for row in children {
        let (child, parent): (String, String) = (row.try_get("child")?, row.try_get("parent")?);
        if tables.contains_key(&child) {
            continue;
        }
        if let Some(Tie::Column(column)) = tables.get(&parent).cloned() {
            tables.insert(
                child,
                Tie::Parent {
                    fk: row.try_get("fk")?,
                    parent,
                    key: row.try_get("key")?,
                    column,
                },
            );
        }
    }
    tables.retain(|table, _| {
        !EXEMPT.contains(&table.as_str()) && !HOST_TABLES.contains(&table.as_str())
    });
    Ok(tables)
}

/// How many rows of `table` belong to `tenant`, counted across tenants.
async fn owned_count(
    db: &plinth_marketplace::Db,
    table: &str,
    tie: &Tie,
    tenant: String,
) -> Result<i64> {
    let sql = match tie {
        Tie::Column(column) => format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = $1"),
        Tie::Parent {
            fk,
            parent,
            key,
            column,
        } => format!(
            "SELECT COUNT(*) FROM \"{table}\" child WHERE EXISTS (SELECT 1 FROM \"{parent}\" p \
             WHERE p.\"{key}\" = child.\"{fk}\" AND p.\"{column}\" = $1)"
        ),
    };
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(tenant)
        .fetch_one(db.pool())
        .await?)
}
