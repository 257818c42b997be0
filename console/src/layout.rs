//! The page shell: head, skip link, navigation for what the viewer may do, main content.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::session::{CSRF_FIELD, Viewer};

/// The hidden CSRF field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf); }
}

/// The `<head>` and the skip link shared by every page.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Plinth" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/console.js" defer {}
        }
    }
}

/// A full page for `viewer`: navigation to the areas their roles open.
pub fn page(viewer: &Viewer, title: &str, content: Markup) -> Markup {
    let user = viewer.user();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Plinth" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="/" { "Catalog" } }
                            @if user.is_some() {
                                li { a href="/tenants" { "Tenants" } }
                                li { a href="/developer" { "Developer" } }
                            }
                            @if user.is_some_and(|u| u.is_reviewer()) {
                                li { a href="/review" { "Review" } }
                            }
                            @if user.is_some_and(|u| u.is_operator()) {
                                li { a href="/operator" { "Operator" } }
                            }
                        }
                    }
                    div.account {
                        @if let Some(user) = user {
                            span.who { (user.email) }
                            form method="post" action="/logout" {
                                (csrf_field(viewer))
                                button.link type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                        }
                    }
                }
                main #content tabindex="-1" { (content) }
            }
        }
    }
}

/// A page without navigation (errors, before the viewer is known).
pub fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/" { "Plinth" } }
                main #content tabindex="-1" { (content) }
            }
        }
    }
}

/// A notice at the top of a page.
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// An error shown in a form.
pub fn form_error(text: &str) -> Markup {
    html! { p.error role="alert" { (text) } }
}

/// A `303 See Other` to `path`: where a form that did its work sends the browser.
pub fn see_other(path: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, path.to_owned())]).into_response()
}
