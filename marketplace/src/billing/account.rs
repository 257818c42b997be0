//! A tenant's billing account: its customer and payment method at the processor, and where its
//! subscription stands (`free`, `trialing`, `active`, `past_due`).
//!
//! The row is created the first time billing touches the tenant ([`ensure`]). The processor's
//! customer is created outside any transaction ([`customer`]), with an idempotency key per
//! tenant, and stored if none was meanwhile.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::audit::{self, Actor, Entry};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::db::{Db, Tx};
use crate::error::Result;
use crate::state::AppState;
use crate::tenants::{self, Tenant, TenantRole};

/// Where a tenant's subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// On a free plan, paying nothing.
    Free,
    /// On a paid plan's trial.
    Trialing,
    /// On a paid plan, paid up.
    Active,
    /// An invoice's payment failed and is being retried.
    PastDue,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Free => "free",
            Status::Trialing => "trialing",
            Status::Active => "active",
            Status::PastDue => "past_due",
        }
    }

    fn parse(name: &str) -> Status {
        match name {
            "trialing" => Status::Trialing,
            "active" => Status::Active,
            "past_due" => Status::PastDue,
            _ => Status::Free,
        }
    }
}

/// A tenant's billing account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The tenant's id.
    pub tenant_id: String,
    /// The processor's customer, once created.
    pub customer: Option<String>,
    /// The default payment method at the processor.
    pub payment_method: Option<String>,
    /// Its card brand, e.g. `visa`.
    pub payment_brand: Option<String>,
    /// Its last four digits.
    pub payment_last4: Option<String>,
    /// Where the subscription stands.
    pub status: Status,
    /// Whether the tenant has had its trial.
    pub trial_used: bool,
    /// When the trial ends (Unix ms), while trialing.
    pub trial_ends_at: Option<i64>,
    /// Whether the tenant was told its trial ends soon.
    pub trial_warned: bool,
    /// The plan the tenant moves to at the end of the month (a downgrade or cancellation).
    pub pending_plan: Option<String>,
    /// When that move was asked for (Unix ms).
    pub pending_plan_at: Option<i64>,
    /// Since when an invoice is unpaid after a failed payment (Unix ms).
    pub past_due_since: Option<i64>,
}

const SELECT: &str = "SELECT tenant_id, customer, payment_method, payment_brand, payment_last4, \
     status, trial_used, trial_ends_at, trial_warned, pending_plan, pending_plan_at, \
     past_due_since FROM billing_accounts WHERE tenant_id = $1";

fn from_row(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        tenant_id: row.try_get("tenant_id")?,
        customer: row.try_get("customer")?,
        payment_method: row.try_get("payment_method")?,
        payment_brand: row.try_get("payment_brand")?,
        payment_last4: row.try_get("payment_last4")?,
        status: Status::parse(&row.try_get::<String, _>("status")?),
        trial_used: row.try_get::<i64, _>("trial_used")? != 0,
        trial_ends_at: row.try_get("trial_ends_at")?,
        trial_warned: row.try_get::<i64, _>("trial_warned")? != 0,
        pending_plan: row.try_get("pending_plan")?,
        pending_plan_at: row.try_get("pending_plan_at")?,
        past_due_since: row.try_get("past_due_since")?,
    })
}

/// A fresh account: free, no customer.
fn fresh(tenant_id: &str) -> Account {
    Account {
        tenant_id: tenant_id.to_owned(),
        customer: None,
        payment_method: None,
        payment_brand: None,
        payment_last4: None,
        status: Status::Free,
        trial_used: false,
        trial_ends_at: None,
        trial_warned: false,
        pending_plan: None,
        pending_plan_at: None,
        past_due_since: None,
    }
}

/// The tenant's account (a fresh one if billing never touched it).
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn load(db: &Db, tenant_id: &str) -> Result<Account> {
    let row = sqlx::query(SELECT)
        .bind(tenant_id)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(row) => from_row(&row),
        None => Ok(fresh(tenant_id)),
    }
}

/// The tenant's account in `tx`, created if missing.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn ensure(tx: &mut Tx, tenant_id: &str) -> Result<Account> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, status, updated_at) VALUES ($1, 'free', $2) \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query(SELECT)
        .bind(tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    from_row(&row)
}

/// Sets the account's status in `tx`.
///
/// # Errors
///
/// [`crate::Error::Database`].
pub async fn set_status(tx: &mut Tx, tenant_id: &str, status: Status) -> Result<()> {
    sqlx::query("UPDATE billing_accounts SET status = $1, updated_at = $2 WHERE tenant_id = $3")
        .bind(status.as_str())
        .bind(now_ms())
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The tenant's customer at the processor, created (once, whatever the races) if it has none.
/// No transaction is held while the processor is asked.
///
/// # Errors
///
/// 409 `billing_not_configured`; [`crate::Error::ProcessorUnavailable`];
/// [`crate::Error::Database`].
pub async fn customer(state: &AppState, tenant: &Tenant) -> Result<String> {
    let processor = state.settings().billing.processor()?;
    let db = state.db();
    {
        let mut tx = db.begin_tenant(&tenant.id).await?;
        let account = ensure(&mut tx, &tenant.id).await?;
        tx.commit().await?;
        if let Some(customer) = account.customer {
            return Ok(customer);
        }
    }
    let email = owner_email(db, &tenant.id).await?;
    let created = processor
        .create_customer(
            super::processor::NewCustomer {
                tenant_id: &tenant.id,
                name: &tenant.name,
                email: email.as_deref(),
            },
            &format!("plinth-customer-{}", tenant.id),
        )
        .await?;
    let mut tx = db.begin_tenant(&tenant.id).await?;
    sqlx::query(
        "UPDATE billing_accounts SET customer = $1, updated_at = $2 \
         WHERE tenant_id = $3 AND customer IS NULL",
    )
    .bind(&created)
    .bind(now_ms())
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    let account = ensure(&mut tx, &tenant.id).await?;
    tx.commit().await?;
    Ok(account.customer.unwrap_or(created))
}

/// The e-mail of the tenant's first owner, if any.
async fn owner_email(db: &Db, tenant_id: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT u.email FROM tenant_members m JOIN users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY u.email LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|row| row.try_get("email")).transpose()?)
}

/// Makes `payment_method` (a processor id) tenant `slug`'s default, as `principal` (admin).
/// Invoices left unpaid by a declined payment are tried again with it at once.
///
/// # Errors
///
/// As [`tenants::authorize`] (admin); 400 `unknown_payment_method`; 409
/// `billing_not_configured`; 502 `processor_unavailable`; [`crate::Error::Database`].
pub async fn set_payment_method(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    payment_method: &str,
) -> Result<Account> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    if payment_method.is_empty() || payment_method.len() > 255 {
        return Err(crate::Error::bad_request(
            "invalid_payment_method",
            "field `payment_method` must be a processor's payment method id of 1 to 255 bytes",
        ));
    }
    let customer = customer(state, &tenant).await?;
    let processor = state.settings().billing.processor()?;
    let attached = processor
        .attach_payment_method(
            &customer,
            payment_method,
            // One key per request: attaching the same card again later is a new change.
            &format!("plinth-pm-{}-{}", tenant.id, crate::id::new_id()),
        )
        .await?;
    let mut tx = state.db().begin_tenant(&tenant.id).await?;
    ensure(&mut tx, &tenant.id).await?;
    sqlx::query(
        "UPDATE billing_accounts SET payment_method = $1, payment_brand = $2, \
         payment_last4 = $3, updated_at = $4 WHERE tenant_id = $5",
    )
    .bind(&attached.id)
    .bind(&attached.brand)
    .bind(&attached.last4)
    .bind(now_ms())
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            actor: Actor::from(principal),
            action: "billing.payment_method_set",
            tenant_id: Some(&tenant.id),
            subject: format!("tenant:{}", tenant.slug),
            details: serde_json::json!({"brand": attached.brand, "last4": attached.last4}),
        },
    )
    .await?;
    let account = ensure(&mut tx, &tenant.id).await?;
    tx.commit().await?;
    super::dunning::retry_now(state, &tenant.id, now_ms()).await?;
    load(state.db(), &tenant.id).await.or(Ok(account))
}

/// Starts the processor's hosted page where tenant `slug` (as `principal`, admin) enters a
/// payment method; the browser comes back to the console's subscription page.
///
/// # Errors
///
/// As [`set_payment_method`].
pub async fn setup_session(
    state: &AppState,
    principal: &Principal,
    slug: &str,
) -> Result<super::processor::SetupSession> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let customer = customer(state, &tenant).await?;
    let base = &state.settings().billing.public_url;
    let success = format!(
        "{base}/tenants/{}/billing/payment-method?session_id={{CHECKOUT_SESSION_ID}}",
        tenant.slug
    );
    let cancel = format!("{base}/tenants/{}/billing", tenant.slug);
    let key = format!("plinth-setup-{}-{}", tenant.id, crate::id::new_id());
    Ok(state
        .settings()
        .billing
        .processor()?
        .setup_session(&customer, &success, &cancel, &key)
        .await?)
}

/// Completes a hosted setup: the payment method the processor's `session` collected becomes
/// tenant `slug`'s default (as [`set_payment_method`]).
///
/// # Errors
///
/// 409 `setup_incomplete` while the session is not complete; else as [`set_payment_method`].
pub async fn complete_setup(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    session: &str,
) -> Result<Account> {
    let tenant = tenants::access(state.db(), principal, slug, TenantRole::Admin).await?;
    let customer = customer(state, &tenant).await?;
    let method = state
        .settings()
        .billing
        .processor()?
        .setup_session_payment_method(&customer, session)
        .await?
        .ok_or_else(|| {
            crate::Error::conflict(
                "setup_incomplete",
                format!("the processor's setup session {session:?} is not complete"),
            )
        })?;
    set_payment_method(state, principal, slug, &method).await
}
