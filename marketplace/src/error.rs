//! The marketplace's one error type and its one mapping to HTTP responses.
//!
//! Every API error leaves as `{"error":{"code":"snake_case","message":"human sentence"}}` (plus
//! a `details` object where the caller needs more, such as the current permission list). A
//! storage fault is logged with its cause and answered with a bare `internal` error.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What can go wrong in the marketplace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: a field is missing, of the wrong type or out of range (400).
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code, e.g. `invalid_body`.
        code: &'static str,
        /// A sentence naming the field and what is wrong with it.
        message: String,
    },
    /// No credentials, or credentials that are unknown, expired or revoked (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this (403).
    #[error("{message}")]
    Forbidden {
        /// Machine-readable code, e.g. `forbidden` or `self_review`.
        code: &'static str,
        /// What the caller lacks.
        message: String,
    },
    /// The resource does not exist or the caller may not know that it does (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// Machine-readable code, e.g. `email_taken`.
        code: &'static str,
        /// What conflicts.
        message: String,
        /// Extra data for the caller, e.g. the current permission list.
        details: Option<Value>,
    },
    /// The request body is larger than allowed (413).
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller is over a rate (429).
    #[error("{message}")]
    RateLimited {
        /// What is limited.
        message: String,
        /// When to retry, in seconds.
        retry_after_secs: u64,
    },
    /// Too many log-in or sign-up attempts for an account or from a client address (429): no
    /// password was checked.
    #[error("{message}")]
    TooManyAttempts {
        /// Which limit (the account's or the address's) and the wait.
        message: String,
        /// When to retry, in seconds.
        retry_after_secs: u64,
    },
    /// The tenant has used a quota of its plan for this period (429): not a rate, a total.
    #[error("{message}")]
    QuotaExceeded {
        /// Which quota, how much was used, and of which plan.
        message: String,
        /// Seconds until the quota resets.
        retry_after_secs: u64,
    },
    /// The tenant has as many asynchronous events waiting as its plan allows (429
    /// `queue_full`, with `Retry-After`).
    #[error("{message}")]
    QueueFull {
        /// How many wait, and the plan's bound.
        message: String,
        /// When to retry, in seconds.
        retry_after_secs: u64,
    },
    /// A plugin could not answer a request routed to it: it does not serve it (501) or its
    /// call failed (502, with the call's error code such as `trap` or `timeout`).
    #[error("{message}")]
    Plugin {
        /// 501 or 502.
        status: StatusCode,
        /// Machine-readable code, e.g. `not_serving_http` or the call's error code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The install's circuit breaker is open after repeated failures of the plugin; the call
    /// was not run (503 with `Retry-After`: when the breaker lets a trial call through).
    #[error("{message}")]
    CircuitOpen {
        /// Which install, and how to reset it.
        message: String,
        /// Seconds until a trial call is let through.
        retry_after_secs: u64,
    },
    /// The host has no capacity for the call now, or the tenant is using its plan's share of
    /// it (503 `capacity`, with `Retry-After` when trying again makes sense). Not the plugin's
    /// fault: it never counts against its circuit breaker.
    #[error("{message}")]
    Capacity {
        /// What was short.
        message: String,
        /// Seconds until trying again makes sense; `None` when the call can never run under
        /// the plan (it needs more than the whole share).
        retry_after_secs: Option<u64>,
    },
    /// The tenant must pay first (402 `payment_required`): it is suspended for an unpaid
    /// invoice or by an operator, and its plugins do not run until that is settled.
    #[error("{message}")]
    PaymentRequired {
        /// Why, and how to pay.
        message: String,
    },
    /// The payment processor could not be reached or failed (502 `processor_unavailable`):
    /// nothing was changed; trying again is safe.
    #[error("{0}")]
    ProcessorUnavailable(String),
    /// A part of the platform this server does not run (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// The database failed (500).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something the server should never meet (500); the message is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The marketplace's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 400 with a code and a message naming the field.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 403 with a code.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A 404 for `what` (e.g. `tenant "acme"`).
    pub fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound(what.into())
    }

    /// A 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            Error::ProcessorUnavailable(_) => StatusCode::BAD_GATEWAY,
            Error::RateLimited { .. }
            | Error::TooManyAttempts { .. }
            | Error::QuotaExceeded { .. }
            | Error::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::CircuitOpen { .. } | Error::Capacity { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Plugin { status, .. } => *status,
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Conflict { code, .. }
            | Error::Plugin { code, .. } => code,
            Error::Unauthenticated(_) => "unauthenticated",
            Error::NotFound(_) => "not_found",
            Error::PayloadTooLarge { .. } => "too_large",
            Error::PaymentRequired { .. } => "payment_required",
            Error::ProcessorUnavailable(_) => "processor_unavailable",
            Error::RateLimited { .. } => "rate_limited",
            Error::TooManyAttempts { .. } => "too_many_attempts",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::QueueFull { .. } => "queue_full",
            Error::Unavailable(_) => "unavailable",
            Error::CircuitOpen { .. } => "circuit_open",
            Error::Capacity { .. } => "capacity",
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => "internal",
        }
    }

    /// Whether this is a unique-constraint violation from the database.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
            "the server failed to handle this request; it has been logged".to_owned()
        } else {
            self.to_string()
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let Error::Conflict {
            details: Some(details),
            ..
        } = &self
        {
            error["details"] = details.clone();
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Error::RateLimited {
            retry_after_secs, ..
        }
        | Error::TooManyAttempts {
            retry_after_secs, ..
        }
        | Error::QuotaExceeded {
            retry_after_secs, ..
        }
        | Error::QueueFull {
            retry_after_secs, ..
        }
        | Error::CircuitOpen {
            retry_after_secs, ..
        }
        | Error::Capacity {
            retry_after_secs: Some(retry_after_secs),
            ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// Storage results whose unique-constraint violation means "that exists already" (409).
pub trait ConflictOnUnique<T> {
    /// A unique violation becomes [`Error::Conflict`] with `code` and `message`; any other
    /// database error stays [`Error::Database`].
    ///
    /// # Errors
    ///
    /// As described.
    fn conflict_on_unique(self, code: &'static str, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ConflictOnUnique<T> for std::result::Result<T, sqlx::Error> {
    fn conflict_on_unique(self, code: &'static str, message: impl FnOnce() -> String) -> Result<T> {
        match self.map_err(Error::from) {
            Err(e) if e.is_unique_violation() => Err(Error::conflict(code, message())),
            other => other,
        }
    }
}

/// The body of every API error, for the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// The error.
    pub error: ApiErrorDetail,
}

/// `{code, message}` of an [`ApiError`].
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApiErrorDetail {
    /// Machine-readable, snake_case.
    pub code: String,
    /// A human sentence.
    pub message: String,
}
