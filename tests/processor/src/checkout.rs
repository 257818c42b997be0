//! Checkout in `setup` mode: `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! and the hosted page (`GET`/`POST /checkout/{id}`) where a browser picks one of Stripe's
//! test cards.

use std::sync::Arc;

use axum::Form as FormBody;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::Shared;
use crate::api::Reply;
use crate::customers;
use crate::error::ApiError;
use crate::form::Form;
use crate::store::{Session, Store, new_id, now};

/// `POST /v1/checkout/sessions`: `mode=setup`, `customer`, `success_url`, `cancel_url`.
pub(crate) fn create(store: &mut Store, base_url: &str, form: &Form) -> Result<Reply, ApiError> {
    match form.required("mode")? {
        "setup" => {}
        other => {
            return Err(ApiError::invalid(
                None,
                format!("The processor double only supports mode=setup, not `{other}`."),
            )
            .param("mode"));
        }
    }
    let customer = form.required("customer")?;
    store.customer_param(customer, "customer")?;
    let success_url = form.required("success_url")?;
    let id = new_id("cs");
    let session = Session {
        url: format!("{base_url}/checkout/{id}"),
        id,
        customer: customer.to_owned(),
        success_url: success_url.to_owned(),
        cancel_url: form.get("cancel_url").map(str::to_owned),
        setup_intent: new_id("seti"),
        payment_method: None,
        created: now(),
    };
    let json = session.json(false);
    store.sessions.insert(session.id.clone(), session);
    Ok(Reply::ok(json))
}

/// `GET /v1/checkout/sessions/{id}` (`expand[]=setup_intent` expands the setup intent).
pub(crate) fn get(store: &Store, id: &str, query: &Form) -> Result<Reply, ApiError> {
    let session = store
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found("checkout.session", id))?;
    let expand = query.all("expand[]").contains(&"setup_intent");
    Ok(Reply::ok(session.json(expand)))
}

/// Completes session `id` with the test card `payment_method`: attached to the session's
/// customer as its default, the session `complete`; answers where the browser goes next
/// and the events. A session already complete only answers where to go.
pub(crate) fn complete(
    store: &mut Store,
    id: &str,
    payment_method: &str,
) -> Result<(String, Reply), ApiError> {
    let session = store
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found("checkout.session", id))?
        .clone();
    let next = session
        .success_url
        .replace("{CHECKOUT_SESSION_ID}", &session.id);
    if session.payment_method.is_some() {
        return Ok((next, Reply::ok(session.json(false))));
    }
    let attached = customers::attach(store, payment_method, &session.customer)?;
    customers::set_default(store, &session.customer, &attached.id);
    let session = store
        .sessions
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("checkout.session", id))?;
    session.payment_method = Some(attached.id);
    let json = session.json(false);
    Ok((
        next,
        Reply::ok(json.clone()).event("checkout.session.completed", json),
    ))
}

/// The hosted page's form.
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    payment_method: String,
}

/// `GET /checkout/{id}`: the page.
pub(crate) async fn page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    render(&shared.lock(), &id)
}

/// The page of session `id`: two test cards to choose from, a submit button (`#submit`) and
/// a link back to the cancel URL.
fn render(store: &Store, id: &str) -> Response {
    let Some(session) = store.sessions.get(id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><p>No such checkout session.</p>".to_owned()),
        )
            .into_response();
    };
    let cancel = session
        .cancel_url
        .as_deref()
        .map(|url| format!(r#"<p><a id="cancel" href="{}">Cancel</a></p>"#, escape(url)))
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Set up a payment method (processor double)</title></head>
<body>
<h1>Set up a payment method</h1>
<p>For customer <code>{customer}</code>.</p>
<form method="post" action="/checkout/{id}">
<p><label><input type="radio" name="payment_method" value="pm_card_visa" checked> Visa ending 4242</label></p>
<p><label><input type="radio" name="payment_method" value="pm_card_chargeCustomerFail"> Visa ending 0341 (declines)</label></p>
<p><button type="submit" id="submit">Save card</button></p>
</form>
{cancel}
</body>
</html>
"#,
        customer = escape(&session.customer),
        id = escape(&session.id),
    ))
    .into_response()
}

/// `POST /checkout/{id}`: completes the session and sends the browser to its success URL
/// (303), after the `checkout.session.completed` webhook was delivered.
pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    FormBody(choice): FormBody<Choice>,
) -> Response {
    match shared.complete_checkout(&id, &choice.payment_method).await {
        Ok(next) => Redirect::to(&next).into_response(),
        Err(error) => (
            error.status,
            Html(format!("<!doctype html><p>{}</p>", escape(&error.message))),
        )
            .into_response(),
    }
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"a"b<c>&'d"#), "a&quot;b&lt;c&gt;&amp;&#39;d");
    }
}
