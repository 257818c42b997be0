//! Backups through the real `plinth` binary (issue 27, item 3).
//!
//! [`a_backup_taken_mid_life_restores_into_a_working_marketplace`], on SQLite and PostgreSQL:
//! a marketplace with publishers, reviewed versions, installs with kv data, a paid plugin
//! charged and paid out (ledger postings, a payout file) and the audit chain all of that
//! wrote is backed up while it runs (`plinth admin backup`; on PostgreSQL with `pg_dump` as
//! well); it goes on changing, stops, and its storage is lost. Restored into a fresh data dir
//! (and, on PostgreSQL, the dump into the emptied database), `plinth audit verify` and `plinth
//! ledger verify` pass, the keys are the same, `plinth serve` starts on it and runs events
//! from the state of the backup, and the packages it serves still verify against the
//! developer's key and the restored marketplace key.
//!
//! The others feed `plinth admin restore` and `backup` what they must refuse: a data dir that
//! is not empty, an altered or foreign file, an entry the manifest does not list (a path out of
//! the data dir among them), a newer format, an existing `--out`, a data dir without a
//! database, a SQLite `--database-url`. Each fails with its reason and leaves nothing behind.

mod common {
    pub mod api;
    pub mod cli;
    pub mod server;
}

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::{COUNTER, HELLO};
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::{Api, paid_package, signed_package};
use common::cli::{database_args, plinth, plinth_ok, verify_audit_and_ledger};
use common::server::{PlinthServer, bootstrap};

const WEBHOOK_SECRET: &str = "whsec_backup";
const COUNTER_ID: &str = "examples.counter";
const PAID: &str = "examples.paid-hello";

/// The serve flags of both lives of the marketplace.
const SERVE_ARGS: [&str; 4] = [
    "--billing-webhook-secret",
    WEBHOOK_SECRET,
    "--payout-hold-days",
    "0",
];

/// Sends one `count` event to `shop`; the counter's answer.
async fn count(api: &Api, key: &str) -> Result<u64> {
    let answer = api
        .ok(
            Method::POST,
            "/v1/tenants/shop/events",
            Some(key),
            Some(json!({"topic": "count", "payload": null})),
        )
        .await?;
    let result = answer["results"]
        .as_array()
        .and_then(|results| results.iter().find(|r| r["plugin"] == COUNTER_ID))
        .with_context(|| format!("no counter result: {answer}"))?;
    ensure!(result["error"].is_null(), "{result}");
    result["output"]["count"]
        .as_u64()
        .with_context(|| format!("no count: {result}"))
}

/// The journey up to the backup: an operator, a reviewer, publisher `examples` with its key,
/// counter and a paid hello reviewed and installed in `shop`, three counts, a charge paid out.
/// Returns (the shop's API key, the developer's public key file).
async fn live_a_while(api: &Api, data_dir: &Path, url: Option<&str>) -> Result<(String, PathBuf)> {
    let (ok, operator, stderr) = bootstrap(data_dir, url)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    api.tenant(&operator, "shop", Some("pro")).await?;
    let (reviewer_id, reviewer) = api.account("reviewer@plinth.example").await?;
    api.ok(
        Method::PUT,
        &format!("/v1/accounts/{reviewer_id}/roles"),
        Some(&operator),
        Some(json!({"roles": ["reviewer"]})),
    )
    .await?;
    let (developer, key) = api.developer("dev@examples.example", "examples").await?;
    let work = data_dir.parent().context("work dir")?;
    let developer_key = work.join("examples.pub");
    std::fs::write(&developer_key, format!("{}\n", key.public_key()))?;
    let counter = signed_package(work, &COUNTER, &key)?;
    api.publish_and_approve(&counter, &developer, &reviewer)
        .await?;
    let paid = paid_package(work, &HELLO, (PAID, "Paid hello"), 5000, Some(&key))?;
    api.publish_and_approve(&paid, &developer, &reviewer)
        .await?;
    for plugin in [COUNTER_ID, PAID] {
        let installed = api
            .install(&operator, "shop", plugin, None, json!({}))
            .await?;
        ensure!(installed["status"] == "active", "{installed}");
    }
    let shop_key = api.api_key(&operator, "shop").await?;
    for expected in 1..=3 {
        ensure!(count(api, &shop_key).await? == expected);
    }
    let subscription = api.subscription(&operator, "shop", PAID).await?;
    api.invoice_paid(WEBHOOK_SECRET, &subscription, "in_b_1", 5000, "ch_b_1")
        .await?;
    let run = api
        .ok(
            Method::POST,
            "/v1/payouts/runs",
            Some(&operator),
            Some(json!({"run_id": "backup-1"})),
        )
        .await?;
    ensure!(
        run["payouts"].as_array().is_some_and(|p| p.len() == 1),
        "{run}"
    );
    ensure!(
        std::fs::read_dir(data_dir.join("payouts"))?.count() >= 1,
        "no payout file"
    );
    Ok((shop_key, developer_key))
}

/// Runs `program args…`; fails with its output unless it exits 0.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program).args(args).output()?;
    ensure!(
        output.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Drops the test's PostgreSQL schema: the database is lost.
async fn lose_schema(schema: &str) -> Result<()> {
    use sqlx::{Connection as _, Executor as _};
    let mut admin =
        sqlx::PgConnection::connect(&plinth_test_support::postgres::server_url()).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .await?;
    admin.close().await?;
    Ok(())
}

async fn backup_and_restore(database: Option<TestDatabase>) -> Result<()> {
    let work = tempfile::tempdir()?;
    let work = work.path();
    let data_dir = work.join("data");
    let url = database.as_ref().map(TestDatabase::url);
    let schema = match &database {
        Some(TestDatabase::Postgres(schema)) => Some(schema.name().to_owned()),
        _ => None,
    };
    let server = PlinthServer::start_with_args(&data_dir, url.as_deref(), &SERVE_ARGS)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (shop_key, developer_key) = live_a_while(&api, &data_dir, url.as_deref()).await?;

    // The backup, taken while the server runs.
    let backup = work.join("plinth-backup.tar.gz");
    let backup_arg = backup.to_str().context("path")?;
    let dump = work.join("plinth.dump");
    if let Some(schema) = &schema {
        let server_url = plinth_test_support::postgres::server_url();
        let dump_arg = format!("--file={}", dump.display());
        run(
            "pg_dump",
            &[
                "--format=custom",
                &format!("--schema={schema}"),
                &dump_arg,
                &server_url,
            ],
        )?;
    }
    let mut args = vec!["admin", "backup", "--out", backup_arg, "--json"];
    let database = database_args(&data_dir, url.as_deref());
    args.extend(database.iter().map(String::as_str));
    let manifest: Value = serde_json::from_str(&plinth_ok(work, &args)?)?;
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .context("files")?
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    let databases: &[&str] = if schema.is_some() {
        &[]
    } else {
        &["marketplace.db", "kv.db"]
    };
    for expected in databases.iter().chain(&[
        "marketplace.key",
        "marketplace.key.pub",
        "secrets.key",
        "audit.key",
    ]) {
        ensure!(paths.contains(expected), "{expected} not in {manifest}");
    }
    ensure!(
        paths.iter().any(|p| p.starts_with("payouts/")),
        "{manifest}"
    );
    ensure!(
        manifest["compiled"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{manifest}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup)?.permissions().mode();
        ensure!(mode & 0o777 == 0o600, "the backup is mode {mode:o}");
    }

    // Life goes on after the backup: a fourth count the backup does not hold.
    ensure!(count(&api, &shop_key).await? == 4);
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");

    // The storage is lost; the backup comes back into a fresh data dir.
    if let Some(schema) = &schema {
        lose_schema(schema).await?;
        // Restored as the role the marketplace connects as, which then owns it.
        let server_url = plinth_test_support::postgres::app_server_url();
        let into = format!("--dbname={server_url}");
        run(
            "pg_restore",
            &["--no-owner", &into, dump.to_str().context("path")?],
        )?;
    }
    let restored = work.join("restored");
    let restored_arg = restored.to_str().context("path")?;
    let said = plinth_ok(
        work,
        &["admin", "restore", backup_arg, "--data-dir", restored_arg],
    )?;
    ensure!(said.starts_with("restored the backup of "), "{said}");
    for key in [
        "marketplace.key",
        "marketplace.key.pub",
        "secrets.key",
        "audit.key",
    ] {
        ensure!(
            std::fs::read(restored.join(key))? == std::fs::read(data_dir.join(key))?,
            "{key} differs after the restore"
        );
    }
    verify_audit_and_ledger(&restored, url.as_deref())?;

    // The restored marketplace serves: events run from the backup's state ...
    let server = PlinthServer::start_with_args(&restored, url.as_deref(), &SERVE_ARGS)?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    ensure!(
        count(&api, &shop_key).await? == 4,
        "the restored counter does not continue from the backup's 3"
    );
    // ... and what it serves still verifies against the developer's and its own key.
    let package = api
        .client
        .get(format!(
            "{}/v1/plugins/{COUNTER_ID}/versions/0.1.0/package",
            api.base
        ))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let downloaded = work.join("downloaded.plinth");
    std::fs::write(&downloaded, &package)?;
    let verified = plinth_ok(
        work,
        &[
            "plugin",
            "verify",
            downloaded.to_str().context("path")?,
            "--public-key",
            developer_key.to_str().context("path")?,
            "--marketplace-key",
            restored
                .join("marketplace.key.pub")
                .to_str()
                .context("path")?,
        ],
    )?;
    ensure!(
        verified.starts_with("OK examples.counter 0.1.0"),
        "{verified}"
    );
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    // The chain and the ledger stay sound with what the restored server added.
    verify_audit_and_ledger(&restored, url.as_deref())
}

#[tokio::test]
async fn a_backup_taken_mid_life_restores_into_a_working_marketplace_on_sqlite() -> Result<()> {
    backup_and_restore(None).await
}

#[tokio::test]
async fn a_backup_taken_mid_life_restores_into_a_working_marketplace_on_postgres() -> Result<()> {
    backup_and_restore(Some(TestDatabase::postgres("backup_restore").await?)).await
}

/// `plinth admin backup --out OUT --data-dir DATA_DIR` run in `cwd`.
fn admin_backup(cwd: &Path, out: &Path, data_dir: &Path) -> Result<std::process::Output> {
    plinth(
        cwd,
        &[
            "admin",
            "backup",
            "--out",
            out.to_str().context("path")?,
            "--data-dir",
            data_dir.to_str().context("path")?,
        ],
    )
}

/// A small SQLite marketplace (bootstrapped: a database and an audit key) and its backup.
struct Small {
    work: tempfile::TempDir,
    backup: PathBuf,
}

impl Small {
    fn new() -> Result<Small> {
        let work = tempfile::tempdir()?;
        let data_dir = work.path().join("data");
        let (ok, _, stderr) = bootstrap(&data_dir, None)?;
        ensure!(ok, "bootstrap failed: {stderr}");
        let backup = work.path().join("small.tar.gz");
        let made = admin_backup(work.path(), &backup, &data_dir)?;
        ensure!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Ok(Small { work, backup })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `plinth admin restore FILE --data-dir TARGET`; (exit ok, stderr).
    fn restore(&self, file: &Path, target: &Path) -> Result<(bool, String)> {
        let output = plinth(
            self.work.path(),
            &[
                "admin",
                "restore",
                file.to_str().context("path")?,
                "--data-dir",
                target.to_str().context("path")?,
            ],
        )?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// Nothing but the work dir's own files: no staging directory left behind.
    fn nothing_left_over(&self) -> Result<()> {
        for entry in std::fs::read_dir(self.work.path())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            ensure!(!name.starts_with(".plinth-"), "{name} was left behind");
        }
        Ok(())
    }
}

/// An archive's entries, in order: (path, content).
type Entries = Vec<(String, Vec<u8>)>;

/// The entries of a backup.
fn entries(file: &Path) -> Result<Entries> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(file)?));
    let mut found = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        found.push((path, content));
    }
    Ok(found)
}

/// Writes `entries` as a gzip'd tar to `file`, names as given (even `..`).
fn write_entries(file: &Path, entries: &[(String, Vec<u8>)]) -> Result<()> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(file)?,
        flate2::Compression::default(),
    ));
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        // Written into the header as is, so that a hostile name reaches the reader.
        let name = header.as_old_mut().name.as_mut_slice();
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, content.as_slice())?;
    }
    builder.into_inner()?.finish()?.flush()?;
    Ok(())
}

#[test]
fn restore_refuses_a_data_dir_that_is_not_empty_and_leaves_it_as_it_was() -> Result<()> {
    let small = Small::new()?;
    let target = small.path("occupied");
    std::fs::create_dir_all(&target)?;
    std::fs::write(target.join("notes.txt"), "mine")?;
    let (ok, stderr) = small.restore(&small.backup, &target)?;
    ensure!(!ok, "restored over a non-empty data dir");
    ensure!(
        stderr.contains("is not an empty directory: restore only into a new or empty data dir"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&target)?.collect();
    ensure!(left.len() == 1 && std::fs::read(target.join("notes.txt"))? == b"mine");
    // An empty directory is fine, and so is one that does not exist yet.
    std::fs::create_dir_all(small.path("empty"))?;
    ensure!(small.restore(&small.backup, &small.path("empty"))?.0);
    ensure!(small.restore(&small.backup, &small.path("new/nested"))?.0);
    ensure!(small.path("new/nested/marketplace.db").is_file());
    small.nothing_left_over()
}

#[test]
fn restore_refuses_altered_foreign_and_newer_backups_and_writes_nothing() -> Result<()> {
    let small = Small::new()?;
    let original = entries(&small.backup)?;
    ensure!(original[0].0 == "backup.json", "{:?}", original[0].0);
    let target = small.path("target");
    let altered = small.path("altered.tar.gz");
    let cases: Vec<(&str, Entries, &str)> = vec![
        (
            "a changed byte in the audit key",
            original
                .iter()
                .map(|(path, content)| {
                    let mut content = content.clone();
                    if path == "audit.key" {
                        content[0] ^= 1;
                    }
                    (path.clone(), content)
                })
                .collect(),
            "the SHA-256 of \"audit.key\" differs from the manifest's",
        ),
        (
            "an entry the manifest does not list, outside the data dir",
            original
                .iter()
                .cloned()
                .chain([("../escaped.txt".to_owned(), b"out".to_vec())])
                .collect(),
            "entry \"../escaped.txt\" is not in the manifest",
        ),
        (
            "a listed entry missing",
            original
                .iter()
                .filter(|(path, _)| path != "audit.key")
                .cloned()
                .collect(),
            "entry \"audit.key\" is in the manifest but not in the archive",
        ),
        (
            "no manifest first",
            original[1..].to_vec(),
            "backup.json must be its first entry",
        ),
        (
            "a newer format",
            {
                let mut manifest: Value = serde_json::from_slice(&original[0].1)?;
                manifest["format"] = json!(99);
                let mut newer = original.clone();
                newer[0].1 = serde_json::to_vec(&manifest)?;
                newer
            },
            "backup format 99 is newer than this plinth reads (1)",
        ),
    ];
    for (case, entries, reason) in cases {
        write_entries(&altered, &entries)?;
        let (ok, stderr) = small.restore(&altered, &target)?;
        ensure!(!ok, "{case}: restored");
        ensure!(stderr.contains(reason), "{case}: {stderr}");
        ensure!(!target.exists(), "{case}: the target was written");
        ensure!(!small.path("escaped.txt").exists(), "{case}: escaped");
        small.nothing_left_over()?;
    }
    // Not a backup at all.
    let package = small.path("not-a-backup.tar.gz");
    std::fs::write(&package, b"plainly not gzip")?;
    let (ok, stderr) = small.restore(&package, &target)?;
    ensure!(
        !ok && stderr.contains("not a valid Plinth backup"),
        "{stderr}"
    );
    ensure!(!target.exists());
    small.nothing_left_over()
}

#[test]
fn backup_never_replaces_a_file_and_needs_a_database_of_its_own() -> Result<()> {
    let small = Small::new()?;
    let before = std::fs::read(&small.backup)?;
    let data_dir = small.path("data");
    let again = admin_backup(small.work.path(), &small.backup, &data_dir)?;
    let stderr = String::from_utf8_lossy(&again.stderr);
    ensure!(!again.status.success(), "a backup replaced a file");
    ensure!(
        stderr.contains("already exists: a backup never replaces a file"),
        "{stderr}"
    );
    ensure!(std::fs::read(&small.backup)? == before);
    let empty = small.path("no-data");
    std::fs::create_dir_all(&empty)?;
    let out = small.path("nothing.tar.gz");
    let none = admin_backup(small.work.path(), &out, &empty)?;
    let stderr = String::from_utf8_lossy(&none.stderr);
    ensure!(
        !none.status.success() && stderr.contains("no marketplace database at"),
        "{stderr}"
    );
    ensure!(!out.exists());
    // A SQLite URL is not a database to back up apart from its data dir.
    let by_url = plinth(
        small.work.path(),
        &[
            "admin",
            "backup",
            "--out",
            out.to_str().context("path")?,
            "--database-url",
            "sqlite://elsewhere.db?mode=rwc",
        ],
    )?;
    let stderr = String::from_utf8_lossy(&by_url.stderr);
    ensure!(
        !by_url.status.success() && stderr.contains("a backup takes a PostgreSQL --database-url"),
        "{stderr}"
    );
    ensure!(!out.exists());
    small.nothing_left_over()
}
