//! The catalog search: the query tokenizer, the parameters of `GET /v1/plugins`, cursors, and
//! the full-text query texts built from the tokens.
//!
//! - Tokens are non-empty lowercase words of letters and digits, at most `MAX_QUERY_TOKENS`
//!   of at most `MAX_TOKEN_CHARS` characters.
//! - The FTS5 query is exactly the tokens, each quoted and marked as a prefix, so no FTS5
//!   syntax from the query survives; the `tsquery` holds only the tokens, `:*` and ` & `.
//! - Parameters either validate or are refused with `invalid_query`; a validated query's
//!   cursor encodes and decodes to itself.
//!
//! Input: up to eight lines: `q`, then the raw parameters `q`, `category`, `permission`,
//! `pricing`, `sort`, `limit` and `cursor` (a missing line is an absent parameter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_marketplace::catalog::search::{
    Cursor, MAX_LIMIT, MAX_QUERY_TOKENS, MAX_TOKEN_CHARS, SearchParams, SearchQuery, Sort, tokenize,
};
use plinth_marketplace::fuzzing::{postgres_tsquery, sqlite_match_query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let raw_q = lines.next().unwrap_or_default();
    let mut params: [Option<String>; 7] = Default::default();
    for (param, line) in params.iter_mut().zip(lines) {
        *param = Some(line.to_owned());
    }
    let tokens = tokenize(raw_q);
    assert!(tokens.len() <= MAX_QUERY_TOKENS);
    for token in &tokens {
        assert!(!token.is_empty());
        assert!(token.chars().all(char::is_alphanumeric), "{token:?}");
        assert_eq!(&token.to_lowercase(), token, "{token:?} is not lowercase");
        assert!(
            token.chars().count() <= MAX_TOKEN_CHARS,
            "{token:?} has {} characters",
            token.chars().count()
        );
    }
    let fts = sqlite_match_query(&tokens);
    let quoted: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"*")).collect();
    assert_eq!(fts, quoted.join(" "));
    let tsquery = postgres_tsquery(&tokens);
    let words: Vec<&str> = if tsquery.is_empty() {
        Vec::new()
    } else {
        tsquery.split(" & ").collect()
    };
    assert_eq!(words.len(), tokens.len());
    for (word, token) in words.iter().zip(&tokens) {
        assert_eq!(*word, format!("{token}:*"));
    }

    let [q, category, permission, pricing, sort, limit, cursor] = params;
    let params = SearchParams {
        q,
        category,
        permission,
        pricing,
        sort,
        limit,
        cursor,
    };
    match SearchQuery::from_params(&params) {
        Ok(query) => {
            assert!((1..=MAX_LIMIT).contains(&query.limit));
            if let Some(cursor) = &query.cursor {
                let text = cursor.encode(query.sort);
                assert_eq!(
                    Cursor::decode(&text, query.sort).ok().as_ref(),
                    Some(cursor)
                );
            }
        }
        Err(e) => assert_eq!(e.code(), "invalid_query", "{e}"),
    }

    // Every sort's cursors, made from the query's own words, round-trip.
    for (i, sort) in [Sort::Relevance, Sort::Installs, Sort::Rating, Sort::Recent]
        .into_iter()
        .enumerate()
    {
        let cursor = if sort == Sort::Relevance {
            Cursor::Offset(raw_q.len() as u64)
        } else {
            Cursor::After {
                key: i64::try_from(raw_q.len()).unwrap_or(i64::MAX) - i as i64,
                id: raw_q.to_owned(),
            }
        };
        let text = cursor.encode(sort);
        assert_eq!(Cursor::decode(&text, sort).ok(), Some(cursor));
    }
});
