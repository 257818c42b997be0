//! `GET /v1/plugins`: full-text search with filters, four sort orders and opaque cursors.
//!
//! The user's text is never spliced into SQL nor handed raw to a full-text engine: it is cut
//! into words of letters and digits ([`tokenize`]), and each backend builds its own query
//! from those words (see `crate::db::sqlite::search` and `crate::db::postgres::search`),
//! bound as a parameter. Only fixed SQL fragments and `$n` placeholders are concatenated.
//!
//! Paging: relevance pages by offset (scores are floats, not keys); installs, rating and
//! recent page by keyset on `(sort key, id)`, so inserts between pages neither repeat nor skip
//! rows. A cursor is base64url of a small JSON object and is tied to its sort order.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PluginSummary, Visibility, average};
use crate::db::{Backend, Db};
use crate::error::{Error, Result};

/// Most characters accepted in `q`.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words of `q` searched for; later words are ignored.
pub const MAX_QUERY_TOKENS: usize = 12;
/// Most characters of one searched word; longer words are cut.
pub const MAX_TOKEN_CHARS: usize = 64;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Capability names `permission` accepts.
pub const PERMISSIONS: [&str; 6] = [
    "kv",
    "http",
    "events",
    "events.subscribe",
    "events.emit",
    "config",
];

/// Pricing models `pricing` accepts.
pub const PRICING_MODELS: [&str; 3] = ["free", "monthly", "per-1000-invocations"];

/// The prior mean of the damped rating `sort=rating` orders by, in thousandths of a star.
///
/// `sort=rating` ranks by a Bayesian (damped) average: every plugin starts with
/// [`RATING_PRIOR_WEIGHT`] imaginary ratings of this mean, so
/// `damped = (C·m + sum) / (C + count)`, in integer thousandths of a star (the same integer
/// division on both backends). With m = 3.000 and C = 10, one 5-star rating ranks at 3.181
/// while 500 ratings averaging 4.8 rank at 4.764: many good ratings beat a few perfect ones,
/// and the damping fades as ratings accumulate. The shown `rating` stays the plain average.
pub const RATING_PRIOR_MILLISTARS: i64 = 3000;

/// The weight C of the prior in the damped rating: how many ratings it counts as (see
/// [`RATING_PRIOR_MILLISTARS`]).
pub const RATING_PRIOR_WEIGHT: i64 = 10;

/// The damped rating of `sum` stars over `count` ratings in thousandths of a star, as
/// `sort=rating` computes it in SQL; `-1` when unrated.
pub fn damped_rating(sum: i64, count: i64) -> i64 {
    if count == 0 {
        -1
    } else {
        (RATING_PRIOR_WEIGHT * RATING_PRIOR_MILLISTARS + sum * 1000) / (RATING_PRIOR_WEIGHT + count)
    }
}

/// How far a deprecated plugin's sort key is lowered: more than any install count, timestamp
/// (in milliseconds, until the year 33,000) or damped rating, so deprecated plugins come after
/// all others in every order.
pub const DEPRECATED_PENALTY: i64 = 1_000_000_000_000_000;

/// The SQL of a plugin's penalty (`p` is the plugins row): [`DEPRECATED_PENALTY`] while it is
/// deprecated, else 0. Relevance orders by it first.
const DEPRECATED_ORDER: &str =
    "(CASE WHEN p.deprecated_at IS NULL THEN 0 ELSE 1000000000000000 END)";

/// A sort order of search results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Best text match first (needs `q`; without it, the same as [`Sort::Recent`]).
    Relevance,
    /// Most installed first.
    Installs,
    /// Highest average rating first; unrated last.
    Rating,
    /// Most recently published first.
    Recent,
}

impl Sort {
    /// Parses `relevance`, `installs`, `rating` or `recent`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] `invalid_query` naming `sort`.
    pub fn parse(text: &str) -> Result<Sort> {
        match text {
            "relevance" => Ok(Sort::Relevance),
            "installs" => Ok(Sort::Installs),
            "rating" => Ok(Sort::Rating),
            "recent" => Ok(Sort::Recent),
            other => Err(Error::bad_request(
                "invalid_query",
                format!(
                    "query parameter `sort` must be relevance, installs, rating or recent, not {other:?}"
                ),
            )),
        }
    }

    /// The name used in URLs and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::Installs => "installs",
            Sort::Rating => "rating",
            Sort::Recent => "recent",
        }
    }

    /// The integer SQL expression keyset paging orders by (descending), for the non-relevance
    /// orders. Rating is the damped average in thousandths of a star (see
    /// [`RATING_PRIOR_MILLISTARS`]), `-1` when unrated.
    /// The sort key in SQL. The rating's has an index on PostgreSQL (migration 0014) that must
    /// stay the same expression.
    ///
    /// A deprecated plugin's key is lowered by [`DEPRECATED_PENALTY`], so it ranks below every
    /// plugin that is not deprecated and keyset paging still works on one integer.
    fn key_expression(self) -> String {
        let base = match self {
            Sort::Installs => "p.installs".to_owned(),
            Sort::Rating => format!(
                "(CASE WHEN p.rating_count = 0 THEN -1 \
                 ELSE ({RATING_PRIOR_WEIGHT} * {RATING_PRIOR_MILLISTARS} + p.rating_sum * 1000) \
                 / ({RATING_PRIOR_WEIGHT} + p.rating_count) END)"
            ),
            Sort::Recent | Sort::Relevance => "p.updated_at".to_owned(),
        };
        format!("({base} - {DEPRECATED_ORDER})")
    }
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Relevance order: rows to skip.
    Offset(u64),
    /// Keyset orders: the last row's sort key and id.
    After {
        /// The last row's sort key.
        key: i64,
        /// The last row's plugin id.
        id: String,
    },
}

/// A cursor as encoded: `{"s": sort, "o": offset}` or `{"s": sort, "k": key, "i": id}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorData {
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
}

impl Cursor {
    /// The opaque text of this cursor for `sort`.
    pub fn encode(&self, sort: Sort) -> String {
        let data = match self {
            Cursor::Offset(offset) => CursorData {
                s: sort.as_str().to_owned(),
                o: Some(*offset),
                k: None,
                i: None,
            },
            Cursor::After { key, id } => CursorData {
                s: sort.as_str().to_owned(),
                o: None,
                k: Some(*key),
                i: Some(id.clone()),
            },
        };
        // Serialising a struct of strings and integers cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default())
    }

    /// Decodes a cursor that must have been made for `sort`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] `invalid_query` naming `cursor`.
    pub fn decode(text: &str, sort: Sort) -> Result<Cursor> {
        let invalid = |why: &str| {
            Error::bad_request(
                "invalid_query",
                format!(
                    "query parameter `cursor` is not valid: {why}; pass the next_cursor of the previous page unchanged"
                ),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("not base64url"))?;
        let data: CursorData =
            serde_json::from_slice(&bytes).map_err(|_| invalid("not a cursor"))?;
        if data.s != sort.as_str() {
            return Err(invalid(&format!(
                "it was made for sort={}, not sort={}",
                data.s,
                sort.as_str()
            )));
        }
        match (sort, data.o, data.k, data.i) {
            (Sort::Relevance, Some(offset), None, None) => Ok(Cursor::Offset(offset)),
            (Sort::Installs | Sort::Rating | Sort::Recent, None, Some(key), Some(id)) => {
                Ok(Cursor::After { key, id })
            }
            _ => Err(invalid("not a cursor")),
        }
    }
}

/// The raw query parameters of `GET /v1/plugins`, all optional text.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to search for in names, descriptions and categories (each also as a prefix).
    pub q: Option<String>,
    /// Only plugins in this category.
    pub category: Option<String>,
    /// Only plugins whose latest version asks for this capability: kv, http, events,
    /// events.subscribe, events.emit or config.
    pub permission: Option<String>,
    /// Only plugins with this pricing model: free, monthly or per-1000-invocations.
    pub pricing: Option<String>,
    /// relevance (default with `q`), installs, rating or recent (default without `q`).
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words of `q` (see [`tokenize`]); `None` when no `q` was given. An empty list
    /// (a `q` of punctuation only) matches nothing.
    pub tokens: Option<Vec<String>>,
    /// Category filter, lowercase.
    pub category: Option<String>,
    /// Capability filter.
    pub permission: Option<String>,
    /// Pricing filter.
    pub pricing: Option<String>,
    /// The sort order in effect.
    pub sort: Sort,
    /// Page size.
    pub limit: u32,
    /// Where the page starts.
    pub cursor: Option<Cursor>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            tokens: None,
            category: None,
            permission: None,
            pricing: None,
            sort: Sort::Recent,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Cuts `text` into lowercase words of letters and digits; everything else separates words.
/// At most [`MAX_QUERY_TOKENS`] words of at most [`MAX_TOKEN_CHARS`] characters.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.chars()
                .take(MAX_TOKEN_CHARS)
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|word| word.chars().all(char::is_alphanumeric))
        .take(MAX_QUERY_TOKENS)
        .collect()
}

fn invalid_param(name: &str, why: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_query", format!("query parameter `{name}` {why}"))
}

/// A parameter's value with surrounding space removed; `None` if absent or blank.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl SearchQuery {
    /// Validates the raw parameters.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] `invalid_query` naming the parameter.
    pub fn from_params(params: &SearchParams) -> Result<SearchQuery> {
        let tokens = match given(params.q.as_ref()) {
            None => None,
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(invalid_param(
                    "q",
                    format!("is longer than {MAX_QUERY_CHARS} characters"),
                ));
            }
            Some(q) => Some(tokenize(q)),
        };
        let category = match given(params.category.as_ref()) {
            Some(c) if c.chars().count() > 64 => {
                return Err(invalid_param("category", "is longer than 64 characters"));
            }
            other => other.map(str::to_lowercase),
        };
        let permission = match given(params.permission.as_ref()) {
            Some(p) if !PERMISSIONS.contains(&p) => {
                return Err(invalid_param(
                    "permission",
                    format!("must be one of {}, not {p:?}", PERMISSIONS.join(", ")),
                ));
            }
            other => other.map(str::to_owned),
        };
        let pricing = match given(params.pricing.as_ref()) {
            Some(p) if !PRICING_MODELS.contains(&p) => {
                return Err(invalid_param(
                    "pricing",
                    format!("must be one of {}, not {p:?}", PRICING_MODELS.join(", ")),
                ));
            }
            other => other.map(str::to_owned),
        };
        let requested = given(params.sort.as_ref()).map(Sort::parse).transpose()?;
        let sort = match (requested, &tokens) {
            (None | Some(Sort::Relevance), Some(_)) => Sort::Relevance,
            (None | Some(Sort::Relevance), None) => Sort::Recent,
            (Some(sort), _) => sort,
        };
        let limit = match given(params.limit.as_ref()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(invalid_param(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"),
                    ));
                }
            },
        };
        let cursor = given(params.cursor.as_ref())
            .map(|text| Cursor::decode(text, sort))
            .transpose()?;
        Ok(SearchQuery {
            tokens,
            category,
            permission,
            pricing,
            sort,
            limit,
            cursor,
        })
    }
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// The plugins on this page.
    pub items: Vec<PluginSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A bound value of a dynamically assembled query.
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL assembled from fixed fragments, with every value bound as a `$n` parameter.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Binds `arg` and returns its placeholder.
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    async fn fetch_all(self, db: &Db) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for arg in self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(n) => query.bind(n),
            };
        }
        Ok(query.fetch_all(db.pool()).await?)
    }
}

/// Searches the catalog: the page of plugins `visibility` shows (never blocked ones, and
/// private ones only to their audience) that match `query`.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::BadRequest`] for a cursor of another sort order.
pub async fn search(db: &Db, query: &SearchQuery, visibility: &Visibility) -> Result<SearchPage> {
    let tokens = match &query.tokens {
        Some(tokens) if tokens.is_empty() => {
            // A `q` with no words (only punctuation or operators) matches nothing.
            return Ok(SearchPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        other => other.as_deref(),
    };
    let sort = match (query.sort, tokens) {
        (Sort::Relevance, None) => Sort::Recent,
        (sort, _) => sort,
    };
    let offset = match (&query.cursor, sort) {
        (None, _) => 0,
        (Some(Cursor::Offset(skip)), Sort::Relevance) => *skip,
        (Some(Cursor::After { .. }), Sort::Installs | Sort::Rating | Sort::Recent) => 0,
        (Some(_), _) => {
            return Err(invalid_param(
                "cursor",
                "does not belong to this sort order",
            ));
        }
    };
    let wanted = u64::from(query.limit) + 1;

    // On SQLite, relevance ranks a window of the best FTS matches before joining; if the
    // filters leave too few of them, the page is asked again over every match.
    let window = match (db.backend(), sort) {
        (Backend::Sqlite, Sort::Relevance) => {
            let filtered =
                query.category.is_some() || query.permission.is_some() || query.pricing.is_some();
            let factor = if filtered { 8 } else { 2 };
            Some((offset + wanted).saturating_mul(factor).saturating_add(100))
        }
        _ => None,
    };
    let mut rows = build(db, query, visibility, tokens, sort, offset, window)
        .fetch_all(db)
        .await?;
    if window.is_some() && (rows.len() as u64) < wanted {
        rows = build(db, query, visibility, tokens, sort, offset, None)
            .fetch_all(db)
            .await?;
    }

    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next_cursor = match rows.last() {
        Some(last) if more => Some(if sort == Sort::Relevance {
            Cursor::Offset(offset + u64::from(query.limit))
        } else {
            Cursor::After {
                key: last.try_get("sort_key")?,
                id: last.try_get("id")?,
            }
        }),
        _ => None,
    }
    .map(|cursor| cursor.encode(sort));

    let ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    let mut categories = categories_of(db, &ids).await?;
    let items = rows
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(PluginSummary {
                categories: categories.remove(&id).unwrap_or_default(),
                id,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                latest_version: row.try_get("latest_version")?,
                rating: average(row.try_get("rating_sum")?, row.try_get("rating_count")?),
                installs: row.try_get("installs")?,
                pricing: row.try_get("pricing_model")?,
                deprecated: row.try_get::<Option<i64>, _>("deprecated_at")?.is_some(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchPage { items, next_cursor })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The SQL of one page: `limit + 1` rows (to tell whether there is a next page) from
/// `offset` (relevance) or after the cursor (other orders). `window` bounds the FTS matches
/// ranked on SQLite (see [`crate::db::sqlite::search::ranked_from`]).
fn build(
    db: &Db,
    query: &SearchQuery,
    visibility: &Visibility,
    tokens: Option<&[String]>,
    sort: Sort,
    offset: u64,
    window: Option<u64>,
) -> Sql {
    let keyed = sort != Sort::Relevance;
    let key = sort.key_expression();
    let key = key.as_str();
    let mut sql = Sql::default();
    sql.push(
        "SELECT p.id, p.name, p.description, p.latest_version, p.installs, p.rating_sum, \
         p.rating_count, p.pricing_model, p.deprecated_at, ",
    );
    sql.push(if keyed { key } else { "0" })
        .push(" AS sort_key FROM ");
    let (shown, args) = visibility.condition(sql.args.len() + 1);
    sql.args.extend(args.into_iter().map(Arg::Text));
    let mut conditions: Vec<String> = vec![shown];
    let mut rank_order = "";
    match (tokens, db.backend()) {
        (None, _) => {
            sql.push("plugins p");
        }
        (Some(tokens), Backend::Sqlite) => {
            use crate::db::sqlite::search as fts;
            let matching = sql.bind(Arg::Text(fts::match_query(tokens)));
            if keyed {
                sql.push("plugins p");
                conditions.push(fts::match_condition(&matching));
            } else {
                let window = window.map(|w| sql.bind(Arg::Int(to_i64(w))));
                let from = fts::ranked_from(&matching, window.as_deref());
                sql.push(&from);
                rank_order = fts::RANK_ORDER;
            }
        }
        (Some(tokens), Backend::Postgres) => {
            use crate::db::postgres::search as fts;
            let matching = sql.bind(Arg::Text(fts::tsquery(tokens)));
            let from = fts::from(&matching);
            sql.push(&from);
            conditions.push(fts::CONDITION.to_owned());
            rank_order = fts::RANK_ORDER;
        }
    }
    if let Some(category) = &query.category {
        let placeholder = sql.bind(Arg::Text(category.clone()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM plugin_categories c WHERE c.plugin_id = p.id AND c.category = {placeholder})"
        ));
    }
    if let Some(permission) = &query.permission {
        let placeholder = sql.bind(Arg::Text(permission.clone()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM plugin_capabilities c WHERE c.plugin_id = p.id AND c.capability = {placeholder})"
        ));
    }
    if let Some(pricing) = &query.pricing {
        let placeholder = sql.bind(Arg::Text(pricing.clone()));
        conditions.push(format!("p.pricing_model = {placeholder}"));
    }
    if let (true, Some(Cursor::After { key: after, id })) = (keyed, &query.cursor) {
        let k1 = sql.bind(Arg::Int(*after));
        let k2 = sql.bind(Arg::Int(*after));
        let id = sql.bind(Arg::Text(id.clone()));
        conditions.push(format!("({key} < {k1} OR ({key} = {k2} AND p.id > {id}))"));
    }
    sql.push(" WHERE ").push(&conditions.join(" AND "));
    if keyed {
        sql.push(" ORDER BY ").push(key).push(" DESC, p.id");
    } else {
        sql.push(" ORDER BY ")
            .push(DEPRECATED_ORDER)
            .push(", ")
            .push(rank_order);
    }
    let limit = sql.bind(Arg::Int(i64::from(query.limit) + 1));
    sql.push(" LIMIT ").push(&limit);
    if offset > 0 {
        let skip = sql.bind(Arg::Int(to_i64(offset)));
        sql.push(" OFFSET ").push(&skip);
    }
    sql
}

/// The categories of each of `ids`, sorted.
async fn categories_of(db: &Db, ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::default();
    let placeholders: Vec<String> = ids
        .iter()
        .map(|id| sql.bind(Arg::Text(id.clone())))
        .collect();
    sql.push("SELECT plugin_id, category FROM plugin_categories WHERE plugin_id IN (")
        .push(&placeholders.join(", "))
        .push(") ORDER BY plugin_id, category");
    for row in sql.fetch_all(db).await? {
        out.entry(row.try_get(0)?)
            .or_default()
            .push(row.try_get(1)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_orders_have_their_indexes() {
        // The index matches the query's expression only if it is the same expression.
        let postgres = include_str!("../../migrations/postgres/0017_private_deprecated.sql");
        let sqlite = include_str!("../../migrations/sqlite/0017_private_deprecated.sql");
        for (sort, migrations) in [
            (Sort::Rating, vec![postgres, sqlite]),
            (Sort::Installs, vec![postgres, sqlite]),
            (Sort::Recent, vec![postgres, sqlite]),
        ] {
            let expression = sort.key_expression().replace("p.", "");
            for migration in migrations {
                assert!(
                    migration.contains(&format!("({expression} DESC, id)")),
                    "migration 0017 no longer indexes {expression}"
                );
            }
        }
        assert!(DEPRECATED_ORDER.contains(&DEPRECATED_PENALTY.to_string()));
    }

    #[test]
    fn damped_rating_prefers_many_good_ratings_to_one_perfect() {
        assert_eq!(damped_rating(0, 0), -1);
        assert_eq!(damped_rating(5, 1), 3181);
        assert_eq!(damped_rating(2400, 500), 4764);
        assert!(damped_rating(2400, 500) > damped_rating(5, 1));
        assert!(
            damped_rating(1, 1) > damped_rating(0, 0),
            "rated sorts before unrated"
        );
    }

    #[test]
    fn tokenize_keeps_only_words() {
        assert_eq!(tokenize("Slack-notify"), ["slack", "notify"]);
        assert_eq!(
            tokenize(r#"' OR 1=1; -- "x"* NEAR(a b) %_"#),
            ["or", "1", "1", "x", "near", "a", "b"]
        );
        assert!(tokenize("*** ;;; --").is_empty());
        assert_eq!(tokenize("Café über"), ["café", "über"]);
        assert_eq!(tokenize(&"w ".repeat(40)).len(), MAX_QUERY_TOKENS);
    }

    #[test]
    fn cursors_round_trip_and_are_tied_to_their_sort() {
        let after = Cursor::After {
            key: 42,
            id: "acme.x".to_owned(),
        };
        let text = after.encode(Sort::Installs);
        assert_eq!(Cursor::decode(&text, Sort::Installs).ok(), Some(after));
        assert!(Cursor::decode(&text, Sort::Recent).is_err());
        let offset = Cursor::Offset(40).encode(Sort::Relevance);
        assert_eq!(
            Cursor::decode(&offset, Sort::Relevance).ok(),
            Some(Cursor::Offset(40))
        );
        assert!(Cursor::decode("not a cursor!", Sort::Recent).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode(b"{}"), Sort::Recent).is_err());
    }

    #[test]
    fn defaults_and_limits() -> Result<()> {
        let query = SearchQuery::from_params(&SearchParams::default())?;
        assert_eq!((query.sort, query.limit), (Sort::Recent, DEFAULT_LIMIT));
        let with_q = SearchQuery::from_params(&SearchParams {
            q: Some("hello".to_owned()),
            ..SearchParams::default()
        })?;
        assert_eq!(with_q.sort, Sort::Relevance);
        for (limit, ok) in [("0", false), ("101", false), ("x", false), ("100", true)] {
            let parsed = SearchQuery::from_params(&SearchParams {
                limit: Some(limit.to_owned()),
                ..SearchParams::default()
            });
            assert_eq!(parsed.is_ok(), ok, "limit={limit}");
        }
        Ok(())
    }
}
