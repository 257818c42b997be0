//! Showing amounts of minor units to people.

/// Currencies whose minor unit is the unit (ISO 4217 exponent 0).
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// `amount` minor units of `currency` as text, e.g. `12.34 USD`, `-0.05 EUR`, `500 JPY`.
pub fn format(amount: i64, currency: &str) -> String {
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{amount} {currency}");
    }
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_minor_units() {
        assert_eq!(super::format(1234, "USD"), "12.34 USD");
        assert_eq!(super::format(-5, "EUR"), "-0.05 EUR");
        assert_eq!(super::format(500, "JPY"), "500 JPY");
        assert_eq!(super::format(i64::MIN, "USD"), "-92233720368547758.08 USD");
    }
}
