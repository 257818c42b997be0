//! Charges: what a tenant paid (or was billed) for a plugin, its split, and the release of the
//! publisher's part after the hold.
//!
//! A paid charge ([`record`] with `paid`) posts, in one transaction: clearing debited the gross
//! less the fee, processor fees debited the fee, platform revenue credited the platform's part
//! (plus the fee the publisher bears), the publisher's *held* account credited the publisher's
//! part (less that fee). A billed usage charge (not yet paid) debits the tenant's receivable
//! instead and takes no fee; [`settle`] later moves the receivable to clearing and takes the
//! fee. The publisher's part is released to *available* by [`release_due`] once
//! `available_at` (paid + hold) has passed and no dispute is open.
//!
//! Every change here happens under the ledger lock ([`super::lock`]) and re-reads the charge
//! after taking it; each records an audit entry.

use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::LedgerSettings;
use super::accounts::{AccountKey, AccountKind};
use super::lock::{self, one_row};
use super::posting::{self, NewTransaction, Posting};
use crate::audit::{self, Actor};
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::id::new_id;

/// A charge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The charge's id.
    pub id: String,
    /// The processor's reference (charge or invoice id), or `usage:<tenant>:<plugin>:<month>`.
    pub reference: String,
    /// The processor's charge id (`ch_…`), once paid, if it gave one.
    pub processor_charge: Option<String>,
    /// The processor's invoice id (`in_…`), once paid.
    pub processor_invoice: Option<String>,
    /// `subscription` or `usage`.
    pub source: String,
    /// The subscription it was paid for, if one.
    pub subscription_id: Option<String>,
    /// The tenant.
    pub tenant_id: String,
    /// The plugin.
    pub plugin_id: String,
    /// The plugin's publisher.
    pub publisher_id: String,
    /// ISO 4217.
    pub currency: String,
    /// The whole charge, minor units.
    pub gross: i64,
    /// The platform's part of the gross.
    pub platform_share: i64,
    /// The publisher's part of the gross (`gross - platform_share`).
    pub publisher_share: i64,
    /// The processor's fee (0 until paid).
    pub fee: i64,
    /// The part of the fee the publisher bears.
    pub publisher_fee: i64,
    /// The split policy version it was split by.
    pub policy_version: i64,
    /// The publisher's lifetime gross in this currency before this charge: where in the
    /// policy's tiers it was split.
    pub lifetime_before: i64,
    /// Refunded so far (the processor's cumulative `amount_refunded`), minor units.
    pub refunded: i64,
    /// Taken back by lost disputes so far, minor units.
    pub charged_back: i64,
    /// The platform's part of everything reversed (`refunded + charged_back`).
    pub reversed_platform: i64,
    /// `billed` (usage, unpaid) or `paid`.
    pub status: String,
    /// When it was paid (Unix ms).
    pub paid_at: Option<i64>,
    /// When the publisher's part becomes available (Unix ms).
    pub available_at: Option<i64>,
    /// When it was released to available (Unix ms).
    pub released_at: Option<i64>,
    /// The usage month, for usage charges.
    pub period: Option<String>,
    /// When it was recorded (Unix ms).
    pub created_at: i64,
}

impl Charge {
    /// Everything reversed so far: refunds and lost disputes.
    pub fn reversed(&self) -> i64 {
        self.refunded + self.charged_back
    }

    /// What the publisher still holds of this charge: its part, less the fee it bore and the
    /// publisher's part of every refund and lost dispute (negative when a full reversal leaves
    /// the publisher owing the fee it bore).
    pub fn publisher_remaining(&self) -> i64 {
        self.publisher_share - self.publisher_fee - (self.reversed() - self.reversed_platform)
    }

    /// The kind of account where the publisher's part of this charge sits (frozen aside):
    /// available once released, held before.
    pub fn publisher_location(&self) -> AccountKind {
        if self.released_at.is_some() {
            AccountKind::PublisherAvailable
        } else {
            AccountKind::PublisherHeld
        }
    }

    /// The account where the publisher's part of this charge sits now (frozen aside).
    pub fn publisher_account(&self) -> AccountKey {
        AccountKey::owned(
            self.publisher_location(),
            &self.publisher_id,
            &self.currency,
        )
    }
}

const COLUMNS: &str = "id, reference, processor_charge, processor_invoice, source, subscription_id, tenant_id, plugin_id, \
    publisher_id, currency, gross, platform_share, publisher_share, fee, publisher_fee, \
    policy_version, lifetime_before, refunded, charged_back, reversed_platform, status, paid_at, \
    available_at, released_at, period, created_at";

fn from_row(row: &AnyRow) -> Result<Charge> {
    Ok(Charge {
        id: row.try_get("id")?,
        reference: row.try_get("reference")?,
        processor_charge: row.try_get("processor_charge")?,
        processor_invoice: row.try_get("processor_invoice")?,
        source: row.try_get("source")?,
        subscription_id: row.try_get("subscription_id")?,
        tenant_id: row.try_get("tenant_id")?,
        plugin_id: row.try_get("plugin_id")?,
        publisher_id: row.try_get("publisher_id")?,
        currency: row.try_get("currency")?,
        gross: row.try_get("gross")?,
        platform_share: row.try_get("platform_share")?,
        publisher_share: row.try_get("publisher_share")?,
        fee: row.try_get("fee")?,
        publisher_fee: row.try_get("publisher_fee")?,
        policy_version: row.try_get("policy_version")?,
        lifetime_before: row.try_get("lifetime_before")?,
        refunded: row.try_get("refunded")?,
        charged_back: row.try_get("charged_back")?,
        reversed_platform: row.try_get("reversed_platform")?,
        status: row.try_get("status")?,
        paid_at: row.try_get("paid_at")?,
        available_at: row.try_get("available_at")?,
        released_at: row.try_get("released_at")?,
        period: row.try_get("period")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The charge with `column` (`id` or `reference`) equal to `value`, read in `tx`.
async fn find_by(tx: &mut Tx, column: &'static str, value: &str) -> Result<Option<Charge>> {
    let sql = format!("SELECT {COLUMNS} FROM ledger_charges WHERE {column} = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The charge with processor reference `reference`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_reference(tx: &mut Tx, reference: &str) -> Result<Option<Charge>> {
    find_by(tx, "reference", reference).await
}

/// The charge the processor calls `processor_charge` (`ch_…`).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_processor_charge(tx: &mut Tx, processor_charge: &str) -> Result<Option<Charge>> {
    find_by(tx, "processor_charge", processor_charge).await
}

/// The charge paid by the processor's invoice `invoice` (`in_…`).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_invoice(tx: &mut Tx, invoice: &str) -> Result<Option<Charge>> {
    find_by(tx, "processor_invoice", invoice).await
}

/// The charge `id`.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_id(tx: &mut Tx, id: &str) -> Result<Option<Charge>> {
    find_by(tx, "id", id).await
}

/// Every charge, oldest first (for [`super::verify`] and reports).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn all<'e, E>(executor: E) -> Result<Vec<Charge>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM ledger_charges ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(executor)
        .await?;
    rows.iter().map(from_row).collect()
}

/// A charge to record.
#[derive(Debug, Clone)]
pub struct NewCharge<'a> {
    /// The charge's reference; unique: recording it again answers the first charge.
    pub reference: &'a str,
    /// The processor's charge id, if paid and given.
    pub processor_charge: Option<&'a str>,
    /// The processor's invoice id, if paid.
    pub processor_invoice: Option<&'a str>,
    /// `subscription` or `usage`.
    pub source: &'static str,
    /// The subscription, if one.
    pub subscription_id: Option<&'a str>,
    /// The tenant.
    pub tenant_id: &'a str,
    /// The plugin.
    pub plugin_id: &'a str,
    /// The plugin's publisher.
    pub publisher_id: &'a str,
    /// ISO 4217, uppercase.
    pub currency: &'a str,
    /// Minor units, more than 0.
    pub gross: i64,
    /// Paid now (fee taken, hold starts) or only billed (usage, to be settled).
    pub paid: bool,
    /// The usage month, for usage charges.
    pub period: Option<&'a str>,
}

/// The charge `id` as it is now, in a transaction holding the ledger lock: what every money
/// change of a charge starts from.
///
/// # Errors
///
/// [`Error::Internal`] without the ledger lock or for an unknown charge; [`Error::Database`].
pub async fn current(tx: &mut Tx, id: &str) -> Result<Charge> {
    lock::held(tx)?;
    by_id(tx, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("charge {id} vanished")))
}

/// Records a charge and posts its split, in `tx` (which holds the ledger lock); a charge with
/// the same reference recorded before is answered as it is (`false`: nothing new).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_amount`) for a gross of 0 or less; [`Error::Internal`]
/// without the ledger lock or if the split policy's version was stored with other tiers;
/// [`Error::Database`].
pub async fn record(
    tx: &mut Tx,
    settings: &LedgerSettings,
    charge: NewCharge<'_>,
    now: i64,
) -> Result<(Charge, bool)> {
    lock::held(tx)?;
    if charge.gross <= 0 {
        return Err(Error::bad_request(
            "invalid_amount",
            format!("a charge must be more than 0, not {}", charge.gross),
        ));
    }
    if let Some(existing) = by_reference(tx, charge.reference).await? {
        return Ok((existing, false));
    }
    super::policies::register(tx, &settings.split).await?;
    // The ledger lock keeps this sum true until the charge is inserted.
    let lifetime: i64 = sqlx::query(
        "SELECT COALESCE(CAST(SUM(gross) AS BIGINT), 0) AS lifetime FROM ledger_charges \
         WHERE publisher_id = $1 AND currency = $2",
    )
    .bind(charge.publisher_id)
    .bind(charge.currency)
    .fetch_one(&mut **tx)
    .await?
    .try_get("lifetime")?;
    let split = settings.split.split(lifetime, charge.gross);
    let fee = if charge.paid {
        settings.fees.fee(&split)
    } else {
        super::split::Fee {
            fee: 0,
            publisher: 0,
        }
    };
    let id = new_id();
    let (paid_at, available_at) = if charge.paid {
        (Some(now), Some(now.saturating_add(settings.hold_ms)))
    } else {
        (None, None)
    };
    sqlx::query(
        "INSERT INTO ledger_charges (id, reference, processor_charge, processor_invoice, source, \
         subscription_id, tenant_id, plugin_id, publisher_id, currency, gross, platform_share, \
         publisher_share, fee, publisher_fee, policy_version, lifetime_before, refunded, \
         charged_back, reversed_platform, status, paid_at, available_at, released_at, period, \
         created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0, 0, \
         0, $18, $19, $20, NULL, $21, $22)",
    )
    .bind(&id)
    .bind(charge.reference)
    .bind(charge.processor_charge)
    .bind(charge.processor_invoice)
    .bind(charge.source)
    .bind(charge.subscription_id)
    .bind(charge.tenant_id)
    .bind(charge.plugin_id)
    .bind(charge.publisher_id)
    .bind(charge.currency)
    .bind(split.gross)
    .bind(split.platform)
    .bind(split.publisher)
    .bind(fee.fee)
    .bind(fee.publisher)
    .bind(settings.split.version)
    .bind(lifetime)
    .bind(if charge.paid { "paid" } else { "billed" })
    .bind(paid_at)
    .bind(available_at)
    .bind(charge.period)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let cur = charge.currency;
    let source = if charge.paid {
        Posting::debit(
            AccountKey::platform(AccountKind::ProcessorClearing, cur),
            split.gross - fee.fee,
        )
    } else {
        Posting::debit(
            AccountKey::owned(AccountKind::TenantReceivable, charge.tenant_id, cur),
            split.gross,
        )
    };
    let what = if charge.paid {
        "charge"
    } else {
        "usage billed"
    };
    let posted = posting::post(
        tx,
        NewTransaction {
            idempotency_key: format!("charge:{}", charge.reference),
            kind: if charge.paid {
                "charge"
            } else {
                "usage_charge"
            },
            publisher_id: Some(charge.publisher_id.to_owned()),
            tenant_id: Some(charge.tenant_id.to_owned()),
            plugin_id: Some(charge.plugin_id.to_owned()),
            charge_id: Some(id.clone()),
            reverses: None,
            memo: format!(
                "{what} of {} {cur} for {} (policy v{}: platform {}, publisher {}, fee {})",
                split.gross,
                charge.plugin_id,
                settings.split.version,
                split.platform,
                split.publisher,
                fee.fee
            ),
            postings: vec![
                source,
                Posting::debit(
                    AccountKey::platform(AccountKind::ProcessorFees, cur),
                    fee.fee,
                ),
                Posting::credit(
                    AccountKey::platform(AccountKind::PlatformRevenue, cur),
                    split.platform + fee.publisher,
                ),
                Posting::credit(
                    AccountKey::owned(AccountKind::PublisherHeld, charge.publisher_id, cur),
                    split.publisher - fee.publisher,
                ),
            ],
        },
    )
    .await?;
    audit::record(
        tx,
        audit::Entry {
            actor: Actor::System,
            action: if charge.paid {
                "ledger.charged"
            } else {
                "ledger.usage_billed"
            },
            tenant_id: Some(charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details: json!({
                "charge": id,
                "plugin": charge.plugin_id,
                "currency": cur,
                "gross": split.gross,
                "platform": split.platform,
                "publisher": split.publisher,
                "fee": fee.fee,
                "publisher_fee": fee.publisher,
                "policy_version": settings.split.version,
                "invoice": charge.processor_invoice,
                "transaction": posted.id(),
            }),
        },
    )
    .await?;
    Ok((current(tx, &id).await?, true))
}

/// Settles billed (usage) charge `charge_id`, which the processor reports paid: receivable to
/// clearing, the fee taken, the hold started. A charge paid already is answered as it is.
///
/// # Errors
///
/// [`Error::Internal`] without the ledger lock; [`Error::Database`].
pub async fn settle(
    tx: &mut Tx,
    settings: &LedgerSettings,
    charge_id: &str,
    processor_charge: Option<&str>,
    processor_invoice: &str,
    now: i64,
) -> Result<Charge> {
    let charge = current(tx, charge_id).await?;
    if charge.status != "billed" {
        return Ok(charge);
    }
    let split = super::split::Split {
        gross: charge.gross,
        platform: charge.platform_share,
        publisher: charge.publisher_share,
    };
    let fee = settings.fees.fee(&split);
    let cur = charge.currency.as_str();
    let posted = posting::post(
        tx,
        NewTransaction {
            idempotency_key: format!("settle:{}", charge.reference),
            kind: "settlement",
            publisher_id: Some(charge.publisher_id.clone()),
            tenant_id: Some(charge.tenant_id.clone()),
            plugin_id: Some(charge.plugin_id.clone()),
            charge_id: Some(charge.id.clone()),
            reverses: None,
            memo: format!("usage charge {} paid (fee {})", charge.reference, fee.fee),
            postings: vec![
                Posting::debit(
                    AccountKey::platform(AccountKind::ProcessorClearing, cur),
                    charge.gross - fee.fee,
                ),
                Posting::debit(
                    AccountKey::platform(AccountKind::ProcessorFees, cur),
                    fee.fee,
                ),
                Posting::credit(
                    AccountKey::owned(AccountKind::TenantReceivable, &charge.tenant_id, cur),
                    charge.gross,
                ),
                Posting::debit(
                    AccountKey::owned(AccountKind::PublisherHeld, &charge.publisher_id, cur),
                    fee.publisher,
                ),
                Posting::credit(
                    AccountKey::platform(AccountKind::PlatformRevenue, cur),
                    fee.publisher,
                ),
            ],
        },
    )
    .await?;
    let settled = sqlx::query(
        "UPDATE ledger_charges SET status = 'paid', fee = $1, publisher_fee = $2, paid_at = $3, \
         available_at = $4, processor_charge = $5, processor_invoice = $6 \
         WHERE id = $7 AND status = 'billed'",
    )
    .bind(fee.fee)
    .bind(fee.publisher)
    .bind(now)
    .bind(now.saturating_add(settings.hold_ms))
    .bind(processor_charge)
    .bind(processor_invoice)
    .bind(&charge.id)
    .execute(&mut **tx)
    .await?;
    one_row(&settled, &format!("settling charge {}", charge.reference))?;
    audit::record(
        tx,
        audit::Entry {
            actor: Actor::System,
            action: "ledger.settled",
            tenant_id: Some(&charge.tenant_id),
            subject: format!("charge:{}", charge.reference),
            details: json!({
                "charge": charge.id,
                "plugin": charge.plugin_id,
                "currency": cur,
                "gross": charge.gross,
                "fee": fee.fee,
                "publisher_fee": fee.publisher,
                "invoice": processor_invoice,
                "transaction": posted.id(),
            }),
        },
    )
    .await?;
    current(tx, charge_id).await
}

/// Releases to *available* the publisher's remaining part of every paid charge whose hold
/// ended by `now` and that has no open dispute; answers how many charges were released.
/// Each release is its own transaction under the ledger lock (`release:<reference>`).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn release_due(db: &crate::Db, now: i64) -> Result<u64> {
    let mut released = 0;
    for id in due(db.pool(), now).await? {
        let mut tx = lock::begin(db).await?;
        if release(&mut tx, &id, now).await? {
            released += 1;
        }
        tx.commit().await?;
    }
    Ok(released)
}

/// As [`release_due`], in `tx` (which holds the ledger lock).
///
/// # Errors
///
/// [`Error::Internal`] without the ledger lock; [`Error::Database`].
pub async fn release_due_in(tx: &mut Tx, now: i64) -> Result<u64> {
    lock::held(tx)?;
    let mut released = 0;
    for id in due(&mut **tx, now).await? {
        if release(tx, &id, now).await? {
            released += 1;
        }
    }
    Ok(released)
}

/// The ids of the charges due for release at `now`, oldest hold first.
async fn due<'e, E>(executor: E, now: i64) -> Result<Vec<String>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT c.id FROM ledger_charges c WHERE c.status = 'paid' AND c.released_at IS NULL \
         AND c.available_at <= $1 AND NOT EXISTS (SELECT 1 FROM ledger_disputes d \
         WHERE d.charge_id = c.id AND d.status = 'open') ORDER BY c.available_at, c.id",
    )
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// Releases one charge if it is still due; answers whether it did.
async fn release(tx: &mut Tx, charge_id: &str, now: i64) -> Result<bool> {
    let charge = current(tx, charge_id).await?;
    if charge.released_at.is_some()
        || charge.status != "paid"
        || charge.available_at.is_none_or(|at| at > now)
        || super::disputes::open_for(tx, charge_id).await?.is_some()
    {
        return Ok(false);
    }
    let amount = charge.publisher_remaining();
    if amount != 0 {
        let cur = charge.currency.as_str();
        posting::post(
            tx,
            NewTransaction {
                idempotency_key: format!("release:{}", charge.reference),
                kind: "release",
                publisher_id: Some(charge.publisher_id.clone()),
                tenant_id: Some(charge.tenant_id.clone()),
                plugin_id: Some(charge.plugin_id.clone()),
                charge_id: Some(charge.id.clone()),
                reverses: None,
                memo: format!("hold ended for charge {}", charge.reference),
                postings: vec![
                    Posting::debit(
                        AccountKey::owned(AccountKind::PublisherHeld, &charge.publisher_id, cur),
                        amount,
                    ),
                    Posting::credit(
                        AccountKey::owned(
                            AccountKind::PublisherAvailable,
                            &charge.publisher_id,
                            cur,
                        ),
                        amount,
                    ),
                ],
            },
        )
        .await?;
    }
    let released = sqlx::query(
        "UPDATE ledger_charges SET released_at = $1 WHERE id = $2 AND released_at IS NULL",
    )
    .bind(now)
    .bind(charge_id)
    .execute(&mut **tx)
    .await?;
    one_row(&released, &format!("releasing charge {}", charge.reference))?;
    Ok(true)
}
