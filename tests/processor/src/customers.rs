//! `/v1/customers` and `/v1/payment_methods`: customers, Stripe's test cards attached to them,
//! the default payment method for their invoices.

use crate::api::Reply;
use crate::error::ApiError;
use crate::form::Form;
use crate::store::{Customer, PaymentMethod, Store, TestCard, new_id, now};

/// `POST /v1/customers`.
pub(crate) fn create(store: &mut Store, form: &Form) -> Result<Reply, ApiError> {
    let customer = Customer {
        id: new_id("cus"),
        name: form.get("name").map(str::to_owned),
        email: form.get("email").map(str::to_owned),
        metadata: form.metadata(),
        default_payment_method: None,
        created: now(),
    };
    let json = customer.json();
    store.customers.insert(customer.id.clone(), customer);
    Ok(Reply::ok(json.clone()).event("customer.created", json))
}

/// `GET /v1/customers/{id}`.
pub(crate) fn get(store: &Store, id: &str) -> Result<Reply, ApiError> {
    let customer = store
        .customers
        .get(id)
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    Ok(Reply::ok(customer.json()))
}

/// `POST /v1/customers/{id}`: `name`, `email`, `metadata[…]`,
/// `invoice_settings[default_payment_method]` (attached to this customer).
pub(crate) fn update(store: &mut Store, id: &str, form: &Form) -> Result<Reply, ApiError> {
    if !store.customers.contains_key(id) {
        return Err(ApiError::not_found("customer", id));
    }
    let default_key = "invoice_settings[default_payment_method]";
    let default = form.get(default_key).map(str::to_owned);
    if let Some(pm) = &default {
        let attached_here = store
            .payment_methods
            .get(pm)
            .is_some_and(|method| method.customer == id);
        if !attached_here {
            return Err(ApiError::invalid(
                Some("resource_missing"),
                format!(
                    "The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."
                ),
            )
            .param(default_key));
        }
    }
    let metadata = form.metadata();
    let customer = store
        .customers
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    if let Some(name) = form.get("name") {
        customer.name = Some(name.to_owned());
    }
    if let Some(email) = form.get("email") {
        customer.email = Some(email.to_owned());
    }
    customer.metadata.extend(metadata);
    if default.is_some() {
        customer.default_payment_method = default;
    }
    Ok(Reply::ok(customer.json()))
}

/// `GET /v1/payment_methods/{id}`.
pub(crate) fn get_payment_method(store: &Store, id: &str) -> Result<Reply, ApiError> {
    let method = store
        .payment_methods
        .get(id)
        .ok_or_else(|| ApiError::not_found("PaymentMethod", id))?;
    Ok(Reply::ok(method.json()))
}

/// `POST /v1/payment_methods/{id}/attach` with `customer`.
pub(crate) fn attach_route(store: &mut Store, id: &str, form: &Form) -> Result<Reply, ApiError> {
    let customer = form.required("customer")?.to_owned();
    store.customer_param(&customer, "customer")?;
    let attached = attach(store, id, &customer)?;
    Ok(Reply::ok(attached.json()))
}

/// Attaches `id` to `customer` (which exists): a test token (`pm_card_visa`) gives the
/// customer a copy of its own (`pm_…`), as Stripe does; a method already attached to this
/// customer is answered as it is; one of another customer is refused.
pub(crate) fn attach(
    store: &mut Store,
    id: &str,
    customer: &str,
) -> Result<PaymentMethod, ApiError> {
    if let Some(card) = TestCard::from_token(id) {
        let method = PaymentMethod {
            id: new_id("pm"),
            card,
            customer: customer.to_owned(),
            created: now(),
        };
        store
            .payment_methods
            .insert(method.id.clone(), method.clone());
        return Ok(method);
    }
    match store.payment_methods.get(id) {
        Some(method) if method.customer == customer => Ok(method.clone()),
        Some(_) => Err(ApiError::invalid(
            Some("payment_method_unexpected_state"),
            "The payment method you provided has already been attached to a customer.",
        )),
        // 400 rather than Stripe's usual 404 for an id in the path: the id is what the
        // customer chose, a bad request rather than a missing page.
        None => Err(ApiError::invalid(
            Some("resource_missing"),
            format!("No such PaymentMethod: '{id}'"),
        )
        .param("payment_method")),
    }
}

/// Makes `payment_method` the default of `customer`.
pub(crate) fn set_default(store: &mut Store, customer: &str, payment_method: &str) {
    if let Some(customer) = store.customers.get_mut(customer) {
        customer.default_payment_method = Some(payment_method.to_owned());
    }
}
