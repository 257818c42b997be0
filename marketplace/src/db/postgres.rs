//! What is PostgreSQL's own: migrations and full-text search (a weighted `tsvector`).

use super::EmbeddedMigration;

/// PostgreSQL's migrations, in order.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "core",
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "installs",
        include_str!("../../migrations/postgres/0002_installs.sql"),
    ),
    (
        3,
        "usage",
        include_str!("../../migrations/postgres/0003_usage.sql"),
    ),
    (
        4,
        "audit",
        include_str!("../../migrations/postgres/0004_audit.sql"),
    ),
    (
        5,
        "ledger",
        include_str!("../../migrations/postgres/0005_ledger.sql"),
    ),
    (
        6,
        "versions",
        include_str!("../../migrations/postgres/0006_versions.sql"),
    ),
    (
        7,
        "ratings_notifications",
        include_str!("../../migrations/postgres/0007_ratings_notifications.sql"),
    ),
    (
        8,
        "change_notifications",
        include_str!("../../migrations/postgres/0008_change_notifications.sql"),
    ),
    (
        9,
        "plan_shares",
        include_str!("../../migrations/postgres/0009_plan_shares.sql"),
    ),
    (
        10,
        "audit_seals",
        include_str!("../../migrations/postgres/0010_audit_seals.sql"),
    ),
    (
        11,
        "ledger_exact",
        include_str!("../../migrations/postgres/0011_ledger_exact.sql"),
    ),
    (
        12,
        "abuse_limits",
        include_str!("../../migrations/postgres/0012_abuse_limits.sql"),
    ),
    (
        13,
        "trust",
        include_str!("../../migrations/postgres/0013_trust.sql"),
    ),
];

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
