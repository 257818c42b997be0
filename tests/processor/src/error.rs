//! Stripe's error envelope: `{"error":{"type","code","decline_code","message","param"}}`.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An error answer, as Stripe shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `card_error`, `idempotency_error` or `api_error`.
    pub kind: &'static str,
    /// The machine-readable code, when Stripe gives one.
    pub code: Option<&'static str>,
    /// The issuer's reason, for card declines.
    pub decline_code: Option<&'static str>,
    /// The sentence.
    pub message: String,
    /// The parameter at fault, if one is.
    pub param: Option<String>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(code: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code,
            decline_code: None,
            message: message.into(),
            param: None,
        }
    }

    /// The same error, blaming `param`.
    pub fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// A 404 `resource_missing` for an id in the path: `No such <what>: '<id>'`.
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            ..ApiError::invalid(Some("resource_missing"), format!("No such {what}: '{id}'"))
        }
    }

    /// A 400 `resource_missing` for an id given as the parameter `param`.
    pub fn no_such(what: &str, id: &str, param: &str) -> ApiError {
        ApiError::invalid(Some("resource_missing"), format!("No such {what}: '{id}'")).param(param)
    }

    /// A 402 `card_error`.
    pub fn card(code: &'static str, decline_code: Option<&'static str>, message: &str) -> ApiError {
        ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "card_error",
            code: Some(code),
            decline_code,
            message: message.to_owned(),
            param: None,
        }
    }

    /// The generic decline of `pm_card_chargeCustomerFail`.
    pub fn declined() -> ApiError {
        ApiError::card(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        )
    }

    /// A 401 for a missing or wrong key (Stripe gives no code).
    pub fn unauthorized(message: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            ..ApiError::invalid(None, message)
        }
    }

    /// A 500 `api_error`.
    pub fn internal(message: &str) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            ..ApiError::invalid(None, message)
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(map) = error.as_object_mut() {
            let mut put = |key: &str, value: Option<&str>| {
                if let Some(value) = value {
                    map.insert(key.to_owned(), Value::from(value));
                }
            };
            put("code", self.code);
            put("decline_code", self.decline_code);
            put("param", self.param.as_deref());
        }
        json!({ "error": error })
    }
}
