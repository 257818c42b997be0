//! Ids: UUIDv7 strings (time-ordered, so newer rows sort after older ones).

/// A new UUIDv7, hyphenated lowercase.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
