//! What is SQLite's own: migrations, connection settings, full-text search (FTS5).

use sqlx::migrate::Migrator;

/// SQLite's migrations, in order: every file of `marketplace/migrations/sqlite/`, embedded.
pub(crate) fn migrator() -> Migrator {
    sqlx::migrate!("migrations/sqlite")
}

/// Run on every new connection: WAL journaling (readers never wait for the writer), a busy
/// timeout so concurrent writers queue rather than fail, and foreign keys enforced.
pub(crate) const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

/// The catalog's full-text search on SQLite: the FTS5 table `plugin_search`.
pub(crate) mod search {
    use sqlx::Row;

    use crate::db::Tx;
    use crate::error::Result;

    /// Relevance order: what the search selects from, `$match` being the placeholder of the
    /// [`match_query`] and `window` (if any) that of the most candidates to rank.
    ///
    /// FTS5 ranks the matches by bm25 on its own (lower is better; the name weighted highest,
    /// then categories, then the description; the first column, `plugin_id`, is not
    /// indexed), and only the best `window` are joined to `plugins` for the filters — joining
    /// every match of a broad word like `pay` first would cost more than ranking it.
    pub(crate) fn ranked_from(match_placeholder: &str, window: Option<&str>) -> String {
        let limit = window.map(|w| format!(" LIMIT {w}")).unwrap_or_default();
        format!(
            "(SELECT rowid AS rid, bm25(plugin_search, 0.0, 10.0, 1.0, 3.0) AS score \
             FROM plugin_search WHERE plugin_search MATCH {match_placeholder} \
             ORDER BY score, rid{limit}) AS ranked \
             JOIN plugin_search_rows r ON r.rowid = ranked.rid \
             JOIN plugins p ON p.id = r.plugin_id"
        )
    }

    /// Relevance order over [`ranked_from`]: best first, ties by search row.
    pub(crate) const RANK_ORDER: &str = "ranked.score, ranked.rid";

    /// Other orders: the condition that `p` matches, `$match` being the placeholder of the
    /// [`match_query`]. The matching ids are collected once; the unary `+` keeps SQLite from
    /// driving the query by them, so it walks the sort order's index and stops at the page
    /// size.
    pub(crate) fn match_condition(match_placeholder: &str) -> String {
        format!(
            "+p.id IN (SELECT r.plugin_id FROM plugin_search \
             JOIN plugin_search_rows r ON r.rowid = plugin_search.rowid \
             WHERE plugin_search MATCH {match_placeholder})"
        )
    }

    /// An FTS5 query over `tokens` (words of letters and digits only): every token must occur,
    /// as a word or a word's prefix. Each is a quoted string (`"slack"*`), so FTS5 syntax
    /// (`OR`, `NEAR(`, `*`, `:`, `^`, column filters) in user input is only ever text.
    pub(crate) fn match_query(tokens: &[String]) -> String {
        tokens
            .iter()
            .map(|token| format!("\"{}\"*", token.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Replaces the search row of `plugin_id` with its current name, description and
    /// categories.
    pub(crate) async fn sync_plugin(
        tx: &mut Tx,
        plugin_id: &str,
        name: &str,
        description: &str,
        categories: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_search_rows (plugin_id) VALUES ($1) \
             ON CONFLICT (plugin_id) DO NOTHING",
        )
        .bind(plugin_id)
        .execute(&mut **tx)
        .await?;
        let rowid: i64 = sqlx::query("SELECT rowid FROM plugin_search_rows WHERE plugin_id = $1")
            .bind(plugin_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        sqlx::query("DELETE FROM plugin_search WHERE rowid = $1")
            .bind(rowid)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO plugin_search (rowid, plugin_id, name, description, categories) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rowid)
        .bind(plugin_id)
        .bind(name)
        .bind(description)
        .bind(categories)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_become_quoted_prefix_terms() {
            let tokens = ["slack".to_owned(), "or".to_owned(), "near".to_owned()];
            assert_eq!(match_query(&tokens), r#""slack"* "or"* "near"*"#);
            assert_eq!(match_query(&[r#"a"b"#.to_owned()]), r#""a""b"*"#);
        }
    }
}
