//! `/v1/credit_notes`: credit notes against open or paid invoices, refunds of paid ones.

use crate::api::Reply;
use crate::error::ApiError;
use crate::form::Form;
use crate::invoices::{apply_credit, credit_split};
use crate::store::{CreditNote, CreditNoteLine, Invoice, InvoiceStatus, Store, new_id, now};

/// The most lines a credit note may have.
const MAX_LINES: usize = 100;

/// `POST /v1/credit_notes`: `invoice`, `lines[n][…]` (`custom_line_item` with `quantity` and
/// `unit_amount`, or `invoice_line_item` with `invoice_line_item` and `amount`) or `amount`,
/// `memo`, `metadata[…]`, and for the post-payment part `refund_amount`, `credit_amount`,
/// `out_of_band_amount`, which must add up to it (none given: all of it is credited).
///
/// The total may not exceed the invoice's total less its earlier credit notes. The part up to
/// what an open invoice still asks lowers it (the invoice is paid when nothing remains);
/// `refund_amount` is refunded from the invoice's charge.
pub(crate) fn create(store: &mut Store, form: &Form) -> Result<Reply, ApiError> {
    let invoice_id = form.required("invoice")?;
    let invoice = store
        .invoices
        .get(invoice_id)
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "invoice"))?;
    if invoice.status == InvoiceStatus::Draft {
        return Err(ApiError::invalid(
            None,
            "Credit notes can only be issued on open or paid invoices; finalize this one first.",
        )
        .param("invoice"));
    }
    let lines = parse_lines(form, invoice)?;
    let total = lines
        .iter()
        .try_fold(0i64, |sum, line| sum.checked_add(line.amount));
    let total =
        total.ok_or_else(|| ApiError::invalid(None, "The credit note's total is too large."))?;
    if total <= 0 {
        return Err(ApiError::invalid(
            None,
            "A credit note's total must be more than 0.",
        ));
    }
    let left = invoice.total
        - invoice.pre_payment_credit_notes_amount
        - invoice.post_payment_credit_notes_amount;
    if total > left {
        return Err(ApiError::invalid(
            None,
            format!(
                "The credit note's total ({total}) is more than what is left to credit on the invoice ({left})."
            ),
        ));
    }
    let (pre, post) = credit_split(invoice, total);
    let amounts = [
        form.integer("refund_amount")?,
        form.integer("credit_amount")?,
        form.integer("out_of_band_amount")?,
    ];
    if amounts.iter().flatten().any(|amount| *amount < 0) {
        return Err(ApiError::invalid(
            None,
            "Credit note amounts may not be negative.",
        ));
    }
    let [refund_amount, credit_amount, out_of_band_amount] = if amounts.iter().all(Option::is_none)
    {
        [0, post, 0]
    } else {
        amounts.map(|amount| amount.unwrap_or(0))
    };
    let sum = refund_amount
        .checked_add(credit_amount)
        .and_then(|sum| sum.checked_add(out_of_band_amount));
    if sum != Some(post) {
        let sum = sum.map_or_else(|| "too large".to_owned(), |sum| sum.to_string());
        return Err(ApiError::invalid(
            None,
            format!(
                "The sum of credit amount, refund amount and out of band amount ({sum}) must equal the credit note's post-payment amount ({post})."
            ),
        ));
    }
    let refund = if refund_amount > 0 {
        Some(refund_charge(store, invoice_id, refund_amount)?)
    } else {
        None
    };
    let count = store
        .credit_notes
        .values()
        .filter(|note| note.invoice == invoice_id)
        .count();
    let invoice = store
        .invoices
        .get_mut(invoice_id)
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "invoice"))?;
    apply_credit(invoice, pre, post);
    let note = CreditNote {
        id: new_id("cn"),
        number: format!(
            "{}-CN-{:02}",
            invoice.number.as_deref().unwrap_or("DBL"),
            count + 1
        ),
        invoice: invoice.id.clone(),
        customer: invoice.customer.clone(),
        currency: invoice.currency.clone(),
        total,
        pre_payment_amount: pre,
        post_payment_amount: post,
        refund_amount,
        credit_amount,
        out_of_band_amount,
        refund,
        memo: form.get("memo").map(str::to_owned),
        metadata: form.metadata(),
        lines,
        created: now(),
    };
    let json = note.json();
    store.credit_notes.insert(note.id.clone(), note);
    Ok(Reply::ok(json.clone()).event("credit_note.created", json))
}

/// `GET /v1/credit_notes/{id}`.
pub(crate) fn get(store: &Store, id: &str) -> Result<Reply, ApiError> {
    let note = store
        .credit_notes
        .get(id)
        .ok_or_else(|| ApiError::not_found("credit_note", id))?;
    Ok(Reply::ok(note.json()))
}

/// The note's lines: `lines[0][…]`, `lines[1][…]`, … or, with none, `amount`.
fn parse_lines(form: &Form, invoice: &Invoice) -> Result<Vec<CreditNoteLine>, ApiError> {
    let mut lines = Vec::new();
    for n in 0..MAX_LINES {
        let key = |field: &str| format!("lines[{n}][{field}]");
        if !form.has_prefix(&format!("lines[{n}][")) {
            break;
        }
        let kind = form.required(&key("type"))?;
        let quantity = form.integer(&key("quantity"))?.unwrap_or(1);
        if quantity < 1 {
            return Err(ApiError::invalid(
                None,
                "A credit note line's quantity must be at least 1.",
            )
            .param(&key("quantity")));
        }
        let line = match kind {
            "custom_line_item" => {
                let unit_amount = form.required_integer(&key("unit_amount"))?;
                if unit_amount < 0 {
                    return Err(ApiError::invalid(None, "unit_amount may not be negative.")
                        .param(&key("unit_amount")));
                }
                let amount = unit_amount.checked_mul(quantity).ok_or_else(|| {
                    ApiError::invalid(None, "The line's amount is too large.")
                        .param(&key("unit_amount"))
                })?;
                CreditNoteLine {
                    kind: kind.to_owned(),
                    description: form.get(&key("description")).map(str::to_owned),
                    invoice_line_item: None,
                    quantity,
                    unit_amount: Some(unit_amount),
                    amount,
                }
            }
            "invoice_line_item" => {
                let line_id = form.required(&key("invoice_line_item"))?;
                let Some(invoice_line) = invoice.lines.iter().find(|line| line.id == line_id)
                else {
                    return Err(ApiError::no_such(
                        "invoice line item",
                        line_id,
                        &key("invoice_line_item"),
                    ));
                };
                let amount = form.required_integer(&key("amount"))?;
                if amount < 0 || amount > invoice_line.amount {
                    return Err(ApiError::invalid(
                        None,
                        "The line's amount must be between 0 and the invoice line's.",
                    )
                    .param(&key("amount")));
                }
                CreditNoteLine {
                    kind: kind.to_owned(),
                    description: invoice_line.description.clone(),
                    invoice_line_item: Some(invoice_line.id.clone()),
                    quantity,
                    unit_amount: None,
                    amount,
                }
            }
            other => {
                return Err(ApiError::invalid(
                    None,
                    format!("Invalid credit note line type: {other}"),
                )
                .param(&key("type")));
            }
        };
        lines.push(line);
    }
    if lines.is_empty()
        && let Some(amount) = form.integer("amount")?
    {
        lines.push(CreditNoteLine {
            kind: "custom_line_item".to_owned(),
            description: None,
            invoice_line_item: None,
            quantity: 1,
            unit_amount: Some(amount),
            amount,
        });
    }
    if lines.is_empty() {
        return Err(ApiError::invalid(
            Some("parameter_missing"),
            "One of `amount` or `lines` must be provided.",
        ));
    }
    Ok(lines)
}

/// Refunds `amount` of the charge that paid `invoice`; answers the refund's id.
fn refund_charge(store: &mut Store, invoice: &str, amount: i64) -> Result<String, ApiError> {
    let charge_id = store
        .invoices
        .get(invoice)
        .and_then(|invoice| invoice.charge.clone())
        .ok_or_else(|| {
            ApiError::invalid(
                None,
                "The invoice was not paid by a charge: nothing to refund.",
            )
            .param("refund_amount")
        })?;
    let charge = store
        .charges
        .get_mut(&charge_id)
        .ok_or_else(|| ApiError::internal("the invoice's charge is missing"))?;
    if amount > charge.amount - charge.amount_refunded {
        return Err(ApiError::invalid(
            Some("charge_already_refunded"),
            format!(
                "Refund amount ({amount}) is greater than the unrefunded amount on the charge ({}).",
                charge.amount - charge.amount_refunded
            ),
        )
        .param("refund_amount"));
    }
    let id = new_id("re");
    charge.amount_refunded += amount;
    charge.refunds.push(id.clone());
    Ok(id)
}
