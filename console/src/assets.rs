//! The console's own stylesheet and script, compiled in and served from `/assets/`.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::ConsoleError;

/// The stylesheet.
const CSS: &str = include_str!("../assets/console.css");
/// Live search, drag-and-drop upload, confirmations; every page works without it.
const JS: &str = include_str!("../assets/console.js");

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Result<Response, ConsoleError> {
    let (body, content_type) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        other => {
            return Err(plinth_marketplace::Error::not_found(format!("asset {other:?}")).into());
        }
    };
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response())
}
