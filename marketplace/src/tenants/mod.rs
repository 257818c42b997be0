//! Tenants and plans: the organisations that install plugins, who belongs to them, their API
//! keys, their plan's quotas and their usage against it.
//!
//! Every tenant route starts with [`access`] (or [`authorize`]): operators may do anything;
//! members may do what their [`TenantRole`] allows; a tenant's API key acts as a member of its
//! own tenant. Anyone else, and everyone for an unknown or deleted tenant, gets the same 404,
//! so a tenant's existence does not leak.
//!
//! Deleting a tenant is soft: it disappears at once (404 everywhere, API keys revoked) and is
//! kept for [`Settings::tenant_grace_ms`](crate::settings::Settings::tenant_grace_ms), during
//! which an operator may [`restore`] it; [`purge_expired`] then removes it for good.

pub mod api_keys;
pub mod members;
pub mod plans;
mod routes;
pub mod usage;

pub(crate) use routes::routes;

pub use plans::{DEFAULT_PLAN, Plan, PlanChange, plan, plans};

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::auth::{Caller, Principal, UserCaller};
use crate::db::cache::Topic;
use crate::db::{Db, Tx};
use crate::error::{ConflictOnUnique, Error, Result};
use crate::id::new_id;
use crate::installs::sync::{self, PlanScope};
use crate::state::AppState;

/// A role within a tenant, ordered `Readonly < Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TenantRole {
    /// Sees the tenant, its installs, usage and notifications.
    Readonly,
    /// Uses the tenant's plugins (sends events); what a tenant API key may do.
    Member,
    /// Manages installs, members (except owners) and API keys.
    Admin,
    /// Everything, including deleting the tenant and managing owners.
    Owner,
}

impl TenantRole {
    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantRole::Readonly => "readonly",
            TenantRole::Member => "member",
            TenantRole::Admin => "admin",
            TenantRole::Owner => "owner",
        }
    }

    /// The role called `name`, naming the field `role` if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] with code `invalid_role`.
    pub fn parse(name: &str) -> Result<TenantRole> {
        match name {
            "readonly" => Ok(TenantRole::Readonly),
            "member" => Ok(TenantRole::Member),
            "admin" => Ok(TenantRole::Admin),
            "owner" => Ok(TenantRole::Owner),
            other => Err(Error::bad_request(
                "invalid_role",
                format!(
                    "field `role` must be one of \"owner\", \"admin\", \"member\", \"readonly\", \
                     not {other:?}"
                ),
            )),
        }
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant's id.
    pub id: String,
    /// The tenant's slug: unique, used in paths.
    pub slug: String,
    /// The tenant's display name.
    pub name: String,
    /// The name of the tenant's [`Plan`].
    pub plan: String,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// When it was deleted (Unix ms), if it was.
    pub deleted_at: Option<i64>,
    /// When a deleted tenant may be purged (Unix ms).
    pub purge_after: Option<i64>,
    /// When it was suspended (Unix ms), while it is: its plugins do not run
    /// ([`crate::billing::suspension`]).
    pub suspended_at: Option<i64>,
    /// Why it is suspended: `payment` (an invoice stayed unpaid) or `operator`.
    pub suspended_reason: Option<String>,
}

/// How a caller reaches a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acting {
    /// A user: their membership role, if any, and whether they are an operator.
    User {
        /// The user's role in the tenant, if they are a member.
        role: Option<TenantRole>,
        /// Whether the user is an operator (who may do anything).
        operator: bool,
    },
    /// The tenant's own API key, which acts as a member.
    ApiKey,
}

impl Acting {
    /// The role the caller acts with: an operator acts as an owner, an API key as a member.
    pub fn effective_role(self) -> Option<TenantRole> {
        match self {
            Acting::User { operator: true, .. } => Some(TenantRole::Owner),
            Acting::User { role, .. } => role,
            Acting::ApiKey => Some(TenantRole::Member),
        }
    }

    /// Whether the caller may do what needs role `needed` in the tenant. Pages ask this to show
    /// or hide controls; [`authorize`] enforces the same rule.
    pub fn allows(self, needed: TenantRole) -> bool {
        self.effective_role().is_some_and(|role| role >= needed)
    }

    /// How the caller is shown in the API: their role, `operator` or `api_key`.
    pub fn label(self) -> &'static str {
        match self {
            Acting::User {
                role: Some(role), ..
            } => role.as_str(),
            Acting::User { role: None, .. } => "operator",
            Acting::ApiKey => "api_key",
        }
    }
}

/// A granted access to a tenant: the tenant and how the caller reaches it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The tenant.
    pub tenant: Tenant,
    /// How the caller reaches it.
    pub acting: Acting,
}

/// The columns of `tenants`, in SQL.
macro_rules! columns {
    () => {
        "id, slug, name, plan, created_at, deleted_at, purge_after, suspended_at, \
         suspended_reason"
    };
}

/// The 404 every caller gets for a tenant it may not see, whether or not it exists.
fn tenant_not_found(slug: &str) -> Error {
    Error::not_found(format!("tenant {slug:?}"))
}

/// Checks that the caller may act on tenant `slug` with at least role `needed`, and returns
/// the tenant. See [`authorize`] for the rules.
///
/// # Errors
///
/// As [`authorize`].
pub async fn access(
    db: &Db,
    principal: &Principal,
    slug: &str,
    needed: TenantRole,
) -> Result<Tenant> {
    Ok(authorize(db, principal, slug, needed).await?.tenant)
}

/// Checks that the caller may act on tenant `slug` with at least role `needed`, and says how.
///
/// An operator may do anything; a member whose role is at least `needed` may; a tenant API key
/// may act on its own tenant where `needed` is at most [`TenantRole::Member`].
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown or deleted tenant, a tenant the calling user is not a
/// member of, or another tenant's API key (the same answer in every case); [`Error::Forbidden`]
/// (`forbidden`) naming the role needed when the caller's role is lower; [`Error::Forbidden`]
/// (`user_required`) for a publisher's API key.
pub async fn authorize(
    db: &Db,
    principal: &Principal,
    slug: &str,
    needed: TenantRole,
) -> Result<Access> {
    let (tenant, acting) = match &principal.caller {
        Caller::PublisherKey { .. } => {
            return Err(Error::forbidden(
                "user_required",
                "tenants are reached with a user's token or the tenant's own API key, not a \
                 publisher's API key",
            ));
        }
        Caller::TenantKey { tenant_id } => {
            let tenant = live_tenant(db, slug).await?;
            if &tenant.id != tenant_id {
                return Err(tenant_not_found(slug));
            }
            if needed > TenantRole::Member {
                return Err(Error::forbidden(
                    "forbidden",
                    format!(
                        "this needs the {} role in tenant {slug:?}; a tenant API key acts as a \
                         member — use a user's token",
                        needed.as_str()
                    ),
                ));
            }
            (tenant, Acting::ApiKey)
        }
        Caller::User(user) => {
            let tenant = live_tenant(db, slug).await?;
            let role = member_role(db, &tenant.id, &user.id).await?;
            let acting = Acting::User {
                role,
                operator: user.is_operator(),
            };
            (tenant, acting)
        }
    };
    match acting.effective_role() {
        None => Err(tenant_not_found(slug)),
        Some(role) if role < needed => Err(Error::forbidden(
            "forbidden",
            format!(
                "this needs the {} role in tenant {slug:?}; you are {}",
                needed.as_str(),
                role.as_str()
            ),
        )),
        Some(_) => Ok(Access { tenant, acting }),
    }
}

/// The tenant `slug` unless it is unknown or deleted (cached briefly: [`crate::db::cache`]).
async fn live_tenant(db: &Db, slug: &str) -> Result<Tenant> {
    let generation = db.cache().generation(Topic::Access);
    if let Some(tenant) = db.cache().tenants.get(&slug.to_owned(), generation) {
        return Ok(tenant);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM tenants WHERE slug = $1 AND deleted_at IS NULL"
    ))
    .bind(slug)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| tenant_not_found(slug))?;
    let tenant = Tenant::from_row(&row)?;
    db.cache()
        .tenants
        .put(slug.to_owned(), tenant.clone(), generation);
    Ok(tenant)
}

/// The role of user `user_id` in tenant `tenant_id`, if they are a member.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] for a role the database should not hold.
pub async fn member_role(db: &Db, tenant_id: &str, user_id: &str) -> Result<Option<TenantRole>> {
    let row = sqlx::query("SELECT role FROM tenant_members WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(row) => {
            let name: String = row.try_get("role")?;
            TenantRole::parse(&name)
                .map(Some)
                .map_err(|_| Error::Internal(format!("stored tenant role {name:?}")))
        }
        None => Ok(None),
    }
}

/// Takes the write lock on live tenant `tenant_id` within `tx`, so that changes to its members
/// and keys are serialised (no two transactions each remove one of the last two owners).
///
/// # Errors
///
/// [`Error::NotFound`] if the tenant was deleted meanwhile; [`Error::Database`].
pub async fn lock_tenant(tx: &mut Tx, tenant: &Tenant) -> Result<()> {
    let locked = sqlx::query("UPDATE tenants SET name = name WHERE id = $1 AND deleted_at IS NULL")
        .bind(&tenant.id)
        .execute(&mut **tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Err(tenant_not_found(&tenant.slug));
    }
    Ok(())
}

/// The tenant with id `id`, deleted or not, if it exists.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Tenant>> {
    Ok(sqlx::query_as(
        "SELECT id, slug, name, plan, created_at, deleted_at, purge_after, suspended_at, \
         suspended_reason FROM tenants \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Checks a tenant slug: lowercase `[a-z0-9-]`, 2 to 40 characters, starting with a letter.
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_slug` naming the field `slug`.
pub fn validate_slug(slug: &str) -> Result<()> {
    let valid = (2..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::bad_request(
            "invalid_slug",
            format!(
                "field `slug` must be 2 to 40 characters of a-z, 0-9 and '-', starting with a \
                 letter, not {slug:?}"
            ),
        ))
    }
}

/// Checks and trims a tenant's display name (field `name`, 1 to 200 characters).
///
/// # Errors
///
/// [`Error::BadRequest`] with code `invalid_name`.
pub fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "invalid_name",
            "field `name` must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates tenant `slug` on plan `plan` with user `owner` as its owner. Only an operator may
/// start a tenant on another plan than [`DEFAULT_PLAN`] ([`may_set_plan`]). Unless `owner` is
/// an operator, it may have created at most `max_per_account` tenants (deleted ones count
/// until they are purged).
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_slug`, `invalid_name`, `unknown_plan`); 403
/// `plan_requires_operator`; [`Error::Conflict`]
/// (`slug_taken`) if the slug is in use (deleted tenants keep theirs until purged), or
/// (`tenant_limit_reached`) if the owner has created its limit of tenants.
pub async fn create(
    db: &Db,
    slug: &str,
    name: &str,
    plan: &str,
    owner: &UserCaller,
    max_per_account: u32,
    now: i64,
) -> Result<Tenant> {
    validate_slug(slug)?;
    let name = validate_name(name)?;
    let owner_id = owner.id.as_str();
    let mut tx = db.begin().await?;
    if !plans::plan_exists(&mut tx, plan).await? {
        return Err(unknown_plan(plan));
    }
    if plan != DEFAULT_PLAN && !may_set_plan(owner) {
        return Err(Error::forbidden(
            "plan_requires_operator",
            format!(
                "field `plan`: only an operator may put a tenant on plan {plan:?}; new tenants \
                 start on {DEFAULT_PLAN:?}"
            ),
        ));
    }
    if !owner.is_operator() {
        check_tenant_limit(&mut tx, owner_id, max_per_account).await?;
    }
    let tenant = Tenant {
        id: new_id(),
        slug: slug.to_owned(),
        name,
        plan: plan.to_owned(),
        created_at: now,
        deleted_at: None,
        purge_after: None,
        suspended_at: None,
        suspended_reason: None,
    };
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, plan, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&tenant.id)
    .bind(&tenant.slug)
    .bind(&tenant.name)
    .bind(&tenant.plan)
    .bind(now)
    .bind(owner_id)
    .execute(&mut *tx)
    .await
    .conflict_on_unique("slug_taken", || {
        format!("field `slug`: the slug {slug:?} is taken")
    })?;
    sqlx::query(
        "INSERT INTO tenant_members (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&tenant.id)
    .bind(owner_id)
    .bind(TenantRole::Owner.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Entry {
            actor: crate::audit::Actor::User(owner_id.to_owned()),
            action: "tenant.created",
            tenant_id: Some(&tenant.id),
            subject: format!("tenant:{}", tenant.slug),
            details: serde_json::json!({"plan": tenant.plan, "name": tenant.name}),
        },
    )
    .await?;
    let on = plans::plan_in(&mut tx, &tenant.plan).await?;
    if on.price_monthly > 0 {
        // An operator put it on a paid plan: billed from now.
        crate::billing::periods::switch(&mut tx, &tenant.id, &on, false, now).await?;
    }
    tx.commit().await?;
    Ok(tenant)
}

/// Fails if user `user_id` has created `max` tenants (deleted ones count until purged). Locks
/// the user's row first, so two creations at once by one account count one after the other.
async fn check_tenant_limit(tx: &mut Tx, user_id: &str, max: u32) -> Result<()> {
    sqlx::query("UPDATE users SET name = name WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let created: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tenants WHERE created_by = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    if created >= i64::from(max) {
        return Err(Error::Conflict {
            code: "tenant_limit_reached",
            message: format!(
                "this account has created {created} tenants and the limit is {max} per \
                 account (deleted tenants count until they are purged); ask an operator to \
                 raise the limit (--max-tenants-per-account) or to create the tenant"
            ),
            details: Some(serde_json::json!({ "limit": max, "created": created })),
        });
    }
    Ok(())
}

/// The 400 for a plan that does not exist.
fn unknown_plan(plan: &str) -> Error {
    Error::bad_request(
        "unknown_plan",
        format!("field `plan`: there is no plan called {plan:?}"),
    )
}

/// A tenant with the role of the user who asked for it (`None` for an operator who is not a
/// member).
pub type TenantWithRole = (Tenant, Option<TenantRole>);

/// The live tenants user `user_id` is a member of, with their role, by slug.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list_for_user(db: &Db, user_id: &str) -> Result<Vec<TenantWithRole>> {
    let rows = sqlx::query(
        "SELECT t.id, t.slug, t.name, t.plan, t.created_at, t.deleted_at, t.purge_after, \
         t.suspended_at, t.suspended_reason, m.role \
         FROM tenants t JOIN tenant_members m ON m.tenant_id = t.id \
         WHERE m.user_id = $1 AND t.deleted_at IS NULL ORDER BY t.slug",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(with_role).collect()
}

/// Every tenant (live ones, and deleted ones too if `include_deleted`), with the role user
/// `user_id` has in each, by slug.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list_all(
    db: &Db,
    user_id: &str,
    include_deleted: bool,
) -> Result<Vec<TenantWithRole>> {
    let rows = sqlx::query(
        "SELECT t.id, t.slug, t.name, t.plan, t.created_at, t.deleted_at, t.purge_after, \
         t.suspended_at, t.suspended_reason, m.role \
         FROM tenants t LEFT JOIN tenant_members m ON m.tenant_id = t.id AND m.user_id = $1 \
         WHERE t.deleted_at IS NULL OR $2 = 1 ORDER BY t.slug",
    )
    .bind(user_id)
    .bind(i64::from(include_deleted))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(with_role).collect()
}

/// The tenants `principal` sees, by slug, with the caller's role in each: every tenant for an
/// operator (and, if `include_deleted`, those deleted but still in their grace period), else
/// the live tenants the caller belongs to.
///
/// # Errors
///
/// 403 `user_required` for an API key; 403 `forbidden` for `include_deleted` by anyone but an
/// operator; [`Error::Database`].
pub async fn visible(
    db: &Db,
    principal: &Principal,
    include_deleted: bool,
) -> Result<Vec<TenantWithRole>> {
    let user = principal.user()?;
    if user.is_operator() {
        list_all(db, &user.id, include_deleted).await
    } else if include_deleted {
        Err(Error::forbidden(
            "forbidden",
            "`include_deleted` needs the operator role",
        ))
    } else {
        list_for_user(db, &user.id).await
    }
}

fn with_role(row: &AnyRow) -> Result<TenantWithRole> {
    let role = row
        .try_get::<Option<String>, _>("role")?
        .map(|name| {
            TenantRole::parse(&name)
                .map_err(|_| Error::Internal(format!("stored tenant role {name:?}")))
        })
        .transpose()?;
    Ok((Tenant::from_row(row)?, role))
}

/// What [`update`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantChange<'a> {
    /// A new display name (owner, admin).
    pub name: Option<&'a str>,
    /// Another plan (operators only).
    pub plan: Option<&'a str>,
}

/// Whether `user` may choose a tenant's plan (other than [`DEFAULT_PLAN`] for a new one):
/// only operators may; a tenant admin asks one. [`create`] and [`update`] enforce it.
pub fn may_set_plan(user: &UserCaller) -> bool {
    user.is_operator()
}

/// [`may_set_plan`] for any caller (an API key may not): what pages ask to show or hide the
/// plan controls.
pub fn may_change_plan(principal: &Principal) -> bool {
    principal.user().is_ok_and(may_set_plan)
}

/// Renames tenant `slug` (owner, admin) and/or moves it to another plan (operators) as
/// `principal`; returns the access with the tenant as it now is. A move reaches the tenant's
/// running installs at once: their next calls run under the new plan's limits
/// ([`crate::installs::sync::apply_plan`]).
///
/// # Errors
///
/// As [`authorize`] (admin); 403 `plan_requires_operator` for a plan change by anyone but an
/// operator; [`Error::BadRequest`] (`invalid_name`, `unknown_plan`); [`Error::NotFound`] if it
/// was deleted meanwhile.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    change: TenantChange<'_>,
) -> Result<Access> {
    let access = authorize(state.db(), principal, slug, TenantRole::Admin).await?;
    if change.plan.is_some() && !may_change_plan(principal) {
        return Err(Error::forbidden(
            "plan_requires_operator",
            "field `plan`: only an operator may change a tenant's plan",
        ));
    }
    let tenant = &access.tenant;
    let TenantChange { name, plan } = change;
    let db = state.db();
    let name = name.map(validate_name).transpose()?;
    let mut tx = db.begin_tenant(&tenant.id).await?;
    lock_tenant(&mut tx, tenant).await?;
    if let Some(plan) = plan
        && !plans::plan_exists(&mut tx, plan).await?
    {
        return Err(unknown_plan(plan));
    }
    let mut updated = tenant.clone();
    if let Some(name) = name {
        updated.name = name;
    }
    if let Some(plan) = plan {
        plan.clone_into(&mut updated.plan);
    }
    sqlx::query("UPDATE tenants SET name = $1, plan = $2 WHERE id = $3")
        .bind(&updated.name)
        .bind(&updated.plan)
        .bind(&updated.id)
        .execute(&mut *tx)
        .await?;
    if let Some(plan) = plan
        && plan != tenant.plan
    {
        // What the tenant is on, from now: what its invoices prorate.
        let plan = plans::plan_in(&mut tx, plan).await?;
        crate::billing::periods::switch(&mut tx, &updated.id, &plan, false, crate::clock::now_ms())
            .await?;
        crate::audit::record(
            &mut tx,
            crate::audit::Entry {
                actor: crate::audit::Actor::from(principal),
                action: "tenant.plan_changed",
                tenant_id: Some(&updated.id),
                subject: format!("tenant:{}", updated.slug),
                details: serde_json::json!({"from": tenant.plan, "to": plan.name}),
            },
        )
        .await?;
    }
    tx.commit().await?;
    db.changed(Topic::Access);
    if plan.is_some() {
        sync::apply_plan(state, PlanScope::Tenant(&updated.id)).await;
    }
    Ok(Access {
        tenant: updated,
        acting: access.acting,
    })
}

/// Soft-deletes `tenant` at `now`: it answers 404 from now on, its API keys are revoked, and it
/// may be purged after `now + grace_ms`. Returns it as it now is.
///
/// # Errors
///
/// [`Error::NotFound`] if it was deleted meanwhile; [`Error::Database`].
pub async fn soft_delete(db: &Db, tenant: &Tenant, now: i64, grace_ms: i64) -> Result<Tenant> {
    let purge_after = now.saturating_add(grace_ms);
    let mut tx = db.begin_tenant(&tenant.id).await?;
    let deleted = sqlx::query(
        "UPDATE tenants SET deleted_at = $1, purge_after = $2 WHERE id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(purge_after)
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(tenant_not_found(&tenant.slug));
    }
    // Revoked at exactly the deletion time, so a restore can tell which keys to bring back.
    sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND kind = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&tenant.id)
    .bind(crate::auth::token::TokenKind::TenantKey.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    db.changed(Topic::Access);
    Ok(Tenant {
        deleted_at: Some(now),
        purge_after: Some(purge_after),
        ..tenant.clone()
    })
}

/// Undoes the deletion of tenant `slug` while it is within its grace period: it is live again
/// and the API keys its deletion revoked work again (keys revoked before stay revoked).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown tenant; [`Error::Conflict`] (`not_deleted`) for a live
/// one, (`grace_expired`) for one past its grace period.
pub async fn restore(db: &Db, slug: &str, now: i64) -> Result<Tenant> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM tenants WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| tenant_not_found(slug))?;
    let tenant = Tenant::from_row(&row)?;
    let Some(deleted_at) = tenant.deleted_at else {
        return Err(Error::conflict(
            "not_deleted",
            format!("tenant {slug:?} is not deleted"),
        ));
    };
    if tenant
        .purge_after
        .is_some_and(|purge_after| purge_after <= now)
    {
        return Err(Error::conflict(
            "grace_expired",
            format!("tenant {slug:?} is past its grace period and is being purged"),
        ));
    }
    let restored = sqlx::query(
        "UPDATE tenants SET deleted_at = NULL, purge_after = NULL \
         WHERE id = $1 AND deleted_at = $2",
    )
    .bind(&tenant.id)
    .bind(deleted_at)
    .execute(&mut *tx)
    .await?;
    if restored.rows_affected() == 0 {
        return Err(Error::conflict(
            "not_deleted",
            format!("tenant {slug:?} changed meanwhile; try again"),
        ));
    }
    sqlx::query(
        "UPDATE tokens SET revoked_at = NULL WHERE tenant_id = $1 AND kind = $2 AND revoked_at = $3",
    )
    .bind(&tenant.id)
    .bind(crate::auth::token::TokenKind::TenantKey.as_str())
    .bind(deleted_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    db.changed(Topic::Access);
    Ok(Tenant {
        deleted_at: None,
        purge_after: None,
        ..tenant
    })
}

/// Removes for good every deleted tenant whose grace period ended by `now` (Unix ms), with its
/// members, tokens, notifications and everything else that references it (`ON DELETE
/// CASCADE`); returns the ids of the tenants purged. Their data in the host (kv entries) is
/// the host's to delete: [`purge_expired_everywhere`].
///
/// # Errors
///
/// [`Error::Database`].
pub async fn purge_expired(db: &Db, now: i64) -> Result<Vec<String>> {
    let mut tx = db.begin().await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM tenants WHERE deleted_at IS NOT NULL AND purge_after <= $1",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut purged = Vec::new();
    for id in ids {
        // Notifications, usage and runs name their tenant without a foreign key.
        sqlx::query(
            "DELETE FROM notifications WHERE recipient_kind = 'tenant' AND recipient_id = $1",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM usage_counters WHERE tenant_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for table in ["run_batches", "shared_runs", "run_daily"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1"
            )))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        }
        crate::ratings::forget_tenant(&mut tx, &id).await?;
        crate::notifications::webhooks::forget(&mut tx, "tenant", &id).await?;
        let deleted = sqlx::query(
            "DELETE FROM tenants WHERE id = $1 AND deleted_at IS NOT NULL AND purge_after <= $2",
        )
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted > 0 {
            purged.push(id);
        }
    }
    tx.commit().await?;
    if !purged.is_empty() {
        db.changed(Topic::Access);
        tracing::info!(
            purged = purged.len(),
            "purged deleted tenants past their grace period"
        );
    }
    Ok(purged)
}

/// [`purge_expired`], then the purged tenants' data in the host this server runs (if any): their
/// kv entries. Returns how many tenants were purged.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Internal`] if the host cannot delete a purged tenant's data (it
/// is logged, and the tenant's rows are gone already: an operator deletes what is left).
pub async fn purge_expired_everywhere(state: &crate::AppState, now: i64) -> Result<usize> {
    let purged = purge_expired(state.db(), now).await?;
    if let Ok(runtime) = state.runtime() {
        for id in &purged {
            if let Err(e) = runtime.host.purge_tenant(id).await {
                tracing::error!(tenant = %id, error = %e, "cannot delete a purged tenant's kv data");
                return Err(Error::Internal(format!(
                    "deleting tenant {id}'s kv data: {e}"
                )));
            }
        }
    }
    Ok(purged.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(TenantRole::Readonly < TenantRole::Member);
        assert!(TenantRole::Member < TenantRole::Admin);
        assert!(TenantRole::Admin < TenantRole::Owner);
        for role in ["owner", "admin", "member", "readonly"] {
            assert_eq!(TenantRole::parse(role).unwrap().as_str(), role);
        }
        let err = TenantRole::parse("boss").unwrap_err();
        assert!(err.to_string().contains("`role`"), "{err}");
    }

    #[test]
    fn slugs_follow_the_rules() {
        for good in ["ab", "acme", "acme-2", "a1", &"a".repeat(40)] {
            validate_slug(good).unwrap();
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "-acme",
            "ac me",
            "acmé",
            &"a".repeat(41),
        ] {
            let err = validate_slug(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_slug", "{bad}");
            assert!(err.to_string().contains("`slug`"), "{err}");
        }
    }
}
