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

/// The `<head>` shared by every page; `refresh` (a `<meta http-equiv="refresh">` value) sends
/// the browser on.
fn head(title: &str, refresh: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(refresh) = refresh { meta http-equiv="refresh" content=(refresh); }
            title { (title) " · Plinth" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/console.js" defer {}
        }
    }
}

/// A full page for `viewer`: navigation to the areas their roles open.
pub fn page(viewer: &Viewer, title: &str, content: Markup) -> Markup {
    shell(viewer, title, None, content)
}

/// A full page for `viewer` that sends the browser on to `url` at once (a `<meta>` refresh,
/// which no JavaScript and no `form-action` of the Content-Security-Policy stands in the way
/// of); `content` says where it goes, with a link, in case it does not. Only a path of this
/// server or an `http(s)` address is followed.
pub fn forward(viewer: &Viewer, title: &str, url: &str, content: Markup) -> Markup {
    let web = url.starts_with("https://") || url.starts_with("http://");
    let local = url.starts_with('/') && !url.starts_with("//");
    let followed =
        (web || local) && !url.contains(['\'', '\\']) && !url.chars().any(char::is_control);
    let refresh = followed.then(|| format!("0; url='{url}'"));
    shell(viewer, title, refresh.as_deref(), content)
}

/// The page around `content`, with `refresh` in its head if given.
fn shell(viewer: &Viewer, title: &str, refresh: Option<&str>, content: Markup) -> Markup {
    let user = viewer.user();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, refresh))
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
            (head(title, None))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymous() -> Viewer {
        Viewer {
            principal: None,
            csrf: String::new(),
        }
    }

    #[test]
    fn forward_follows_web_addresses_and_local_paths_only() {
        let refresh = |url: &str| {
            forward(&anonymous(), "t", url, html! {})
                .into_string()
                .contains("http-equiv=\"refresh\"")
        };
        assert!(refresh("https://checkout.example.com/c/pay/cs_1#frag"));
        assert!(refresh("/tenants/acme/billing"));
        assert!(!refresh("javascript:alert(1)"));
        assert!(!refresh("//elsewhere.example"));
        assert!(!refresh("https://x.example/'; url=javascript:1"));
        assert!(
            !page(&anonymous(), "t", html! {})
                .into_string()
                .contains("http-equiv")
        );
    }
}
