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

use sqlx::Row;
use sqlx::any::AnyRow;

use super::LedgerSettings;
use super::accounts::{self, AccountKey, AccountKind};
use super::posting::{self, NewTransaction, Posting};
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
    /// Refunded so far (cumulative), minor units.
    pub refunded: i64,
    /// The platform's part of `refunded`.
    pub refunded_platform: i64,
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
    /// What the publisher still holds of this charge: its part, less the fee it bore and the
    /// refunds taken from it.
    pub fn publisher_remaining(&self) -> i64 {
        self.publisher_share - self.publisher_fee - (self.refunded - self.refunded_platform)
    }

    /// The account where the publisher's part of this charge sits now (frozen aside).
    pub fn publisher_account(&self) -> AccountKey {
        let kind = if self.released_at.is_some() {
            AccountKind::PublisherAvailable
        } else {
            AccountKind::PublisherHeld
        };
        AccountKey::owned(kind, &self.publisher_id, &self.currency)
    }
}

const COLUMNS: &str = "id, reference, processor_charge, processor_invoice, source, subscription_id, tenant_id, plugin_id, \
    publisher_id, currency, gross, platform_share, publisher_share, fee, publisher_fee, \
    policy_version, refunded, refunded_platform, status, paid_at, available_at, released_at, \
    period, created_at";

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
        refunded: row.try_get("refunded")?,
        refunded_platform: row.try_get("refunded_platform")?,
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

/// Records a charge and posts its split, in `tx`; a charge with the same reference recorded
/// before is answered as it is (`false`: nothing new).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_amount`) for a gross of 0 or less; [`Error::Database`].
pub async fn record(
    tx: &mut Tx,
    settings: &LedgerSettings,
    charge: NewCharge<'_>,
    now: i64,
) -> Result<(Charge, bool)> {
    if charge.gross <= 0 {
        return Err(Error::bad_request(
            "invalid_amount",
            format!("a charge must be more than 0, not {}", charge.gross),
        ));
    }
    if let Some(existing) = by_reference(tx, charge.reference).await? {
        return Ok((existing, false));
    }
    let held = AccountKey::owned(
        AccountKind::PublisherHeld,
        charge.publisher_id,
        charge.currency,
    );
    // Serializes charges of one publisher and currency, so lifetime gross is read once per
    // charge.
    accounts::lock(tx, &held).await?;
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
         publisher_share, fee, publisher_fee, policy_version, refunded, refunded_platform, status, \
         paid_at, available_at, released_at, period, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, 0, $17, \
         $18, $19, NULL, $20, $21)",
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
    posting::post(
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
                "{} of {} {cur} for {} (policy v{}: platform {}, publisher {}, fee {})",
                if charge.paid {
                    "charge"
                } else {
                    "usage billed"
                },
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
                Posting::credit(held, split.publisher - fee.publisher),
            ],
        },
    )
    .await?;
    let recorded = Charge {
        id,
        reference: charge.reference.to_owned(),
        processor_charge: charge.processor_charge.map(str::to_owned),
        processor_invoice: charge.processor_invoice.map(str::to_owned),
        source: charge.source.to_owned(),
        subscription_id: charge.subscription_id.map(str::to_owned),
        tenant_id: charge.tenant_id.to_owned(),
        plugin_id: charge.plugin_id.to_owned(),
        publisher_id: charge.publisher_id.to_owned(),
        currency: charge.currency.to_owned(),
        gross: split.gross,
        platform_share: split.platform,
        publisher_share: split.publisher,
        fee: fee.fee,
        publisher_fee: fee.publisher,
        policy_version: settings.split.version,
        refunded: 0,
        refunded_platform: 0,
        status: if charge.paid { "paid" } else { "billed" }.to_owned(),
        paid_at,
        available_at,
        released_at: None,
        period: charge.period.map(str::to_owned),
        created_at: now,
    };
    Ok((recorded, true))
}

/// Settles a billed (usage) charge that the processor reports paid: receivable to clearing,
/// the fee taken, the hold started. A charge paid already is answered as it is.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn settle(
    tx: &mut Tx,
    settings: &LedgerSettings,
    charge: &Charge,
    processor_charge: Option<&str>,
    processor_invoice: &str,
    now: i64,
) -> Result<Charge> {
    if charge.status != "billed" {
        return Ok(charge.clone());
    }
    let split = super::split::Split {
        gross: charge.gross,
        platform: charge.platform_share,
        publisher: charge.publisher_share,
    };
    let fee = settings.fees.fee(&split);
    let cur = charge.currency.as_str();
    posting::post(
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
    sqlx::query(
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
    by_id(tx, &charge.id)
        .await?
        .ok_or_else(|| Error::Internal(format!("charge {} vanished", charge.id)))
}

/// Releases to *available* the publisher's remaining part of every paid charge whose hold
/// ended by `now` and that has no open dispute; answers how many charges were released.
/// Each release is its own idempotent transaction (`release:<reference>`).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn release_due(db: &crate::Db, now: i64) -> Result<u64> {
    let due: Vec<String> = sqlx::query(
        "SELECT c.id FROM ledger_charges c WHERE c.status = 'paid' AND c.released_at IS NULL \
         AND c.available_at <= $1 AND NOT EXISTS (SELECT 1 FROM ledger_disputes d \
         WHERE d.charge_id = c.id AND d.status = 'open') ORDER BY c.available_at, c.id",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut released = 0;
    for id in due {
        let mut tx = db.begin_write().await?;
        if release(&mut tx, &id, now).await? {
            released += 1;
        }
        tx.commit().await?;
    }
    Ok(released)
}

/// Releases one charge if it is still due; answers whether it did.
async fn release(tx: &mut Tx, charge_id: &str, now: i64) -> Result<bool> {
    let Some(charge) = by_id(tx, charge_id).await? else {
        return Ok(false);
    };
    let open_dispute: Option<AnyRow> =
        sqlx::query("SELECT id FROM ledger_disputes WHERE charge_id = $1 AND status = 'open'")
            .bind(charge_id)
            .fetch_optional(&mut **tx)
            .await?;
    if charge.released_at.is_some()
        || charge.status != "paid"
        || charge.available_at.is_none_or(|at| at > now)
        || open_dispute.is_some()
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
    sqlx::query("UPDATE ledger_charges SET released_at = $1 WHERE id = $2")
        .bind(now)
        .bind(charge_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
