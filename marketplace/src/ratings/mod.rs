//! Ratings: 1–5 stars and an optional text from a person whose tenant uses (or used) a plugin,
//! the publisher's reply, and moderation by reviewers.
//!
//! - A tenant admin rates through `PUT /v1/plugins/{id}/ratings/{tenant}` when the tenant has
//!   the plugin installed now, or had it installed for at least [`MIN_PAST_INSTALL_MS`] (see
//!   [`crate::installs::history`]). One rating per person (account) per plugin, whatever the
//!   number of their tenants: a second `PUT`, through any of them, edits it.
//! - Members of the plugin's own publisher do not rate it (`own_publisher`).
//! - A rating is shown with its id and the rater's display name, never the tenant's slug;
//!   replies and moderation address it by id.
//! - `plugins.rating_sum` and `rating_count` change in the rating's transaction; the plugin row
//!   is locked first, so concurrent ratings of one plugin add up.
//! - Hiding (reviewers) hides the text, never the stars: a rating is an honest signal even
//!   when its words are abusive. An edit keeps a hidden text hidden until a reviewer unhides it.
//! - A new or changed rating notifies the publisher; a reply or a hide notifies the tenant.
//!   Replies and moderation are audited.

mod routes;

pub(crate) use routes::routes;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::audit::{self, Actor};
use crate::auth::Principal;
use crate::catalog::Visibility;
use crate::clock::{DAY_MS, now_ms, rfc3339};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::notifications::notify;
use crate::tenants::Tenant;

/// How long a tenant must have had a plugin installed to rate it after uninstalling.
pub const MIN_PAST_INSTALL_MS: i64 = DAY_MS;
/// The longest rating text or reply, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The longest reason for hiding a rating, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Page size of a listing when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest page size of a listing.
pub const MAX_LIMIT: i64 = 100;

/// A publisher's reply to a rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplyView {
    /// What the publisher wrote.
    pub text: String,
    /// When (RFC 3339, UTC).
    pub replied_at: String,
}

/// A rating as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RatingView {
    /// The rating's id (replies and moderation name it).
    pub id: String,
    /// The display name of the person who rated.
    pub rater: String,
    /// 1 to 5.
    pub stars: i64,
    /// The text; null when there is none, or when it is hidden (reviewers see it in listings;
    /// the person who wrote it sees it in the answers to their own rating and to moderation).
    pub text: Option<String>,
    /// Whether a reviewer hid the text.
    pub hidden: bool,
    /// Why it was hidden (shown where the text is; the tenant is also notified of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_reason: Option<String>,
    /// When it was first given (RFC 3339, UTC).
    pub created_at: String,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: String,
    /// The publisher's reply, if any.
    pub reply: Option<ReplyView>,
}

/// Whether a caller sees a hidden text and the reason it was hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// The public: a hidden text is null.
    Public,
    /// Reviewers, and the person who wrote it: everything.
    Everything,
}

/// The columns of a [`RatingView`], from `ratings r JOIN users u ON u.id = r.rated_by`.
const COLUMNS: &str = "r.id, u.name AS rater, r.stars, r.body, r.hidden_at, r.hidden_reason, \
                       r.created_at, r.updated_at, r.reply, r.replied_at";
/// What [`COLUMNS`] are selected from.
const FROM: &str = "ratings r JOIN users u ON u.id = r.rated_by";

fn view(row: &AnyRow, reveal: Reveal) -> Result<RatingView> {
    let hidden = row.try_get::<Option<i64>, _>("hidden_at")?.is_some();
    let shown = !hidden || reveal == Reveal::Everything;
    let reply: Option<String> = row.try_get("reply")?;
    let replied_at: Option<i64> = row.try_get("replied_at")?;
    Ok(RatingView {
        id: row.try_get("id")?,
        rater: row.try_get("rater")?,
        stars: row.try_get("stars")?,
        text: if shown { row.try_get("body")? } else { None },
        hidden,
        hidden_reason: if shown {
            row.try_get("hidden_reason")?
        } else {
            None
        },
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        reply: reply.map(|text| ReplyView {
            text,
            replied_at: rfc3339(replied_at.unwrap_or_default()),
        }),
    })
}

/// Trims `text`; `None` if nothing is left.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_body` naming `field` when it is longer than `max` characters.
pub(crate) fn clean_text(field: &str, text: Option<&str>, max: usize) -> Result<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(Error::bad_request(
            "invalid_body",
            format!("field `{field}` is longer than {max} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Checks stars: a whole number from 1 to 5.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_body` naming `stars`.
pub fn check_stars(stars: i64) -> Result<i64> {
    if (1..=5).contains(&stars) {
        Ok(stars)
    } else {
        Err(Error::bad_request(
            "invalid_body",
            format!("field `stars` must be a whole number from 1 to 5, not {stars}"),
        ))
    }
}

fn unknown_plugin(plugin_id: &str) -> Error {
    Error::not_found(format!("plugin {plugin_id:?}"))
}

fn unknown_rating(plugin_id: &str, rating_id: &str) -> Error {
    Error::not_found(format!("rating {rating_id:?} of plugin {plugin_id:?}"))
}

/// Locks the plugin row in `tx` (so its aggregates change one rating at a time) and returns
/// its publisher's id. Blocked plugins count as unknown unless `include_blocked`.
async fn lock_plugin(tx: &mut Tx, plugin_id: &str, include_blocked: bool) -> Result<String> {
    let row = sqlx::query(
        "UPDATE plugins SET rating_count = rating_count WHERE id = $1 \
         RETURNING publisher_id, blocked_at",
    )
    .bind(plugin_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| unknown_plugin(plugin_id))?;
    if !include_blocked && row.try_get::<Option<i64>, _>("blocked_at")?.is_some() {
        return Err(unknown_plugin(plugin_id));
    }
    Ok(row.try_get("publisher_id")?)
}

/// The outcome of [`rate`].
#[derive(Debug, Clone)]
pub struct Rated {
    /// The rating as it now is, as its author sees it.
    pub rating: RatingView,
    /// Whether it is the person's first rating of the plugin (else an edit).
    pub created: bool,
}

/// Rates `plugin_id` as `user_id`, an admin of `tenant`: creates the person's rating of the
/// plugin or edits it (through whichever of their tenants), updates the plugin's aggregates and
/// notifies the publisher, in one transaction.
///
/// # Errors
///
/// [`Error::BadRequest`] for stars outside 1–5 or a text too long; [`Error::NotFound`] for an
/// unknown or blocked plugin; [`Error::Forbidden`] `own_publisher` for a member of the
/// plugin's publisher, `not_installed` when the tenant neither has the plugin installed nor had
/// it for [`MIN_PAST_INSTALL_MS`]; [`Error::Database`].
pub async fn rate(
    db: &Db,
    tenant: &Tenant,
    user_id: &str,
    plugin_id: &str,
    stars: i64,
    text: Option<&str>,
) -> Result<Rated> {
    let stars = check_stars(stars)?;
    let text = clean_text("text", text, MAX_TEXT_CHARS)?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    let publisher_id = lock_plugin(&mut tx, plugin_id, false).await?;
    if crate::publishers::member_role_in(&mut tx, &publisher_id, user_id)
        .await?
        .is_some()
    {
        return Err(Error::forbidden(
            "own_publisher",
            format!("you are a member of {plugin_id}'s publisher; its users rate it, not you"),
        ));
    }
    if !crate::installs::history::has_used(&mut tx, &tenant.id, plugin_id, MIN_PAST_INSTALL_MS)
        .await?
    {
        return Err(Error::forbidden(
            "not_installed",
            format!(
                "tenant {:?} may rate {plugin_id} only while it has it installed, or after having \
                 had it installed for at least a day",
                tenant.slug
            ),
        ));
    }
    let previous =
        sqlx::query("SELECT id, stars FROM ratings WHERE plugin_id = $1 AND rated_by = $2")
            .bind(plugin_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| {
                Ok::<_, Error>((
                    row.try_get::<String, _>("id")?,
                    row.try_get::<i64, _>("stars")?,
                ))
            })
            .transpose()?;
    let rating_id = match &previous {
        Some((id, _)) => {
            sqlx::query(
                "UPDATE ratings SET stars = $1, body = $2, tenant_id = $3, updated_at = $4 \
                 WHERE id = $5",
            )
            .bind(stars)
            .bind(text.as_deref())
            .bind(&tenant.id)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            id.clone()
        }
        None => {
            let id = crate::id::new_id();
            sqlx::query(
                "INSERT INTO ratings (id, plugin_id, tenant_id, rated_by, stars, body, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(plugin_id)
            .bind(&tenant.id)
            .bind(user_id)
            .bind(stars)
            .bind(text.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    let previous_stars = previous.as_ref().map(|(_, stars)| *stars);
    sqlx::query(
        "UPDATE plugins SET rating_sum = rating_sum + $1, rating_count = rating_count + $2 \
         WHERE id = $3",
    )
    .bind(stars - previous_stars.unwrap_or(0))
    .bind(i64::from(previous.is_none()))
    .bind(plugin_id)
    .execute(&mut *tx)
    .await?;
    let rating = fetch(&mut tx, plugin_id, &rating_id, Reveal::Everything).await?;
    let (kind, verb) = match previous {
        None => ("rating_created", "rated"),
        Some(_) => ("rating_changed", "changed their rating of"),
    };
    notify(
        &mut tx,
        "publisher",
        &publisher_id,
        kind,
        &format!("{} {verb} {plugin_id}: {stars} stars.", rating.rater),
        json!({
            "plugin": plugin_id,
            "rating": rating_id,
            "rater": rating.rater,
            "stars": stars,
            "previous_stars": previous_stars,
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(plugin = plugin_id, rating = %rating_id, stars, "rated");
    Ok(Rated {
        rating,
        created: previous.is_none(),
    })
}

/// The rating `rating_id` of `plugin_id`, read in `tx`.
async fn fetch(
    tx: &mut Tx,
    plugin_id: &str,
    rating_id: &str,
    reveal: Reveal,
) -> Result<RatingView> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE r.plugin_id = $1 AND r.id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plugin_id)
        .bind(rating_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| unknown_rating(plugin_id, rating_id))?;
    view(&row, reveal)
}

/// The id of the tenant through which rating `rating_id` of `plugin_id` was last given, read
/// in `tx` (its inbox hears of replies and moderation).
async fn rating_tenant(tx: &mut Tx, plugin_id: &str, rating_id: &str) -> Result<String> {
    sqlx::query_scalar("SELECT tenant_id FROM ratings WHERE plugin_id = $1 AND id = $2")
        .bind(plugin_id)
        .bind(rating_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| unknown_rating(plugin_id, rating_id))
}

/// The publisher's reply to rating `rating_id` of `plugin_id` (replacing an earlier
/// reply); the caller must be a member of the plugin's publisher (or its API key). Audited,
/// and the tenant is notified.
///
/// # Errors
///
/// [`Error::BadRequest`] for an empty or too long text; [`Error::NotFound`] for an unknown
/// plugin or rating; [`Error::Forbidden`] `not_publisher_member` for anyone else;
/// [`Error::Database`].
pub async fn reply(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    rating_id: &str,
    text: &str,
) -> Result<RatingView> {
    let text = clean_text("text", Some(text), MAX_TEXT_CHARS)?
        .ok_or_else(|| Error::bad_request("invalid_body", "field `text` must not be empty"))?;
    let (publisher_id, namespace) = crate::catalog::publisher_of(db, plugin_id).await?;
    let member = match crate::publishers::membership(db, principal, &namespace).await {
        Ok(member) => member,
        Err(Error::NotFound(_)) => {
            return Err(Error::forbidden(
                "not_publisher_member",
                format!(
                    "only members of publisher {namespace:?} may reply to ratings of {plugin_id}"
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let mut tx = db.begin().await?;
    lock_plugin(&mut tx, plugin_id, true).await?;
    let tenant_id = rating_tenant(&mut tx, plugin_id, rating_id).await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE ratings SET reply = $1, replied_by = $2, replied_at = $3 \
         WHERE plugin_id = $4 AND id = $5",
    )
    .bind(&text)
    .bind(&member.user_id)
    .bind(now)
    .bind(plugin_id)
    .bind(rating_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::from(principal),
            action: "rating.replied",
            tenant_id: Some(&tenant_id),
            subject: format!("rating:{plugin_id}/{rating_id}"),
            details: json!({ "publisher": publisher_id, "text": text }),
        },
    )
    .await?;
    notify(
        &mut tx,
        "tenant",
        &tenant_id,
        "rating_replied",
        &format!("The publisher of {plugin_id} replied to your rating."),
        json!({ "plugin": plugin_id, "rating": rating_id }),
    )
    .await?;
    let rating = fetch(&mut tx, plugin_id, rating_id, Reveal::Public).await?;
    tx.commit().await?;
    Ok(rating)
}

/// Checks that the caller may moderate ratings of `plugin_id`: a reviewer (or operator) who
/// is not a member of the plugin's publisher.
async fn moderator<'p>(
    db: &Db,
    principal: &'p Principal,
    plugin_id: &str,
) -> Result<crate::auth::Reviewer<'p>> {
    let user = principal.reviewer()?;
    let (publisher_id, namespace) = crate::catalog::publisher_of(db, plugin_id).await?;
    if !crate::review::may_judge(db, &user, &publisher_id).await? {
        return Err(Error::forbidden(
            "own_publisher",
            format!(
                "you are a member of publisher {namespace:?}; another reviewer must moderate its ratings"
            ),
        ));
    }
    Ok(user)
}

/// Hides the text of rating `rating_id` of `plugin_id` (reviewers), with a reason the
/// rater's tenant is told. Audited.
///
/// # Errors
///
/// [`Error::Forbidden`] for a caller who is not a reviewer or is a member of the plugin's
/// publisher; [`Error::BadRequest`] for a missing or too long reason; [`Error::NotFound`];
/// [`Error::Conflict`] `already_hidden`; [`Error::Database`].
pub async fn hide(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    rating_id: &str,
    reason: &str,
) -> Result<RatingView> {
    let user = moderator(db, principal, plugin_id).await?;
    let reason = clean_text("reason", Some(reason), MAX_REASON_CHARS)?
        .ok_or_else(|| Error::bad_request("invalid_body", "field `reason` must not be empty"))?;
    let mut tx = db.begin().await?;
    lock_plugin(&mut tx, plugin_id, true).await?;
    let tenant_id = rating_tenant(&mut tx, plugin_id, rating_id).await?;
    let hidden = sqlx::query(
        "UPDATE ratings SET hidden_at = $1, hidden_by = $2, hidden_reason = $3 \
         WHERE plugin_id = $4 AND id = $5 AND hidden_at IS NULL",
    )
    .bind(now_ms())
    .bind(&user.id)
    .bind(&reason)
    .bind(plugin_id)
    .bind(rating_id)
    .execute(&mut *tx)
    .await?;
    if hidden.rows_affected() == 0 {
        return Err(Error::conflict(
            "already_hidden",
            format!("rating {rating_id:?} of {plugin_id} is hidden already"),
        ));
    }
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::from(principal),
            action: "rating.hidden",
            tenant_id: Some(&tenant_id),
            subject: format!("rating:{plugin_id}/{rating_id}"),
            details: json!({ "reason": reason }),
        },
    )
    .await?;
    notify(
        &mut tx,
        "tenant",
        &tenant_id,
        "rating_hidden",
        &format!("A reviewer hid the text of your rating of {plugin_id}: {reason}"),
        json!({ "plugin": plugin_id, "rating": rating_id, "reason": reason }),
    )
    .await?;
    let rating = fetch(&mut tx, plugin_id, rating_id, Reveal::Everything).await?;
    tx.commit().await?;
    Ok(rating)
}

/// Shows the hidden text of rating `rating_id` of `plugin_id` again (reviewers).
/// Audited.
///
/// # Errors
///
/// As [`hide`], with [`Error::Conflict`] `not_hidden`.
pub async fn unhide(
    db: &Db,
    principal: &Principal,
    plugin_id: &str,
    rating_id: &str,
) -> Result<RatingView> {
    moderator(db, principal, plugin_id).await?;
    let mut tx = db.begin().await?;
    lock_plugin(&mut tx, plugin_id, true).await?;
    let tenant_id = rating_tenant(&mut tx, plugin_id, rating_id).await?;
    let shown = sqlx::query(
        "UPDATE ratings SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL \
         WHERE plugin_id = $1 AND id = $2 AND hidden_at IS NOT NULL",
    )
    .bind(plugin_id)
    .bind(rating_id)
    .execute(&mut *tx)
    .await?;
    if shown.rows_affected() == 0 {
        return Err(Error::conflict(
            "not_hidden",
            format!("rating {rating_id:?} of {plugin_id} is not hidden"),
        ));
    }
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::from(principal),
            action: "rating.unhidden",
            tenant_id: Some(&tenant_id),
            subject: format!("rating:{plugin_id}/{rating_id}"),
            details: json!({}),
        },
    )
    .await?;
    let rating = fetch(&mut tx, plugin_id, rating_id, Reveal::Public).await?;
    tx.commit().await?;
    Ok(rating)
}

/// Ratings per number of stars, keyed `"1"` to `"5"` (every key present).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn histogram(db: &Db, plugin_id: &str) -> Result<BTreeMap<String, i64>> {
    let mut buckets: BTreeMap<String, i64> = (1..=5).map(|s| (s.to_string(), 0)).collect();
    let rows =
        sqlx::query("SELECT stars, COUNT(*) AS n FROM ratings WHERE plugin_id = $1 GROUP BY stars")
            .bind(plugin_id)
            .fetch_all(db.pool())
            .await?;
    for row in rows {
        let stars: i64 = row.try_get("stars")?;
        buckets.insert(stars.to_string(), row.try_get("n")?);
    }
    Ok(buckets)
}

/// Where a listing continues: after the rating `id`, last updated at `updated_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The last rating's `updated_at` (Unix ms).
    pub updated_at: i64,
    /// The last rating's id.
    pub id: String,
}

impl After {
    /// The opaque cursor text.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.updated_at, self.id))
    }

    /// Parses a cursor made by [`After::encode`].
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] `invalid_query` naming `cursor`.
    pub fn decode(text: &str) -> Result<After> {
        use base64::Engine;
        let invalid = || {
            Error::bad_request(
                "invalid_query",
                "query parameter `cursor` is not valid; pass the next_cursor of the previous page unchanged",
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (at, id) = text.split_once(':').ok_or_else(invalid)?;
        Ok(After {
            updated_at: at.parse().map_err(|_| invalid())?,
            id: id.to_owned(),
        })
    }
}

/// A page of a plugin's ratings, most recently changed first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RatingPage {
    /// Average, count and histogram over every rating.
    pub summary: crate::catalog::RatingSummary,
    /// The ratings on this page.
    pub items: Vec<RatingView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of the ratings of `plugin_id`, if `visibility` shows the plugin.
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown (or hidden) plugin; [`Error::Database`].
pub async fn list(
    db: &Db,
    plugin_id: &str,
    visibility: &Visibility,
    reveal: Reveal,
    limit: i64,
    after: Option<&After>,
) -> Result<RatingPage> {
    let (shown, args) = visibility.condition(2);
    let sql =
        format!("SELECT p.rating_sum, p.rating_count FROM plugins p WHERE p.id = $1 AND {shown}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(plugin_id);
    for arg in args {
        query = query.bind(arg);
    }
    let plugin = query
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| unknown_plugin(plugin_id))?;
    let sum: i64 = plugin.try_get("rating_sum")?;
    let count: i64 = plugin.try_get("rating_count")?;
    let limit = limit.clamp(1, MAX_LIMIT);
    let (at, id) = after.map_or((i64::MAX, ""), |a| (a.updated_at, a.id.as_str()));
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} \
         WHERE r.plugin_id = $1 AND (r.updated_at < $2 OR (r.updated_at = $2 AND r.id > $3)) \
         ORDER BY r.updated_at DESC, r.id LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(plugin_id)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(db.pool())
        .await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = match rows.get(page.saturating_sub(1)) {
        Some(last) if rows.len() > page => Some(
            After {
                updated_at: last.try_get("updated_at")?,
                id: last.try_get("id")?,
            }
            .encode(),
        ),
        _ => None,
    };
    let items = rows
        .iter()
        .take(page)
        .map(|row| view(row, reveal))
        .collect::<Result<Vec<_>>>()?;
    Ok(RatingPage {
        summary: crate::catalog::RatingSummary {
            average: crate::catalog::average(sum, count),
            count,
            histogram: histogram(db, plugin_id).await?,
        },
        items,
        next_cursor,
    })
}

/// Removes every rating of tenant `tenant_id` and takes them out of their plugins' aggregates,
/// in `tx` (a tenant being purged).
///
/// # Errors
///
/// [`Error::Database`].
pub async fn forget_tenant(tx: &mut Tx, tenant_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE plugins SET \
             rating_sum = rating_sum - (SELECT r.stars FROM ratings r \
                                        WHERE r.plugin_id = plugins.id AND r.tenant_id = $1), \
             rating_count = rating_count - 1 \
         WHERE id IN (SELECT plugin_id FROM ratings WHERE tenant_id = $1)",
    )
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM ratings WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_are_one_to_five() {
        for ok in 1..=5 {
            assert_eq!(check_stars(ok).ok(), Some(ok));
        }
        for bad in [0, 6, -1] {
            let err = check_stars(bad).unwrap_err();
            assert!(err.to_string().contains("`stars`"), "{err}");
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() -> Result<()> {
        assert_eq!(clean_text("text", Some("  "), 5)?, None);
        assert_eq!(clean_text("text", Some(" ok "), 5)?, Some("ok".to_owned()));
        let err = clean_text("text", Some("toolong"), 5).unwrap_err();
        assert!(err.to_string().contains("`text`"), "{err}");
        Ok(())
    }

    #[test]
    fn cursors_round_trip() -> Result<()> {
        let after = After {
            updated_at: 1_795_000_000_123,
            id: "0190d6a4-6f1c-7c3e-9a51-3f2b8f7c1d20".to_owned(),
        };
        assert_eq!(After::decode(&after.encode())?, after);
        assert!(After::decode("nope!").is_err());
        Ok(())
    }
}
