//! A request's parameters: form pairs with Stripe's bracketed keys (`metadata[k]`,
//! `lines[0][amount]`, `expand[]`).

use std::collections::BTreeMap;

use crate::error::ApiError;

/// A request's `(key, value)` pairs, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses a form-encoded body or query string.
    pub fn parse(bytes: &[u8]) -> Result<Form, ApiError> {
        serde_urlencoded::from_bytes(bytes)
            .map(Form)
            .map_err(|e| ApiError::invalid(None, format!("Invalid request body: {e}")))
    }

    /// The first value of `key`, if sent (an empty value counts as not sent, as Stripe
    /// treats it as "unset").
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (`expand[]` may repeat).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|(k, _)| k.starts_with(prefix))
    }

    /// The value of `key`, which is required.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| missing(key))
    }

    /// The integer value of `key`, if sent.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|value| {
                value.parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        Some("parameter_invalid_integer"),
                        format!("Invalid integer: {value}"),
                    )
                    .param(key)
                })
            })
            .transpose()
    }

    /// The integer value of `key`, which is required.
    pub fn required_integer(&self, key: &str) -> Result<i64, ApiError> {
        self.integer(key)?.ok_or_else(|| missing(key))
    }

    /// The boolean value of `key`, if sent.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(value) => Err(ApiError::invalid(
                Some("parameter_invalid_boolean"),
                format!("Invalid boolean: {value}"),
            )
            .param(key)),
        }
    }

    /// The `metadata[k]=v` pairs as a map.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_owned(), v.clone()))
            })
            .collect()
    }
}

/// Stripe's answer to a required parameter left out.
fn missing(key: &str) -> ApiError {
    ApiError::invalid(
        Some("parameter_missing"),
        format!("Missing required param: {key}."),
    )
    .param(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_keys_are_read_as_sent() {
        let form = Form::parse(
            b"customer=cus_1&metadata%5Bplinth_invoice%5D=inv-1&metadata[plinth_tenant]=t&expand[]=a&expand[]=b&amount=-5&empty=",
        )
        .unwrap();
        assert_eq!(form.get("customer"), Some("cus_1"));
        assert_eq!(form.get("empty"), None);
        assert_eq!(form.all("expand[]"), vec!["a", "b"]);
        assert_eq!(form.integer("amount").unwrap(), Some(-5));
        let metadata = form.metadata();
        assert_eq!(
            metadata.get("plinth_invoice").map(String::as_str),
            Some("inv-1")
        );
        assert_eq!(metadata.get("plinth_tenant").map(String::as_str), Some("t"));
        assert!(form.has_prefix("metadata["));
    }

    #[test]
    fn missing_and_malformed_values_are_stripe_errors() {
        let form = Form::parse(b"amount=ten&flag=yes").unwrap();
        assert_eq!(
            form.required("customer").unwrap_err().code,
            Some("parameter_missing")
        );
        assert_eq!(
            form.integer("amount").unwrap_err().code,
            Some("parameter_invalid_integer")
        );
        assert_eq!(
            form.boolean("flag").unwrap_err().code,
            Some("parameter_invalid_boolean")
        );
    }
}
