//! A processor event as received: Stripe's `{id, type, created, data: {object}}`, and the
//! fields of its object, each checked with a message naming it.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A verified event, parsed: Stripe's `{id, type, created, data: {object}}`.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) created: i64,
    pub(crate) object: Map<String, Value>,
}

fn invalid(field: &str, what: &str) -> Error {
    Error::bad_request("invalid_event", format!("field `{field}` {what}"))
}

/// Parses an event's JSON.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_event`) naming the field that is missing or wrong.
pub(crate) fn parse(payload: &[u8]) -> Result<Event> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::bad_request("invalid_event", format!("the event is not JSON: {e}")))?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or_else(|| invalid("id", "must be a string of 1 to 255 characters"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("type", "is required"))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("created", "must be an integer of Unix seconds"))?;
    let object = value
        .get("data")
        .and_then(|data| data.get("object"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("data.object", "must be an object"))?;
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object: object.clone(),
    })
}

pub(super) fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s)),
        Some(_) => Err(invalid(
            &format!("data.object.{field}"),
            "must be a string of 1 to 255 characters",
        )),
    }
}

pub(super) fn required_text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str> {
    text(object, field)?.ok_or_else(|| invalid(&format!("data.object.{field}"), "is required"))
}

pub(super) fn amount(object: &Map<String, Value>, field: &str) -> Result<i64> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .filter(|a| *a >= 0)
        .ok_or_else(|| {
            invalid(
                &format!("data.object.{field}"),
                "must be a non-negative integer of minor units",
            )
        })
}

pub(super) fn currency(object: &Map<String, Value>) -> Result<String> {
    let code = required_text(object, "currency")?.to_ascii_uppercase();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(invalid(
            "data.object.currency",
            "must be an ISO 4217 code such as usd",
        ))
    }
}

impl Event {
    /// The processor charge (`ch_…`) and invoice (`in_…`) the event concerns, where it names
    /// them: what a waiting event is found by when its charge changes.
    pub(super) fn refs(&self) -> (Option<&str>, Option<&str>) {
        let field = |name: &str| self.object.get(name).and_then(Value::as_str);
        match self.kind.as_str() {
            "invoice.paid" => (field("charge"), field("id")),
            "charge.refunded" => (field("id"), field("invoice")),
            "charge.dispute.created" | "charge.dispute.closed" => (field("charge"), None),
            _ => (None, None),
        }
    }
}
