//! `/v1/billing/meter_events`: usage reported against a customer (Stripe's billing meters).
//! The double checks the shape and the customer, and answers what Stripe answers; what was
//! reported is in [`crate::ProcessorDouble::requests`].

use serde_json::json;

use crate::api::Reply;
use crate::error::ApiError;
use crate::form::Form;
use crate::store::{Store, now};

/// `POST /v1/billing/meter_events`: `event_name`, `payload[stripe_customer_id]`,
/// `payload[value]` (a whole number), `identifier`, `timestamp`.
pub(crate) fn create(store: &Store, form: &Form) -> Result<Reply, ApiError> {
    let event_name = form.required("event_name")?;
    let customer = form.required("payload[stripe_customer_id]")?;
    if !store.customers.contains_key(customer) {
        return Err(ApiError::no_such(
            "customer",
            customer,
            "payload[stripe_customer_id]",
        ));
    }
    let value = form.required("payload[value]")?;
    if value.parse::<u64>().is_err() {
        return Err(ApiError::invalid(
            None,
            format!("payload[value] must be a whole number, not {value:?}"),
        )
        .param("payload[value]"));
    }
    let timestamp = form.integer("timestamp")?.unwrap_or_else(now);
    Ok(Reply::ok(json!({
        "object": "billing.meter_event",
        "event_name": event_name,
        "identifier": form.get("identifier"),
        "payload": {"stripe_customer_id": customer, "value": value},
        "timestamp": timestamp,
        "created": now(),
    })))
}
