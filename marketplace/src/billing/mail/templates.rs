//! What billing e-mail says: one function per event, each giving `(subject, text)`.
//!
//! Plain text, short and specific: the amount, the dates, what happens next and the one page
//! to act on. Values come formatted by the caller (amounts by
//! [`crate::ledger::money::format`], days as `YYYY-MM-DD`, months as `YYYY-MM`); each is kept
//! to one line, so nothing a tenant named itself can add lines or headers.

use super::one_line;

/// The last lines of every e-mail.
const SIGNATURE: &str = "-- \nPlinth billing";

/// An invoice was issued.
pub fn invoice_issued(
    tenant_name: &str,
    number: &str,
    period: &str,
    total_formatted: &str,
    pay_url: &str,
) -> (String, String) {
    let [tenant, number, period, total, url] =
        [tenant_name, number, period, total_formatted, pay_url].map(one_line);
    let subject = format!("Plinth invoice {number} for {period}: {total}");
    let text = format!(
        "Hello {tenant},\n\
         \n\
         Invoice {number} for {period} has been issued. Total due: {total}.\n\
         \n\
         See the invoice and pay it here:\n\
         {url}\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// A payment of an invoice was declined; `attempt` counts from 1. `next_attempt_on` is when it
/// is tried again (`None`: not until the payment method changes); `suspend_on` is when the
/// tenant is suspended if the invoice is still unpaid.
pub fn payment_failed(
    tenant_name: &str,
    number: &str,
    total_formatted: &str,
    attempt: u32,
    next_attempt_on: Option<&str>,
    suspend_on: &str,
    console_url: &str,
) -> (String, String) {
    let [tenant, number, total, suspend_on, url] = [
        tenant_name,
        number,
        total_formatted,
        suspend_on,
        console_url,
    ]
    .map(one_line);
    let subject = format!("Payment failed for Plinth invoice {number} ({total})");
    let retry = match next_attempt_on.map(one_line) {
        Some(day) => format!("We will try again on {day}, with the payment method on file then."),
        None => "We will try again when you update the payment method.".to_owned(),
    };
    let text = format!(
        "Hello {tenant},\n\
         \n\
         We could not collect {total} for invoice {number} (attempt {attempt}): the payment \
         was declined.\n\
         \n\
         What happens next:\n\
         - {retry}\n\
         - If the invoice is still unpaid on {suspend_on}, {tenant} will be suspended: events \
         and plugin HTTP requests will be answered with 402 Payment Required until it is \
         paid. Installs and their data are kept.\n\
         \n\
         To pay, update the payment method on your subscription page:\n\
         {url}\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// The tenant was suspended for an unpaid invoice.
pub fn suspended(
    tenant_name: &str,
    number: &str,
    total_formatted: &str,
    console_url: &str,
) -> (String, String) {
    let [tenant, number, total, url] =
        [tenant_name, number, total_formatted, console_url].map(one_line);
    let subject = format!("{tenant} is suspended on Plinth: invoice {number} is unpaid");
    let text = format!(
        "Hello {tenant},\n\
         \n\
         Invoice {number} ({total}) is still unpaid, so {tenant} is now suspended.\n\
         \n\
         While it is suspended, events and plugin HTTP requests are answered with 402 Payment \
         Required. Your installs and their data are kept: nothing has been deleted.\n\
         \n\
         To restore service, update the payment method and pay the invoice on your \
         subscription page:\n\
         {url}\n\
         \n\
         Service resumes as soon as the invoice is paid.\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// A payment lifted the suspension.
pub fn restored(tenant_name: &str, number: &str) -> (String, String) {
    let [tenant, number] = [tenant_name, number].map(one_line);
    let subject = format!("{tenant} is active again on Plinth");
    let text = format!(
        "Hello {tenant},\n\
         \n\
         Invoice {number} is paid, thank you. {tenant} is active again: events and plugin \
         HTTP requests are served as before.\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// The trial of `plan` ends on `trial_ends_on`, `days_left` days from now (0: today).
pub fn trial_ending(
    tenant_name: &str,
    plan: &str,
    trial_ends_on: &str,
    days_left: u32,
    console_url: &str,
) -> (String, String) {
    let [tenant, plan, ends_on, url] =
        [tenant_name, plan, trial_ends_on, console_url].map(one_line);
    let when = match days_left {
        0 => "today".to_owned(),
        1 => "in 1 day".to_owned(),
        days => format!("in {days} days"),
    };
    let subject = format!("Your Plinth trial of {plan} ends {when} ({ends_on})");
    let text = format!(
        "Hello {tenant},\n\
         \n\
         The trial of the {plan} plan ends on {ends_on} ({when}).\n\
         \n\
         To stay on {plan} after the trial, add a payment method on your subscription page; \
         you can change the plan there too:\n\
         {url}\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// `used` of the `limit` `quota` (e.g. `invocations`) of `month` are spent: the alert at
/// `percent` (80 or 100) percent.
pub fn quota_alert(
    tenant_name: &str,
    quota: &str,
    percent: u8,
    used: i64,
    limit: i64,
    month: &str,
    console_url: &str,
) -> (String, String) {
    let [tenant, quota, month, url] = [tenant_name, quota, month, console_url].map(one_line);
    let (used, limit) = (grouped(used), grouped(limit));
    let (subject, consequence) = if percent >= 100 {
        (
            format!("{tenant} has used all its Plinth {quota} for {month}"),
            format!(
                "The quota is used up: further {quota} are refused (429 quota_exceeded) until \
                 it resets at the start of next month (UTC)."
            ),
        )
    } else {
        (
            format!("{tenant} has used {percent}% of its Plinth {quota} for {month}"),
            format!(
                "Once the quota is used up, further {quota} are refused (429 quota_exceeded) \
                 until it resets at the start of next month (UTC)."
            ),
        )
    };
    let text = format!(
        "Hello {tenant},\n\
         \n\
         {tenant} has used {used} of the {limit} {quota} its plan includes for {month} \
         ({percent}%).\n\
         \n\
         {consequence}\n\
         \n\
         To raise the limit, choose a larger plan on your subscription page:\n\
         {url}\n\
         \n\
         {SIGNATURE}\n"
    );
    (subject, text)
}

/// `n` with thousands separated by commas: `1,234,567`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://plinth.example/console/tenants/acme/subscription";

    fn assert_contains(text: &str, facts: &[&str]) {
        for fact in facts {
            assert!(text.contains(fact), "{fact:?} missing from:\n{text}");
        }
    }

    #[test]
    fn invoice_issued_names_the_invoice_and_where_to_pay() {
        let (subject, text) = invoice_issued("Acme", "PL-000042", "2026-12", "49.00 USD", URL);
        assert_eq!(subject, "Plinth invoice PL-000042 for 2026-12: 49.00 USD");
        assert_contains(
            &text,
            &["Hello Acme,", "PL-000042", "2026-12", "49.00 USD", URL],
        );
    }

    #[test]
    fn payment_failed_says_what_happens_next() {
        let (subject, text) = payment_failed(
            "Acme",
            "PL-000042",
            "49.00 USD",
            2,
            Some("2027-01-08"),
            "2027-01-15",
            URL,
        );
        assert!(subject.contains("PL-000042") && subject.contains("49.00 USD"));
        assert_contains(
            &text,
            &[
                "attempt 2",
                "try again on 2027-01-08",
                "unpaid on 2027-01-15",
                "suspended",
                "402",
                "update the payment method on your subscription page",
                URL,
            ],
        );

        let (_, last) =
            payment_failed("Acme", "PL-000042", "49.00 USD", 3, None, "2027-01-15", URL);
        assert_contains(&last, &["when you update the payment method", "attempt 3"]);
        assert!(!last.contains("try again on"));
    }

    #[test]
    fn suspended_says_402_and_that_data_is_kept() {
        let (subject, text) = suspended("Acme", "PL-000042", "49.00 USD", URL);
        assert!(subject.contains("suspended") && subject.contains("PL-000042"));
        assert_contains(
            &text,
            &[
                "49.00 USD",
                "events and plugin HTTP requests",
                "402 Payment Required",
                "installs and their data are kept",
                URL,
            ],
        );
    }

    #[test]
    fn restored_names_the_paid_invoice() {
        let (subject, text) = restored("Acme", "PL-000042");
        assert!(subject.contains("active again"));
        assert_contains(&text, &["PL-000042", "is paid", "active again"]);
    }

    #[test]
    fn trial_ending_counts_the_days() {
        let (subject, text) = trial_ending("Acme", "Team", "2027-01-10", 3, URL);
        assert_eq!(
            subject,
            "Your Plinth trial of Team ends in 3 days (2027-01-10)"
        );
        assert_contains(
            &text,
            &[
                "Team plan ends on 2027-01-10 (in 3 days)",
                "payment method",
                URL,
            ],
        );
        assert!(
            trial_ending("Acme", "Team", "2027-01-10", 1, URL)
                .0
                .contains("in 1 day (")
        );
        assert!(
            trial_ending("Acme", "Team", "2027-01-10", 0, URL)
                .0
                .contains("ends today")
        );
    }

    #[test]
    fn quota_alerts_give_the_numbers() {
        let (subject, text) =
            quota_alert("Acme", "invocations", 80, 80_512, 100_000, "2026-12", URL);
        assert_eq!(
            subject,
            "Acme has used 80% of its Plinth invocations for 2026-12"
        );
        assert_contains(
            &text,
            &[
                "80,512 of the 100,000 invocations",
                "2026-12",
                "(80%)",
                "Once the quota",
                URL,
            ],
        );

        let (subject, text) =
            quota_alert("Acme", "invocations", 100, 100_000, 100_000, "2026-12", URL);
        assert_eq!(
            subject,
            "Acme has used all its Plinth invocations for 2026-12"
        );
        assert_contains(
            &text,
            &["used up", "429", "start of next month", "larger plan"],
        );
    }

    #[test]
    fn tenant_names_cannot_add_lines() {
        let (subject, text) = restored("Evil\r\nBcc: victim@example.com", "PL-1");
        assert!(!subject.contains('\n') && !subject.contains('\r'));
        assert!(!text.contains("\nBcc:"));
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(-1_234_567), "-1,234,567");
        assert_eq!(grouped(i64::MIN), "-9,223,372,036,854,775,808");
    }
}
