//! Payouts: pay every publisher whose available balance reaches the threshold, once per run.
//!
//! A run ([`run`]) is one database transaction under the ledger lock, then its files:
//!
//! 1. the run id is recorded; a run whose payouts were made before makes none now;
//! 2. charges whose hold has ended are released ([`charges::release_due_in`]);
//! 3. every publisher and currency whose available balance reaches the threshold is paid
//!    ([`pay_in`]): the payout row (unique per run, publisher and currency), the ledger
//!    transaction moving the available balance to *payouts in transit* (idempotency key
//!    `payout:<run>:<publisher>:<currency>`), the audit entry and the publisher's notification;
//!    the run is marked paid and the transaction commits — all of it or nothing;
//! 4. [`write_files`] writes `<run id>.csv` and `<run id>.json` from the stored payouts (so a
//!    rewrite is identical), each to a temporary file of its own that is renamed into place;
//! 5. the run is marked finished.
//!
//! Requests for one run at once queue on the ledger lock: the first makes the payouts, the
//! others find them made, and every request writes the same files and answers the same report.
//! A run interrupted before its commit made nothing; after it, running it again writes the
//! files. [`start_run`] and [`pay`] are the steps one at a time.
//!
//! [`mark`] settles a payout: paid moves it from in transit to processor clearing (the money
//! left), failed moves it back to the publisher's available balance.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::LedgerSettings;
use super::accounts::{self, AccountKey, AccountKind};
use super::charges;
use super::lock::{self, one_row};
use super::posting::{self, NewTransaction, Posting};
use crate::audit::{self, Actor};
use crate::clock::{now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::id::new_id;

/// A payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payout {
    /// The payout's id.
    pub id: String,
    /// The run that made it.
    pub run_id: String,
    /// The publisher's id.
    pub publisher_id: String,
    /// The publisher's namespace.
    pub namespace: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// The reference the processor is given.
    pub reference: String,
    /// `in_transit`, `paid` or `failed`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// Every payout of the run.
    pub payouts: Vec<Payout>,
    /// The CSV payout file.
    pub file_csv: String,
    /// The JSON payout file.
    pub file_json: String,
}

const COLUMNS: &str = "p.id, p.run_id, p.publisher_id, pub.namespace, p.currency, p.amount, \
    p.reference, p.status, p.created_at";

fn from_row(row: &AnyRow) -> Result<Payout> {
    Ok(Payout {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        publisher_id: row.try_get("publisher_id")?,
        namespace: row.try_get("namespace")?,
        currency: row.try_get("currency")?,
        amount: row.try_get("amount")?,
        reference: row.try_get("reference")?,
        status: row.try_get("status")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Checks a run id: 1 to 64 of `A-Z a-z 0-9 - _` (it names the payout files).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_body`) naming `run_id`.
pub fn check_run_id(run_id: &str) -> Result<()> {
    if (1..=64).contains(&run_id.len())
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(Error::bad_request(
            "invalid_body",
            "field `run_id` must be 1 to 64 letters, digits, `-` or `_`",
        ))
    }
}

/// Records run `run_id` in `tx`; answers whether its payouts were made before.
async fn record_run(tx: &mut Tx, run_id: &str) -> Result<bool> {
    sqlx::query(
        "INSERT INTO payout_runs (id, started_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(run_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    let paid: Option<i64> = sqlx::query("SELECT paid_at FROM payout_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("paid_at")?;
    Ok(paid.is_some())
}

/// Records run `run_id`; answers whether its payouts were made before.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn start_run(db: &Db, run_id: &str) -> Result<bool> {
    let mut tx = lock::begin(db).await?;
    let paid = record_run(&mut tx, run_id).await?;
    tx.commit().await?;
    Ok(paid)
}

const ELIGIBLE: &str = "SELECT owner_id, currency FROM ledger_accounts WHERE kind = $1 \
    AND balance <= $2 ORDER BY owner_id, currency";

fn eligible_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(String, String)>> {
    rows.iter()
        .map(|row| Ok((row.try_get("owner_id")?, row.try_get("currency")?)))
        .collect()
}

/// Publishers and currencies whose available balance is at least `threshold`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn eligible(db: &Db, threshold: i64) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(ELIGIBLE)
        .bind(AccountKind::PublisherAvailable.as_str())
        .bind(-threshold.max(1))
        .fetch_all(db.pool())
        .await?;
    eligible_rows(&rows)
}

/// Pays `publisher_id` its available `currency` balance in run `run_id`, if it reaches the
/// threshold and this run has not paid it yet; answers the run's payout to it, if any.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn pay(
    db: &Db,
    settings: &LedgerSettings,
    run_id: &str,
    publisher_id: &str,
    currency: &str,
    actor: &Actor,
) -> Result<Option<Payout>> {
    let mut tx = lock::begin(db).await?;
    let id = pay_in(&mut tx, settings, run_id, publisher_id, currency, actor).await?;
    tx.commit().await?;
    match id {
        Some(id) => by_id(db, &id).await,
        None => Ok(None),
    }
}

/// As [`pay`], in `tx` (which holds the ledger lock); answers the payout's id.
///
/// # Errors
///
/// [`Error::Internal`] without the ledger lock; [`Error::Database`].
pub async fn pay_in(
    tx: &mut Tx,
    settings: &LedgerSettings,
    run_id: &str,
    publisher_id: &str,
    currency: &str,
    actor: &Actor,
) -> Result<Option<String>> {
    lock::held(tx)?;
    let existing = sqlx::query(
        "SELECT id FROM payouts WHERE run_id = $1 AND publisher_id = $2 AND currency = $3",
    )
    .bind(run_id)
    .bind(publisher_id)
    .bind(currency)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        return Ok(Some(row.try_get("id")?));
    }
    let available = AccountKey::owned(AccountKind::PublisherAvailable, publisher_id, currency);
    let owed = -accounts::balance(tx, &available).await?;
    if owed < settings.payout_threshold.max(1) {
        return Ok(None);
    }
    let namespace: String = sqlx::query("SELECT namespace FROM publishers WHERE id = $1")
        .bind(publisher_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::Internal(format!("publisher {publisher_id} vanished")))?
        .try_get("namespace")?;
    let reference = format!("plinth-{run_id}-{namespace}-{currency}");
    let posted = posting::post(
        tx,
        NewTransaction {
            idempotency_key: format!("payout:{run_id}:{publisher_id}:{currency}"),
            kind: "payout",
            publisher_id: Some(publisher_id.to_owned()),
            memo: format!("payout {reference}"),
            postings: vec![
                Posting::debit(available, owed),
                Posting::credit(
                    AccountKey::owned(AccountKind::PayoutsInTransit, publisher_id, currency),
                    owed,
                ),
            ],
            ..NewTransaction::default()
        },
    )
    .await?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO payouts (id, run_id, publisher_id, currency, amount, reference, status, \
         transaction_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'in_transit', $7, $8)",
    )
    .bind(&id)
    .bind(run_id)
    .bind(publisher_id)
    .bind(currency)
    .bind(owed)
    .bind(&reference)
    .bind(posted.id())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        audit::Entry {
            actor: actor.clone(),
            action: "payout.created",
            tenant_id: None,
            subject: format!("publisher:{namespace}"),
            details: json!({"payout": id, "run": run_id, "amount": owed, "currency": currency,
                            "reference": reference}),
        },
    )
    .await?;
    crate::notifications::notify(
        tx,
        "publisher",
        publisher_id,
        "payout_sent",
        &format!(
            "A payout of {} was sent (reference {reference}).",
            super::money::format(owed, currency)
        ),
        json!({"payout": id, "amount": owed, "currency": currency, "reference": reference}),
    )
    .await?;
    Ok(Some(id))
}

/// The payout `id`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Payout>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payouts p JOIN publishers pub ON pub.id = p.publisher_id WHERE p.id = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The payouts of run `run_id`, by publisher namespace and currency.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn of_run(db: &Db, run_id: &str) -> Result<Vec<Payout>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payouts p JOIN publishers pub ON pub.id = p.publisher_id \
         WHERE p.run_id = $1 ORDER BY pub.namespace, p.currency"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Writes `bytes` to `path` through a temporary file of its own in the same directory,
/// flushed to disk and then renamed over `path`: a reader sees the old file or the new one,
/// never a part, and writers at once never share a temporary file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::Internal(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(fail)?;
    std::io::Write::write_all(&mut file, bytes).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Writes the payout files of run `run_id` (CSV with a header line, and JSON) from its stored
/// payouts; answers their paths.
///
/// # Errors
///
/// [`Error::Internal`] if the directory or files cannot be written; [`Error::Database`].
pub async fn write_files(
    db: &Db,
    settings: &LedgerSettings,
    run_id: &str,
) -> Result<(PathBuf, PathBuf)> {
    check_run_id(run_id)?;
    let payouts = of_run(db, run_id).await?;
    std::fs::create_dir_all(&settings.payout_dir).map_err(|e| {
        Error::Internal(format!(
            "cannot create the payout directory {}: {e}",
            settings.payout_dir.display()
        ))
    })?;
    let mut csv = String::from("payout_id,publisher,amount,currency,reference\n");
    for payout in &payouts {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            payout.id, payout.namespace, payout.amount, payout.currency, payout.reference
        ));
    }
    let json = serde_json::to_vec_pretty(&json!({
        "run_id": run_id,
        "payouts": payouts.iter().map(|p| json!({
            "payout_id": p.id,
            "publisher": p.namespace,
            "amount": p.amount,
            "currency": p.currency,
            "reference": p.reference,
        })).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::Internal(format!("payout file: {e}")))?;
    let csv_path = settings.payout_dir.join(format!("{run_id}.csv"));
    let json_path = settings.payout_dir.join(format!("{run_id}.json"));
    write_atomically(&csv_path, csv.as_bytes())?;
    write_atomically(&json_path, &json)?;
    Ok((csv_path, json_path))
}

/// Runs payout run `run_id` at `now` (see the module docs); a run whose payouts were made
/// before answers them without making any more.
///
/// # Errors
///
/// [`Error::BadRequest`] for a bad run id; [`Error::Internal`] if the files cannot be
/// written; [`Error::Database`].
pub async fn run(
    db: &Db,
    settings: &LedgerSettings,
    run_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<RunReport> {
    check_run_id(run_id)?;
    let mut tx = lock::begin(db).await?;
    if !record_run(&mut tx, run_id).await? {
        charges::release_due_in(&mut tx, now).await?;
        let rows = sqlx::query(ELIGIBLE)
            .bind(AccountKind::PublisherAvailable.as_str())
            .bind(-settings.payout_threshold.max(1))
            .fetch_all(&mut *tx)
            .await?;
        for (publisher_id, currency) in eligible_rows(&rows)? {
            pay_in(&mut tx, settings, run_id, &publisher_id, &currency, actor).await?;
        }
        let paid =
            sqlx::query("UPDATE payout_runs SET paid_at = $1 WHERE id = $2 AND paid_at IS NULL")
                .bind(now_ms())
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        one_row(&paid, &format!("payout run {run_id}"))?;
    }
    tx.commit().await?;
    let (csv, json) = write_files(db, settings, run_id).await?;
    sqlx::query(
        "UPDATE payout_runs SET finished_at = $1, file_csv = $2, file_json = $3 WHERE id = $4 \
         AND finished_at IS NULL",
    )
    .bind(now_ms())
    .bind(csv.display().to_string())
    .bind(json.display().to_string())
    .bind(run_id)
    .execute(db.pool())
    .await?;
    Ok(RunReport {
        run_id: run_id.to_owned(),
        payouts: of_run(db, run_id).await?,
        file_csv: csv.display().to_string(),
        file_json: json.display().to_string(),
    })
}

/// How a payout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The processor paid it out.
    Paid,
    /// The processor could not; the amount returns to the publisher's available balance.
    Failed,
}

impl Settlement {
    fn status(self) -> &'static str {
        match self {
            Settlement::Paid => "paid",
            Settlement::Failed => "failed",
        }
    }
}

/// Marks payout `id` paid or failed, posting the matching transaction; marking it the same
/// way again changes nothing.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown payout; [`Error::Conflict`] (`payout_settled`) if it was
/// settled the other way; [`Error::Database`].
pub async fn mark(db: &Db, id: &str, settlement: Settlement, actor: &Actor) -> Result<Payout> {
    let mut tx = lock::begin(db).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM payouts p JOIN publishers pub ON pub.id = p.publisher_id WHERE p.id = $1"
    );
    let payout = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("payout {id}")))?;
    if payout.status == settlement.status() {
        tx.commit().await?;
        return Ok(payout);
    }
    if payout.status != "in_transit" {
        return Err(Error::conflict(
            "payout_settled",
            format!("payout {id} is {} already", payout.status),
        ));
    }
    let cur = payout.currency.as_str();
    let to = match settlement {
        Settlement::Paid => AccountKey::platform(AccountKind::ProcessorClearing, cur),
        Settlement::Failed => {
            AccountKey::owned(AccountKind::PublisherAvailable, &payout.publisher_id, cur)
        }
    };
    let original = posting::find(
        &mut tx,
        &format!("payout:{}:{}:{}", payout.run_id, payout.publisher_id, cur),
    )
    .await?;
    posting::post(
        &mut tx,
        NewTransaction {
            idempotency_key: format!("payout:{id}:{}", settlement.status()),
            kind: if settlement == Settlement::Paid {
                "payout_paid"
            } else {
                "payout_failed"
            },
            publisher_id: Some(payout.publisher_id.clone()),
            reverses: if settlement == Settlement::Failed {
                original
            } else {
                None
            },
            memo: format!("payout {} {}", payout.reference, settlement.status()),
            postings: vec![
                Posting::debit(
                    AccountKey::owned(AccountKind::PayoutsInTransit, &payout.publisher_id, cur),
                    payout.amount,
                ),
                Posting::credit(to, payout.amount),
            ],
            ..NewTransaction::default()
        },
    )
    .await?;
    let settled = sqlx::query(
        "UPDATE payouts SET status = $1, settled_at = $2 WHERE id = $3 AND status = 'in_transit'",
    )
    .bind(settlement.status())
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    one_row(&settled, &format!("settling payout {id}"))?;
    audit::record(
        &mut tx,
        audit::Entry {
            actor: actor.clone(),
            action: if settlement == Settlement::Paid {
                "payout.paid"
            } else {
                "payout.failed"
            },
            tenant_id: None,
            subject: format!("publisher:{}", payout.namespace),
            details: json!({"payout": id, "amount": payout.amount, "currency": cur,
                            "reference": payout.reference}),
        },
    )
    .await?;
    if settlement == Settlement::Failed {
        crate::notifications::notify(
            &mut tx,
            "publisher",
            &payout.publisher_id,
            "payout_failed",
            &format!(
                "The payout of {} (reference {}) failed; the amount is available again.",
                super::money::format(payout.amount, cur),
                payout.reference
            ),
            json!({"payout": id, "amount": payout.amount, "currency": cur}),
        )
        .await?;
    }
    tx.commit().await?;
    by_id(db, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("payout {id} vanished")))
}
