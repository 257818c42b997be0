//! Who belongs to a tenant, and with which [`TenantRole`].
//!
//! Changes run in one transaction that first locks the tenant, so the rule "a tenant always has
//! an owner" holds even when two admins act at once.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Tenant, TenantRole, lock_tenant};
use crate::accounts::normalize_email;
use crate::db::{Db, Tx};
use crate::error::{ConflictOnUnique, Error, Result};

/// A member of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user's id.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    pub name: String,
    /// The user's role in the tenant.
    pub role: TenantRole,
    /// When they joined (Unix ms).
    pub created_at: i64,
}

fn from_row(row: &AnyRow) -> Result<Member> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: TenantRole::parse(&role)
            .map_err(|_| Error::Internal(format!("stored tenant role {role:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

/// The start of a query for members with their accounts.
macro_rules! select {
    () => {
        "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
         FROM tenant_members m JOIN users u ON u.id = m.user_id"
    };
}

/// The members of `tenant`, owners first.
///
/// # Errors
///
/// [`Error::Database`].
pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<Member>> {
    let mut tx = db.begin_tenant_read(&tenant.id).await?;
    let rows = sqlx::query(concat!(
        select!(),
        " WHERE m.tenant_id = $1 ORDER BY m.created_at, u.email"
    ))
    .bind(&tenant.id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut members = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    members.sort_by_key(|m| std::cmp::Reverse(m.role));
    Ok(members)
}

async fn member_in(tx: &mut Tx, tenant: &Tenant, user_id: &str) -> Result<Member> {
    let row = sqlx::query(concat!(
        select!(),
        " WHERE m.tenant_id = $1 AND m.user_id = $2"
    ))
    .bind(&tenant.id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("member {user_id} of tenant {:?}", tenant.slug)))?;
    from_row(&row)
}

async fn owners(tx: &mut Tx, tenant: &Tenant) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM tenant_members WHERE tenant_id = $1 AND role = 'owner'",
    )
    .bind(&tenant.id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Only an owner (or an operator, who acts as one) may make owners or touch an owner.
fn check_owner_rule(acting_as: TenantRole, what: &str) -> Result<()> {
    if acting_as < TenantRole::Owner {
        return Err(Error::forbidden(
            "forbidden",
            format!("only an owner may {what}"),
        ));
    }
    Ok(())
}

fn last_owner(tenant: &Tenant) -> Error {
    Error::conflict(
        "last_owner",
        format!(
            "this is the last owner of tenant {:?}; make another member an owner first",
            tenant.slug
        ),
    )
}

/// Adds the user with `email` to `tenant` as `role`, on behalf of a caller acting as
/// `acting_as`.
///
/// # Errors
///
/// [`Error::Forbidden`] if a non-owner adds an owner; [`Error::NotFound`] for an email without
/// an account; [`Error::Conflict`] (`already_member`).
pub async fn add(
    db: &Db,
    tenant: &Tenant,
    acting_as: TenantRole,
    email: &str,
    role: TenantRole,
    now: i64,
) -> Result<Member> {
    if role == TenantRole::Owner {
        check_owner_rule(acting_as, "add an owner")?;
    }
    let email = normalize_email(email)?;
    let mut tx = db.begin_tenant(&tenant.id).await?;
    lock_tenant(&mut tx, tenant).await?;
    let user = sqlx::query("SELECT id, name FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("account {email}")))?;
    let user_id: String = user.try_get("id")?;
    let name: String = user.try_get("name")?;
    sqlx::query(
        "INSERT INTO tenant_members (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&tenant.id)
    .bind(&user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .conflict_on_unique("already_member", || {
        format!("{email} is a member of tenant {:?} already", tenant.slug)
    })?;
    tx.commit().await?;
    Ok(Member {
        user_id,
        email,
        name,
        role,
        created_at: now,
    })
}

/// Gives member `user_id` of `tenant` the role `role`, on behalf of a caller acting as
/// `acting_as`.
///
/// # Errors
///
/// [`Error::NotFound`] for a non-member; [`Error::Forbidden`] if a non-owner makes an owner or
/// changes an owner; [`Error::Conflict`] (`last_owner`) when demoting the last owner.
pub async fn set_role(
    db: &Db,
    tenant: &Tenant,
    acting_as: TenantRole,
    user_id: &str,
    role: TenantRole,
) -> Result<Member> {
    let mut tx = db.begin_tenant(&tenant.id).await?;
    lock_tenant(&mut tx, tenant).await?;
    let mut member = member_in(&mut tx, tenant, user_id).await?;
    if role == TenantRole::Owner {
        check_owner_rule(acting_as, "make a member an owner")?;
    }
    if member.role == TenantRole::Owner {
        check_owner_rule(acting_as, "change an owner's role")?;
        if role != TenantRole::Owner && owners(&mut tx, tenant).await? <= 1 {
            return Err(last_owner(tenant));
        }
    }
    sqlx::query("UPDATE tenant_members SET role = $1 WHERE tenant_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(&tenant.id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    member.role = role;
    Ok(member)
}

/// Removes member `user_id` from `tenant`, on behalf of a caller acting as `acting_as`.
///
/// # Errors
///
/// [`Error::NotFound`] for a non-member; [`Error::Forbidden`] if a non-owner removes an owner;
/// [`Error::Conflict`] (`last_owner`) for the last owner.
pub async fn remove(db: &Db, tenant: &Tenant, acting_as: TenantRole, user_id: &str) -> Result<()> {
    let mut tx = db.begin_tenant(&tenant.id).await?;
    lock_tenant(&mut tx, tenant).await?;
    let member = member_in(&mut tx, tenant, user_id).await?;
    if member.role == TenantRole::Owner {
        check_owner_rule(acting_as, "remove an owner")?;
        if owners(&mut tx, tenant).await? <= 1 {
            return Err(last_owner(tenant));
        }
    }
    sqlx::query("DELETE FROM tenant_members WHERE tenant_id = $1 AND user_id = $2")
        .bind(&tenant.id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
