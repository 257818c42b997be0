//! What is PostgreSQL's own: migrations, full-text search (a weighted `tsvector`) and the
//! tenant scope its row-level security policies read ([`scope`]).

use sqlx::migrate::Migrator;

/// PostgreSQL's migrations, in order: every file of `marketplace/migrations/postgres/`, embedded.
pub(crate) fn migrator() -> Migrator {
    sqlx::migrate!("migrations/postgres")
}

/// The catalog's full-text search on PostgreSQL: the generated, weighted `plugins.search`
/// `tsvector` (name A, categories B, description C) with a GIN index.
pub(crate) mod search {
    /// What a search over the catalog selects from; `{}` is the placeholder of the
    /// [`tsquery`] text, parsed once as `query`.
    pub(crate) fn from(placeholder: &str) -> String {
        format!("plugins p CROSS JOIN to_tsquery('simple', {placeholder}) AS query")
    }

    /// The match condition.
    pub(crate) const CONDITION: &str = "p.search @@ query";

    /// Best match first (`ts_rank` weighs the name, A, highest), ties by id.
    pub(crate) const RANK_ORDER: &str = "ts_rank(p.search, query) DESC, p.id";

    /// A `tsquery` over `tokens` (words of letters and digits only): every token must occur,
    /// as a word or a word's prefix (`slack:* & notify:*`). The tokens hold no tsquery
    /// operators, and the text is bound as a parameter, never spliced into SQL.
    pub(crate) fn tsquery(tokens: &[String]) -> String {
        tokens
            .iter()
            .map(|token| format!("{token}:*"))
            .collect::<Vec<_>>()
            .join(" & ")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_become_and_of_prefixes() {
            assert_eq!(
                tsquery(&["slack".to_owned(), "notify".to_owned()]),
                "slack:* & notify:*"
            );
        }
    }
}

/// Row-level security: every tenant-scoped table (one with a `tenant_id`, and `tenants` by its
/// `id`) has the policy `tenant_rows` (migration `0023`), which lets a row through when the
/// transaction's scope is the row's tenant, or when the session works across tenants:
///
/// ```sql
/// current_setting('plinth.scope', true) = 'all'
///     OR tenant_id = current_setting('plinth.tenant', true)
/// ```
///
/// Two paths set the scope, each in one place:
/// - [`CROSS_TENANT`](scope::CROSS_TENANT), run on every connection of the marketplace's pool when it opens
///   ([`Db::connect`](super::Db::connect)): the explicit bypass, by which operator routes,
///   housekeeping, payouts, the change listener and every query outside a tenant-scoped
///   transaction read across tenants (each filtering by tenant in its own SQL).
/// - [`TENANT`](scope::TENANT), run by [`Db::begin_tenant`](super::Db::begin_tenant) (and
///   its read-only twin [`Db::begin_tenant_read`](super::Db::begin_tenant_read)), the one way
///   tenant-scoped transactions are opened: until it ends, a query that forgot its
///   `WHERE tenant_id = …` still sees (and may write) that tenant's rows only.
///
/// A connection made without either (`psql` as the application's role) sees no tenant's rows.
/// The policies hold for the tables' owner too (`FORCE ROW LEVEL SECURITY`); only a superuser
/// or a role with `BYPASSRLS` is above them, so the application should not connect as one.
pub mod scope {
    /// Sets the session's scope to every tenant (not transaction-local: it lasts as long as
    /// the pooled connection, and a tenant-scoped transaction's local setting overrides it
    /// until that transaction ends).
    pub const CROSS_TENANT: &str = "SELECT set_config('plinth.scope', 'all', false)";

    /// Narrows the transaction to one tenant, bound as `$1`.
    pub const TENANT: &str = "SELECT set_config('plinth.scope', 'tenant', true), \
                              set_config('plinth.tenant', $1, true)";

    /// Tables with a `tenant_id` that have no policy, each for a reason: the audit log is one
    /// hash chain across tenants (every append reads the entry before it, whoever's it is).
    pub const EXEMPT: &[&str] = &["audit_log"];
}
