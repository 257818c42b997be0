//! Invoices: one per tenant and month, issued after the month ends.
//!
//! An invoice combines the plan (prorated over the spans of the month, [`super::periods`]), the
//! paid plugins' monthly subscriptions (prorated alike) and the usage-priced plugins' charges
//! of the month ([`crate::ledger::usage_charges`]), less the coupon the tenant holds (off the
//! plan only). Lines are in minor units of the plan's currency, rounded down as the ledger
//! rounds. `build` computes it; `issue` numbers it (`PL-000001`, …) and stores it, immutable
//! from then on, sends it to the processor and collects it; `settle` records what the
//! processor answers — a payment posts to the ledger, a decline starts dunning. Corrections are
//! credit notes (`credit`).

mod build;
mod credit;
mod issue;
mod settle;

pub use build::{Draft, DraftLine, build};
pub use credit::{CreditNote, credit};
pub use issue::{collect, issue, issue_month};
pub use settle::{failed_in, finalized_in, paid_in};

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenants::{self, TenantRole};

/// The most invoices one listing returns.
pub const MAX_LISTED: i64 = 240;

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Line {
    /// `plan`, `plugin`, `usage` or `discount`.
    pub kind: String,
    /// What it is for.
    pub description: String,
    /// Minor units; negative for a discount.
    pub amount: i64,
    /// The plugin, for plugin and usage lines.
    pub plugin_id: Option<String>,
}

/// An invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Invoice {
    /// Its id.
    pub id: String,
    /// Its number, e.g. `PL-000042`.
    pub number: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The month billed, `YYYY-MM`.
    pub period: String,
    /// ISO 4217.
    pub currency: String,
    /// The lines before the discount.
    pub subtotal: i64,
    /// Taken off by the coupon (0 or more).
    pub discount: i64,
    /// What the tenant owes: subtotal less discount.
    pub total: i64,
    /// Credited by credit notes since.
    pub credited: i64,
    /// `open` (unpaid), `paid` or `void`.
    pub status: String,
    /// Collection attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (RFC 3339), while open.
    pub next_attempt_at: Option<String>,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When it was paid (RFC 3339).
    pub paid_at: Option<String>,
    /// The lines, in order.
    pub lines: Vec<Line>,
}

pub(crate) const SELECT: &str = "SELECT id, number, tenant_id, period, currency, subtotal, \
     discount, total, credited, status, attempts, next_attempt_at, issued_at, paid_at FROM invoices";

pub(crate) fn from_row(row: &AnyRow) -> Result<Invoice> {
    Ok(Invoice {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        tenant_id: row.try_get("tenant_id")?,
        period: row.try_get("period")?,
        currency: row.try_get("currency")?,
        subtotal: row.try_get("subtotal")?,
        discount: row.try_get("discount")?,
        total: row.try_get("total")?,
        credited: row.try_get("credited")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(rfc3339),
        issued_at: rfc3339(row.try_get("issued_at")?),
        paid_at: row.try_get::<Option<i64>, _>("paid_at")?.map(rfc3339),
        lines: Vec::new(),
    })
}

async fn lines(db: &Db, invoice_id: &str) -> Result<Vec<Line>> {
    let rows = sqlx::query(
        "SELECT kind, description, amount, plugin_id FROM invoice_lines WHERE invoice_id = $1 \
         ORDER BY line",
    )
    .bind(invoice_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Line {
                kind: row.try_get("kind")?,
                description: row.try_get("description")?,
                amount: row.try_get("amount")?,
                plugin_id: row.try_get("plugin_id")?,
            })
        })
        .collect()
}

/// Invoice `id` with its lines, whoever's it is.
///
/// # Errors
///
/// 404; [`Error::Database`].
pub async fn by_id(db: &Db, id: &str) -> Result<Invoice> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found(format!("invoice {id:?}")))?;
    let mut invoice = from_row(&row)?;
    invoice.lines = lines(db, &invoice.id).await?;
    Ok(invoice)
}

/// Tenant `slug`'s invoices, newest first, without lines (members).
///
/// # Errors
///
/// As [`tenants::access`]; [`Error::Database`].
pub async fn list(state: &AppState, principal: &Principal, slug: &str) -> Result<Vec<Invoice>> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Readonly).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE tenant_id = $1 ORDER BY issued_at DESC, id DESC LIMIT {MAX_LISTED}"
    )))
    .bind(&tenant.id)
    .fetch_all(state.db().pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Tenant `slug`'s invoice `id_or_number` with its lines (members); another tenant's is 404.
///
/// # Errors
///
/// As [`tenants::access`]; 404; [`Error::Database`].
pub async fn show(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    id_or_number: &str,
) -> Result<Invoice> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Readonly).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE tenant_id = $1 AND (id = $2 OR number = $2)"
    )))
    .bind(&tenant.id)
    .bind(id_or_number)
    .fetch_optional(state.db().pool())
    .await?
    .ok_or_else(|| Error::not_found(format!("invoice {id_or_number:?}")))?;
    let mut invoice = from_row(&row)?;
    invoice.lines = lines(state.db(), &invoice.id).await?;
    Ok(invoice)
}

/// Tenant `slug`'s invoice as a PDF: its file name and bytes (members).
///
/// # Errors
///
/// As [`show`]; [`Error::Internal`] if the PDF cannot be rendered.
pub async fn pdf(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    id_or_number: &str,
) -> Result<(String, Vec<u8>)> {
    let invoice = show(state, principal, slug, id_or_number).await?;
    render(state.db(), &invoice).await
}

/// `invoice` as a PDF: its file name and bytes.
///
/// # Errors
///
/// [`Error::Internal`] if it cannot be rendered; [`Error::Database`].
pub async fn render(db: &Db, invoice: &Invoice) -> Result<(String, Vec<u8>)> {
    let tenant = tenants::by_id(db, &invoice.tenant_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("invoice {:?}", invoice.number)))?;
    let coupon: Option<String> = sqlx::query(
        "SELECT c.code FROM invoices i JOIN coupons c ON c.id = i.coupon_id WHERE i.id = $1",
    )
    .bind(&invoice.id)
    .fetch_optional(db.pool())
    .await?
    .map(|row| row.try_get("code"))
    .transpose()?;
    let mut notes = Vec::new();
    if let Some(code) = coupon {
        notes.push(format!("Coupon {code} applied to the plan."));
    }
    notes.push("Amounts are in minor units rounded down; no tax is charged.".to_owned());
    let document = super::pdf::InvoiceDocument {
        number: invoice.number.clone(),
        status: invoice.status.clone(),
        issued_on: invoice.issued_at.chars().take(10).collect(),
        period: invoice.period.clone(),
        seller: "Plinth".to_owned(),
        tenant_name: tenant.name,
        tenant_slug: tenant.slug,
        currency: invoice.currency.clone(),
        lines: invoice
            .lines
            .iter()
            .map(|line| super::pdf::DocumentLine {
                description: line.description.clone(),
                amount: line.amount,
            })
            .collect(),
        subtotal: invoice.subtotal,
        discount: invoice.discount,
        credited: invoice.credited,
        total: invoice.total,
        notes,
    };
    let bytes =
        super::pdf::render(&document).map_err(|e| Error::Internal(format!("invoice PDF: {e}")))?;
    Ok((format!("{}.pdf", invoice.number), bytes))
}
