//! `/v1/invoices` and `/v1/invoiceitems`: draft invoices, their items, finalizing and paying.

use crate::api::Reply;
use crate::error::ApiError;
use crate::form::Form;
use crate::store::{Charge, Invoice, InvoiceStatus, Line, Store, new_id, now};

/// `POST /v1/invoices`: a draft for `customer`, in `currency` (default `usd`), with
/// `collection_method`, `auto_advance`, `description` and `metadata[…]`. Pending invoice
/// items are not kept by the double, so `pending_invoice_items_behavior` changes nothing.
pub(crate) fn create(store: &mut Store, form: &Form) -> Result<Reply, ApiError> {
    let customer = form.required("customer")?;
    store.customer_param(customer, "customer")?;
    let currency = currency(form.get("currency").unwrap_or("usd"))?;
    let collection_method = form
        .get("collection_method")
        .unwrap_or("charge_automatically");
    if !matches!(collection_method, "charge_automatically" | "send_invoice") {
        return Err(ApiError::invalid(
            None,
            format!("Invalid collection_method: {collection_method}"),
        )
        .param("collection_method"));
    }
    let invoice = Invoice {
        id: new_id("in"),
        seq: store.next_seq(),
        customer: customer.to_owned(),
        currency,
        description: form.get("description").map(str::to_owned),
        collection_method: collection_method.to_owned(),
        auto_advance: form.boolean("auto_advance")?.unwrap_or(false),
        metadata: form.metadata(),
        status: InvoiceStatus::Draft,
        number: None,
        lines: Vec::new(),
        total: 0,
        amount_due: 0,
        amount_paid: 0,
        attempt_count: 0,
        charge: None,
        pre_payment_credit_notes_amount: 0,
        post_payment_credit_notes_amount: 0,
        created: now(),
        finalized_at: None,
        paid_at: None,
    };
    let json = invoice.json();
    store.invoices.insert(invoice.id.clone(), invoice);
    Ok(Reply::ok(json))
}

/// A three-letter currency code, lowercased.
fn currency(code: &str) -> Result<String, ApiError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(None, format!("Invalid currency: {code}")).param("currency"))
    }
}

/// `GET /v1/invoices/{id}`.
pub(crate) fn get(store: &Store, id: &str) -> Result<Reply, ApiError> {
    Ok(Reply::ok(found(store, id)?.json()))
}

fn found<'s>(store: &'s Store, id: &str) -> Result<&'s Invoice, ApiError> {
    store
        .invoices
        .get(id)
        .ok_or_else(|| ApiError::not_found("invoice", id))
}

fn found_mut<'s>(store: &'s mut Store, id: &str) -> Result<&'s mut Invoice, ApiError> {
    store
        .invoices
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("invoice", id))
}

/// `POST /v1/invoiceitems`: `customer`, `invoice` (a draft of that customer; required by the
/// double), `amount` (may be negative), `currency` (the invoice's), `description`.
pub(crate) fn add_item(store: &mut Store, form: &Form) -> Result<Reply, ApiError> {
    let customer = form.required("customer")?;
    store.customer_param(customer, "customer")?;
    let Some(invoice_id) = form.get("invoice") else {
        return Err(ApiError::invalid(
            Some("parameter_missing"),
            "The processor double keeps no pending invoice items: pass `invoice`.",
        )
        .param("invoice"));
    };
    let amount = form.required_integer("amount")?;
    let currency = form.get("currency").map(currency).transpose()?;
    let invoice = store
        .invoices
        .get_mut(invoice_id)
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "invoice"))?;
    if invoice.customer != customer {
        return Err(ApiError::invalid(
            None,
            format!("The invoice {invoice_id} belongs to another customer."),
        )
        .param("invoice"));
    }
    if invoice.status != InvoiceStatus::Draft {
        return Err(ApiError::invalid(
            Some("invoice_not_editable"),
            format!(
                "You can only add invoice items to draft invoices; {invoice_id} is {}.",
                invoice.status.as_str()
            ),
        )
        .param("invoice"));
    }
    if currency
        .as_ref()
        .is_some_and(|currency| *currency != invoice.currency)
    {
        return Err(ApiError::invalid(
            None,
            format!(
                "The invoice item's currency must be the invoice's ({}).",
                invoice.currency
            ),
        )
        .param("currency"));
    }
    let line = Line {
        item: new_id("ii"),
        id: new_id("il"),
        description: form.get("description").map(str::to_owned),
        amount,
    };
    let json = invoice.item_json(&line);
    invoice.lines.push(line);
    Ok(Reply::ok(json))
}

/// `POST /v1/invoices/{id}/finalize`: numbered (`DBL-0001`), `open`, `amount_due` the total
/// (`max(0, sum of lines)`); an invoice of 0 is paid at once.
pub(crate) fn finalize(store: &mut Store, id: &str) -> Result<Reply, ApiError> {
    if found(store, id)?.status != InvoiceStatus::Draft {
        return Err(ApiError::invalid(
            Some("invoice_not_editable"),
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
        ));
    }
    store.invoice_numbers += 1;
    let number = format!("DBL-{:04}", store.invoice_numbers);
    let invoice = found_mut(store, id)?;
    let at = now();
    invoice.number = Some(number);
    invoice.total = invoice.subtotal().max(0);
    invoice.amount_due = invoice.total;
    invoice.status = InvoiceStatus::Open;
    invoice.finalized_at = Some(at);
    let finalized = invoice.json();
    let mut reply = Reply::ok(finalized.clone()).event("invoice.finalized", finalized);
    if invoice.amount_due == 0 {
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(at);
        reply.body = invoice.json();
        reply = reply.event("invoice.paid", invoice.json());
    }
    Ok(reply)
}

/// `POST /v1/invoices/{id}/pay`: charges the customer's default payment method.
///
/// - paid already: 400 `invoice_already_paid`; a draft: 400 (finalize it first);
/// - no default payment method: 402 `card_error` `missing_payment_method` (the attempt
///   counts and `invoice.payment_failed` is sent, as for a decline);
/// - `pm_card_chargeCustomerFail`: 402 `card_error` `card_declined` / `generic_decline`,
///   a failed charge, `attempt_count` + 1, the invoice stays open, `invoice.payment_failed`;
/// - otherwise: a charge (`ch_…`), the invoice `paid`, `invoice.paid`.
pub(crate) fn pay(store: &mut Store, id: &str) -> Result<Reply, ApiError> {
    let invoice = found(store, id)?;
    match invoice.status {
        InvoiceStatus::Paid => {
            return Err(ApiError::invalid(
                Some("invoice_already_paid"),
                "Invoice is already paid",
            ));
        }
        InvoiceStatus::Draft => {
            return Err(ApiError::invalid(
                None,
                format!("You can only pay an open invoice; {id} is a draft: finalize it first."),
            ));
        }
        InvoiceStatus::Open => {}
    }
    let customer = invoice.customer.clone();
    let amount = invoice.amount_remaining();
    let currency = invoice.currency.clone();
    let method = store
        .customers
        .get(&customer)
        .and_then(|customer| customer.default_payment_method.as_ref())
        .and_then(|pm| store.payment_methods.get(pm))
        .cloned();
    let Some(method) = method else {
        let invoice = found_mut(store, id)?;
        invoice.attempt_count += 1;
        let error = ApiError::card(
            "missing_payment_method",
            None,
            "This customer has no attached payment source or default payment method.",
        );
        return Ok(Reply::from(error).event("invoice.payment_failed", invoice.json()));
    };
    let charge = Charge {
        id: new_id("ch"),
        amount,
        amount_refunded: 0,
        currency,
        customer,
        invoice: id.to_owned(),
        payment_method: method.id.clone(),
        succeeded: !method.card.declines(),
        refunds: Vec::new(),
        created: now(),
    };
    let charge_id = charge.id.clone();
    let succeeded = charge.succeeded;
    store.charges.insert(charge_id.clone(), charge);
    let invoice = found_mut(store, id)?;
    invoice.attempt_count += 1;
    if !succeeded {
        let error = ApiError::declined();
        return Ok(Reply::from(error).event("invoice.payment_failed", invoice.json()));
    }
    invoice.status = InvoiceStatus::Paid;
    invoice.amount_paid = amount;
    invoice.charge = Some(charge_id);
    invoice.paid_at = Some(now());
    Ok(Reply::ok(invoice.json()).event("invoice.paid", invoice.json()))
}

/// How a credit of `amount` on `invoice` splits: (the pre-payment part, which lowers what an
/// open invoice still asks, the post-payment part, to be refunded or credited).
pub(crate) fn credit_split(invoice: &Invoice, amount: i64) -> (i64, i64) {
    let pre = if invoice.status == InvoiceStatus::Open {
        amount.min(invoice.amount_remaining()).max(0)
    } else {
        0
    };
    (pre, amount - pre)
}

/// Applies a credit split by [`credit_split`]: an open invoice left with nothing to pay is
/// paid.
pub(crate) fn apply_credit(invoice: &mut Invoice, pre: i64, post: i64) {
    invoice.pre_payment_credit_notes_amount += pre;
    invoice.post_payment_credit_notes_amount += post;
    invoice.amount_due -= pre;
    if invoice.status == InvoiceStatus::Open && invoice.amount_remaining() == 0 {
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(now());
    }
}
