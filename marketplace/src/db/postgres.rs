//! What is PostgreSQL's own: migrations and full-text search (a weighted `tsvector`).

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
