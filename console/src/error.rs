//! [`ConsoleError`]: what a page answers when something goes wrong, as an HTML page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A marketplace service refused (its status and message are shown as they are).
    #[error(transparent)]
    Marketplace(#[from] plinth_marketplace::Error),
    /// The page needs a signed-in user.
    #[error("log in to see this page")]
    LoginRequired,
    /// A form came without its CSRF token, or with another session's.
    #[error(
        "this form is missing its security token, or it belongs to another session; reload the page and try again"
    )]
    Csrf,
    /// A form could not be read.
    #[error("{0}")]
    BadForm(String),
}

impl ConsoleError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Marketplace(error) => error.status(),
            ConsoleError::LoginRequired => StatusCode::UNAUTHORIZED,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The message shown: an internal error's detail goes to the log, not the page.
    pub fn message(&self) -> String {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "console request failed");
            "the server failed to handle this request; it has been logged".to_owned()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let signed_out = matches!(
            self,
            ConsoleError::LoginRequired
                | ConsoleError::Marketplace(plinth_marketplace::Error::Unauthenticated(_))
        );
        if signed_out {
            return Redirect::to("/login").into_response();
        }
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (self.message()) }
            p { a href="/" { "Back to the catalog" } }
        };
        (status, crate::layout::bare(title, body)).into_response()
    }
}
