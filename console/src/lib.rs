//! plinth-console: Plinth's web console, served by `plinth serve` on the API's port.
//!
//! Every page is rendered on the server (with [`maud`]) from the marketplace's own services:
//! the console never implements a rule of its own, it calls the functions the HTTP API calls,
//! with the caller's [`Principal`](plinth_marketplace::auth::Principal), so the same
//! authorisation applies. JavaScript and CSS are ours, compiled into the binary and served
//! under `/assets/`; pages work without JavaScript, which only adds live search and
//! drag-and-drop upload. Nothing is fetched from elsewhere: the Content-Security-Policy says so.
//!
//! Signing in stores a session token (the marketplace's own) in an `HttpOnly`,
//! `SameSite=Strict` cookie; every form carries a CSRF token derived from it (see [`session`]).
//!
//! ```no_run
//! # async fn run(state: plinth_marketplace::AppState) -> Result<(), plinth_marketplace::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
//!     .await
//!     .map_err(|e| plinth_marketplace::Error::Internal(e.to_string()))?;
//! plinth_marketplace::server::serve_with(
//!     listener,
//!     state,
//!     Some(plinth_console::routes()),
//!     std::future::pending(),
//!     std::time::Duration::from_secs(10),
//! )
//! .await
//! # }
//! ```

#![deny(missing_docs)]

mod assets;
mod error;
mod form;
mod format;
mod layout;
mod markdown;
mod pages;
pub mod session;
mod svg;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use plinth_marketplace::AppState;

pub use error::ConsoleError;

/// The largest package the upload form takes (the marketplace's own limits apply after).
const UPLOAD_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// Every page of the console, to merge into the marketplace's router
/// (`plinth_marketplace::server::router_with`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::catalog::page))
        .route("/catalog/results", get(pages::catalog::results))
        .route("/plugins/{id}", get(pages::detail::page))
        .route(
            "/plugins/{id}/install",
            get(pages::install::form).post(pages::install::submit),
        )
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::log_out))
        .route("/tenants", get(pages::tenant::index))
        .route("/tenants/{slug}", get(pages::tenant::dashboard))
        .route("/tenants/{slug}/plans", get(pages::plans::show))
        .route("/tenants/{slug}/billing", get(pages::billing::show))
        .route(
            "/tenants/{slug}/billing/payment-method",
            get(pages::billing::payment_method_return).post(pages::billing::add_payment_method),
        )
        .route(
            "/tenants/{slug}/billing/plan",
            post(pages::plans::change_plan),
        )
        .route(
            "/tenants/{slug}/billing/trial",
            post(pages::plans::start_trial),
        )
        .route(
            "/tenants/{slug}/billing/cancel",
            post(pages::billing::cancel),
        )
        .route(
            "/tenants/{slug}/invoices/{number}/pdf",
            get(pages::billing::invoice_pdf),
        )
        .route("/tenants/{slug}/runs", get(pages::runs::list))
        .route("/tenants/{slug}/runs/{id}", get(pages::runs::show))
        .route("/tenants/{slug}/runs/{id}/share", post(pages::runs::share))
        .route(
            "/tenants/{slug}/installs/{plugin}/capture",
            post(pages::runs::capture),
        )
        .route(
            "/tenants/{slug}/installs/{plugin}/uninstall",
            post(pages::tenant::uninstall),
        )
        .route(
            "/tenants/{slug}/installs/{plugin}/rollback",
            post(pages::tenant::rollback),
        )
        .route("/developer", get(pages::developer::portal))
        .route(
            "/developer/submissions",
            post(pages::developer::upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT_BYTES)),
        )
        .route(
            "/developer/submissions/{id}",
            get(pages::developer::submission),
        )
        .route(
            "/developer/publishers",
            post(pages::developer::create_publisher),
        )
        .route(
            "/developer/{namespace}/keys/{key}/revoke",
            post(pages::developer::revoke_key),
        )
        .route(
            "/developer/{namespace}/statements/{file}",
            get(pages::developer::statement_csv),
        )
        .route(
            "/developer/ratings/{plugin}/{rating}/reply",
            post(pages::developer::reply),
        )
        .route(
            "/developer/plugins/{plugin}/failures",
            get(pages::runs::failures),
        )
        .route(
            "/developer/plugins/{plugin}/shared-runs/{id}",
            get(pages::runs::shared_run),
        )
        .route("/rollouts", post(pages::rollouts::schedule))
        .route(
            "/rollouts/{plugin}/{version}/{action}",
            post(pages::rollouts::act),
        )
        .route("/review", get(pages::review::queue))
        .route("/review/{id}", post(pages::review::decide))
        .route("/operator", get(pages::operator::dashboard))
        .route(
            "/operator/tenants/{slug}/plan",
            post(pages::operator::set_plan),
        )
        .route(
            "/operator/tenants/{slug}/suspension",
            get(pages::suspension::show).post(pages::suspension::suspend),
        )
        .route(
            "/operator/tenants/{slug}/suspension/lift",
            post(pages::suspension::unsuspend),
        )
        .route(
            "/operator/coupons",
            get(pages::coupons::list).post(pages::coupons::create),
        )
        .route(
            "/operator/coupons/{code}/deactivate",
            post(pages::coupons::deactivate),
        )
        .route("/operator/plugins", post(pages::operator::plugin_action))
        .route("/operator/payouts", post(pages::operator::payout_run))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(session::guard))
}
