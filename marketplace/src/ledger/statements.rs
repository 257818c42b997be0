//! Reports: a publisher's monthly statement (JSON and CSV) and the operator's revenue report.
//!
//! A statement covers one UTC calendar month and, per currency, per plugin:
//!
//! - `gross`: the charges recorded that month; `platform_share`: the platform's part of them;
//! - `fees`: the processor fees the publisher bore (charged that month);
//! - `refunds`: what was refunded to tenants that month (refunds and lost disputes) and
//!   `refunds_platform`, the platform's part of it;
//! - `net`: what the month's charges, fees and refunds added to what the platform owes the
//!   publisher: `gross - platform_share - fees - (refunds - refunds_platform)`.
//!
//! and for the publisher: the opening and closing balance owed (held + available + frozen) at
//! the month's start and end, and at its end how much of it is held, available and frozen;
//! what was in transit at the month's start and end; and what moved during the month between
//! what is owed and what is in transit: `paid_out` (payouts made), `returned` (failed payouts
//! given back to the available balance) and `confirmed` (payouts the processor paid). So a
//! statement reconciles from its own fields:
//!
//! - `closing_balance = opening_balance + total.net - paid_out + returned`;
//! - `in_transit = opening_in_transit + paid_out - returned - confirmed`.
//!
//! `payouts` lists every payout made or settled during the month, failed ones included.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::accounts::AccountKind;
use crate::clock::rfc3339;
use crate::db::Db;
use crate::error::Result;
use crate::month::MonthRange;

/// One plugin's line of a statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PluginLine {
    /// The plugin's id.
    pub plugin: String,
    /// Charges, minor units.
    pub gross: i64,
    /// The platform's part of them.
    pub platform_share: i64,
    /// Processor fees borne by the publisher.
    pub fees: i64,
    /// Refunded to tenants.
    pub refunds: i64,
    /// The platform's part of the refunds.
    pub refunds_platform: i64,
    /// `gross - platform_share - fees - (refunds - refunds_platform)`.
    pub net: i64,
}

/// A publisher's month in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CurrencyStatement {
    /// ISO 4217.
    pub currency: String,
    /// Owed to the publisher at the month's start.
    pub opening_balance: i64,
    /// Owed to the publisher at the month's end.
    pub closing_balance: i64,
    /// Of the closing balance: still inside the hold.
    pub held: i64,
    /// Of the closing balance: payable.
    pub available: i64,
    /// Of the closing balance: frozen by open disputes.
    pub frozen: i64,
    /// Paid out, not yet confirmed, at the month's start.
    pub opening_in_transit: i64,
    /// Paid out, not yet confirmed, at the month's end.
    pub in_transit: i64,
    /// Moved to payouts during the month (failed ones included).
    pub paid_out: i64,
    /// Given back to the available balance during the month by payouts that failed.
    pub returned: i64,
    /// Confirmed paid by the processor during the month.
    pub confirmed: i64,
    /// Payouts made or settled during the month, oldest first.
    pub payouts: Vec<StatementPayout>,
    /// Per plugin, by id.
    pub plugins: Vec<PluginLine>,
    /// The plugins' lines added up (`plugin` is empty).
    pub total: PluginLine,
}

/// A payout as a statement lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementPayout {
    /// The payout's id.
    pub id: String,
    /// The reference the processor was given.
    pub reference: String,
    /// Minor units.
    pub amount: i64,
    /// `in_transit`, `paid` or `failed` (now).
    pub status: String,
    /// RFC 3339: when it was made.
    pub created_at: String,
    /// RFC 3339: when it was confirmed or failed, if it was.
    pub settled_at: Option<String>,
}

/// A publisher's statement for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Statement {
    /// The publisher's namespace.
    pub publisher: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Per currency.
    pub currencies: Vec<CurrencyStatement>,
}

/// Balances at `before` (exclusive) of the publisher's accounts, by (kind, currency).
async fn balances_at(
    db: &Db,
    publisher_id: &str,
    before: i64,
) -> Result<BTreeMap<(String, String), i64>> {
    let rows = sqlx::query(
        "SELECT a.kind, a.currency, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE a.owner_id = $1 AND p.created_at < $2 GROUP BY a.kind, a.currency",
    )
    .bind(publisher_id)
    .bind(before)
    .fetch_all(db.pool())
    .await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        out.insert(
            (row.try_get("kind")?, row.try_get("currency")?),
            row.try_get("total")?,
        );
    }
    Ok(out)
}

/// The statement of publisher `publisher_id` (namespace `namespace`) for `month`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn statement(
    db: &Db,
    publisher_id: &str,
    namespace: &str,
    month: &MonthRange,
) -> Result<Statement> {
    let mut lines: BTreeMap<(String, String), PluginLine> = BTreeMap::new();
    let charged = sqlx::query(
        "SELECT c.currency, c.plugin_id, t.kind, c.gross, c.platform_share, c.publisher_fee \
         FROM ledger_charges c JOIN ledger_transactions t ON t.charge_id = c.id \
         WHERE c.publisher_id = $1 AND t.kind IN ('charge', 'usage_charge') \
         AND t.created_at >= $2 AND t.created_at < $3",
    )
    .bind(publisher_id)
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &charged {
        let line = lines
            .entry((row.try_get("currency")?, row.try_get("plugin_id")?))
            .or_default();
        line.gross += row.try_get::<i64, _>("gross")?;
        line.platform_share += row.try_get::<i64, _>("platform_share")?;
        if row.try_get::<String, _>("kind")? == "charge" {
            line.fees += row.try_get::<i64, _>("publisher_fee")?;
        }
    }
    let moved = sqlx::query(
        "SELECT p.currency, t.plugin_id, t.kind, a.kind AS account_kind, p.amount \
         FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
         JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE t.publisher_id = $1 AND t.kind IN ('settlement', 'refund', 'chargeback') \
         AND t.created_at >= $2 AND t.created_at < $3",
    )
    .bind(publisher_id)
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &moved {
        let plugin: Option<String> = row.try_get("plugin_id")?;
        let line = lines
            .entry((row.try_get("currency")?, plugin.unwrap_or_default()))
            .or_default();
        let amount: i64 = row.try_get("amount")?;
        let kind: String = row.try_get("kind")?;
        let account = AccountKind::parse(&row.try_get::<String, _>("account_kind")?);
        match (kind.as_str(), account) {
            ("settlement", Some(AccountKind::PublisherHeld)) => line.fees += amount,
            ("refund" | "chargeback", Some(AccountKind::ProcessorClearing)) => {
                line.refunds -= amount;
            }
            ("refund" | "chargeback", Some(AccountKind::Refunds)) => {
                line.refunds_platform += amount;
            }
            _ => {}
        }
    }
    let payout_moves = sqlx::query(
        "SELECT p.currency, t.kind, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
         JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE a.owner_id = $1 AND a.kind = $2 \
         AND t.kind IN ('payout', 'payout_failed', 'payout_paid') \
         AND p.created_at >= $3 AND p.created_at < $4 GROUP BY p.currency, t.kind",
    )
    .bind(publisher_id)
    .bind(AccountKind::PayoutsInTransit.as_str())
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    // (paid out, returned, confirmed) per currency, from the in-transit account's postings.
    let mut moves: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for row in &payout_moves {
        let entry = moves.entry(row.try_get("currency")?).or_default();
        let total: i64 = row.try_get("total")?;
        match row.try_get::<String, _>("kind")?.as_str() {
            "payout" => entry.0 -= total,
            "payout_failed" => entry.1 += total,
            _ => entry.2 += total,
        }
    }
    let listed = sqlx::query(
        "SELECT id, reference, amount, currency, status, created_at, settled_at FROM payouts \
         WHERE publisher_id = $1 AND ((created_at >= $2 AND created_at < $3) \
         OR (settled_at >= $2 AND settled_at < $3)) ORDER BY created_at, id",
    )
    .bind(publisher_id)
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    let mut payouts: BTreeMap<String, Vec<StatementPayout>> = BTreeMap::new();
    for row in &listed {
        payouts
            .entry(row.try_get("currency")?)
            .or_default()
            .push(StatementPayout {
                id: row.try_get("id")?,
                reference: row.try_get("reference")?,
                amount: row.try_get("amount")?,
                status: row.try_get("status")?,
                created_at: rfc3339(row.try_get("created_at")?),
                settled_at: row.try_get::<Option<i64>, _>("settled_at")?.map(rfc3339),
            });
    }
    let opening = balances_at(db, publisher_id, month.start_ms).await?;
    let closing = balances_at(db, publisher_id, month.end_ms).await?;
    let mut currencies: BTreeMap<String, CurrencyStatement> = BTreeMap::new();
    for (_, currency) in opening.keys().chain(closing.keys()) {
        currencies.entry(currency.clone()).or_default();
    }
    for (currency, _) in lines.keys() {
        currencies.entry(currency.clone()).or_default();
    }
    let owed = |balances: &BTreeMap<(String, String), i64>, kind: AccountKind, currency: &str| {
        -balances
            .get(&(kind.as_str().to_owned(), currency.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    for (currency, section) in &mut currencies {
        section.currency.clone_from(currency);
        let payable = [
            AccountKind::PublisherHeld,
            AccountKind::PublisherAvailable,
            AccountKind::PublisherFrozen,
        ];
        section.opening_balance = payable.iter().map(|k| owed(&opening, *k, currency)).sum();
        section.closing_balance = payable.iter().map(|k| owed(&closing, *k, currency)).sum();
        section.held = owed(&closing, AccountKind::PublisherHeld, currency);
        section.available = owed(&closing, AccountKind::PublisherAvailable, currency);
        section.frozen = owed(&closing, AccountKind::PublisherFrozen, currency);
        section.opening_in_transit = owed(&opening, AccountKind::PayoutsInTransit, currency);
        section.in_transit = owed(&closing, AccountKind::PayoutsInTransit, currency);
        let (paid_out, returned, confirmed) = moves.get(currency).copied().unwrap_or_default();
        section.paid_out = paid_out;
        section.returned = returned;
        section.confirmed = confirmed;
        section.payouts = payouts.remove(currency).unwrap_or_default();
        for ((line_currency, plugin), line) in &lines {
            if line_currency != currency {
                continue;
            }
            let mut line = line.clone();
            line.plugin.clone_from(plugin);
            line.net = line.gross
                - line.platform_share
                - line.fees
                - (line.refunds - line.refunds_platform);
            section.total.gross += line.gross;
            section.total.platform_share += line.platform_share;
            section.total.fees += line.fees;
            section.total.refunds += line.refunds;
            section.total.refunds_platform += line.refunds_platform;
            section.total.net += line.net;
            section.plugins.push(line);
        }
    }
    Ok(Statement {
        publisher: namespace.to_owned(),
        month: month.key.clone(),
        currencies: currencies.into_values().collect(),
    })
}

/// The statement as CSV: a header, then one line per currency and plugin (the publisher's
/// balances and payout movements repeated on each), and a `TOTAL` line per currency. The
/// payouts themselves are in the JSON form only.
pub fn to_csv(statement: &Statement) -> String {
    let mut out = String::from(
        "month,currency,plugin,gross,platform_share,fees,refunds,refunds_platform,net,\
         opening_balance,closing_balance,held,available,frozen,in_transit,paid_out,\
         opening_in_transit,returned,confirmed\n",
    );
    for section in &statement.currencies {
        let total = PluginLine {
            plugin: "TOTAL".to_owned(),
            ..section.total.clone()
        };
        for line in section.plugins.iter().chain(std::iter::once(&total)) {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                statement.month,
                section.currency,
                line.plugin,
                line.gross,
                line.platform_share,
                line.fees,
                line.refunds,
                line.refunds_platform,
                line.net,
                section.opening_balance,
                section.closing_balance,
                section.held,
                section.available,
                section.frozen,
                section.in_transit,
                section.paid_out,
                section.opening_in_transit,
                section.returned,
                section.confirmed
            ));
        }
    }
    out
}

/// The platform's month in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RevenueLine {
    /// ISO 4217.
    pub currency: String,
    /// Charges recorded in the month.
    pub gross: i64,
    /// The platform's share of them (including fees recovered from publishers).
    pub platform_revenue: i64,
    /// The platform's part of refunds and lost disputes in the month.
    pub refunds: i64,
    /// Processor fees in the month.
    pub fees: i64,
    /// `platform_revenue - refunds - fees`.
    pub net: i64,
    /// Owed to publishers at the month's end (held + available + frozen).
    pub publishers_owed: i64,
    /// Paid out, not yet confirmed, at the month's end.
    pub payouts_in_transit: i64,
    /// Payouts confirmed paid in the month.
    pub paid_out: i64,
}

/// The operator's revenue report for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RevenueReport {
    /// `YYYY-MM`.
    pub month: String,
    /// Per currency.
    pub currencies: Vec<RevenueLine>,
}

/// The platform's revenue for `month`, from the postings.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn revenue(db: &Db, month: &MonthRange) -> Result<RevenueReport> {
    let mut lines: BTreeMap<String, RevenueLine> = BTreeMap::new();
    let during = sqlx::query(
        "SELECT a.kind, t.kind AS transaction_kind, p.currency, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id \
         JOIN ledger_transactions t ON t.id = p.transaction_id \
         WHERE p.created_at >= $1 AND p.created_at < $2 GROUP BY a.kind, t.kind, p.currency",
    )
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &during {
        let currency: String = row.try_get("currency")?;
        let line = lines.entry(currency.clone()).or_default();
        line.currency = currency;
        let total: i64 = row.try_get("total")?;
        let kind = AccountKind::parse(&row.try_get::<String, _>("kind")?);
        let transaction: String = row.try_get("transaction_kind")?;
        match kind {
            Some(AccountKind::PlatformRevenue) => line.platform_revenue -= total,
            Some(AccountKind::Refunds) => line.refunds += total,
            Some(AccountKind::ProcessorFees) => line.fees += total,
            Some(AccountKind::PayoutsInTransit) if transaction == "payout_paid" => {
                line.paid_out += total;
            }
            _ => {}
        }
    }
    let gross = sqlx::query(
        "SELECT c.currency, CAST(SUM(c.gross) AS BIGINT) AS total FROM ledger_charges c \
         WHERE c.created_at >= $1 AND c.created_at < $2 GROUP BY c.currency",
    )
    .bind(month.start_ms)
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &gross {
        let currency: String = row.try_get("currency")?;
        let line = lines.entry(currency.clone()).or_default();
        line.currency = currency;
        line.gross = row.try_get("total")?;
    }
    let closing = sqlx::query(
        "SELECT a.kind, p.currency, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id \
         WHERE p.created_at < $1 GROUP BY a.kind, p.currency",
    )
    .bind(month.end_ms)
    .fetch_all(db.pool())
    .await?;
    for row in &closing {
        let currency: String = row.try_get("currency")?;
        let total: i64 = row.try_get("total")?;
        let kind = AccountKind::parse(&row.try_get::<String, _>("kind")?);
        if !lines.contains_key(&currency) && total == 0 {
            continue;
        }
        let line = lines.entry(currency.clone()).or_default();
        line.currency = currency;
        match kind {
            Some(
                AccountKind::PublisherHeld
                | AccountKind::PublisherAvailable
                | AccountKind::PublisherFrozen,
            ) => line.publishers_owed -= total,
            Some(AccountKind::PayoutsInTransit) => line.payouts_in_transit -= total,
            _ => {}
        }
    }
    for line in lines.values_mut() {
        line.net = line.platform_revenue - line.refunds - line.fees;
    }
    Ok(RevenueReport {
        month: month.key.clone(),
        currencies: lines.into_values().collect(),
    })
}
