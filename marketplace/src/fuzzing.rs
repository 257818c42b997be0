//! Entry points for the fuzz harness in `fuzz/` (the `fuzzing` feature; not part of the API).
//!
//! The parsers the harness reaches through the public API need nothing here (webhook
//! signatures, search parameters, install configuration); these wrap the crate-private ones it
//! cannot reach otherwise.

use serde_json::{Map, Value};

use crate::error::Result;

/// A processor event as the webhook reads it: `(id, type, created, data.object)`.
pub type ProcessorEvent = (String, String, i64, Map<String, Value>);

/// Parses a processor event's JSON as [`crate::ledger::webhook::receive`] does once the
/// signature verified.
///
/// # Errors
///
/// `invalid_event` naming the field that is missing or wrong.
pub fn parse_processor_event(payload: &[u8]) -> Result<ProcessorEvent> {
    let event = crate::ledger::processor_events::parse(payload)?;
    Ok((event.id, event.kind, event.created, event.object))
}

/// The SQLite FTS5 query text a search for `tokens` binds.
pub fn sqlite_match_query(tokens: &[String]) -> String {
    crate::db::sqlite::search::match_query(tokens)
}

/// The PostgreSQL `tsquery` text a search for `tokens` binds.
pub fn postgres_tsquery(tokens: &[String]) -> String {
    crate::db::postgres::search::tsquery(tokens)
}
