//! `/plugins/{id}`: a plugin's page. README (sanitised), permissions as sentences with risk
//! levels, versions with changelogs, the rating histogram and reviews with replies.

use axum::extract::{Path, State};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::catalog::{self, PluginDetail, Visibility};
use plinth_marketplace::ratings::{self, RatingPage, Reveal};

use super::{admin_tenants, permission_item, pricing_text, rating_text};
use crate::error::ConsoleError;
use crate::layout::page as layout_page;
use crate::markdown;
use crate::session::Viewer;
use crate::svg::{Bar, bar_chart};

/// How many reviews the page shows.
const REVIEWS_SHOWN: i64 = 20;

/// The README of the plugin's `version`, if its package has one.
async fn readme(
    state: &AppState,
    plugin: &PluginDetail,
    visibility: &Visibility,
) -> Option<String> {
    let file = catalog::package_bytes(state.db(), &plugin.id, &plugin.latest_version, visibility)
        .await
        .ok()?;
    match plinth_package::Package::from_bytes(&file.bytes) {
        Ok(package) => package.readme,
        Err(error) => {
            tracing::warn!(plugin = %plugin.id, %error, "stored package does not read");
            None
        }
    }
}

/// What the viewer may do about installing: a button, or why not.
async fn install_action(
    state: &AppState,
    viewer: &Viewer,
    plugin: &PluginDetail,
) -> Result<Markup, ConsoleError> {
    let Some(principal) = &viewer.principal else {
        return Ok(html! { p { a href="/login" { "Log in" } " to install this plugin." } });
    };
    if admin_tenants(state, principal).await?.is_empty() {
        return Ok(html! {
            p.hint #no-install { "Only a tenant's owners and admins can install plugins; ask one of yours." }
        });
    }
    Ok(html! {
        a.button #install href=(format!("/plugins/{}/install", plugin.id)) { "Install…" }
    })
}

/// The reviews and their replies.
fn reviews(page: &RatingPage) -> Markup {
    html! {
        @if page.items.is_empty() { p { "No reviews yet." } }
        @for rating in &page.items {
            article.card {
                p.meta {
                    strong { (rating.rater) }
                    span aria-label=(format!("{} of 5 stars", rating.stars)) { ("★".repeat(usize::try_from(rating.stars).unwrap_or(0))) }
                    span { (rating.updated_at) }
                }
                @if let Some(text) = &rating.text { p { (text) } }
                @if rating.hidden { p.hint { "A reviewer hid this text." } }
                @if let Some(reply) = &rating.reply {
                    blockquote { strong { "Publisher's reply: " } (reply.text) }
                }
            }
        }
    }
}

/// `GET /plugins/{id}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let visibility = Visibility::of(viewer.principal.as_ref());
    let plugin = catalog::plugin_detail(state.db(), &id, &visibility).await?;
    let readme = readme(&state, &plugin, &visibility).await;
    let ratings = ratings::list(
        state.db(),
        &id,
        &visibility,
        Reveal::Public,
        REVIEWS_SHOWN,
        None,
    )
    .await?;
    let action = install_action(&state, &viewer, &plugin).await?;
    let latest = plugin
        .versions
        .iter()
        .find(|v| v.version == plugin.latest_version);
    let histogram: Vec<Bar> = (1..=5)
        .rev()
        .map(|stars: i64| {
            let count = plugin
                .rating
                .histogram
                .get(&stars.to_string())
                .copied()
                .unwrap_or(0);
            let noun = if stars == 1 { "star" } else { "stars" };
            Bar::new(format!("{stars} {noun}"), count, None)
        })
        .collect();
    Ok(layout_page(
        &viewer,
        &plugin.name,
        html! {
            h1 { (plugin.name) }
            @if let Some(deprecation) = &plugin.deprecation {
                p.warning #deprecation role="status" {
                    strong { "Deprecated. " } (deprecation.notice)
                    @if let Some(replacement) = &deprecation.replacement {
                        " " a href=(format!("/plugins/{replacement}")) { "See " (replacement) "." }
                    }
                }
            }
            p.meta {
                span { (plugin.id) }
                @if plugin.private { span.tag #private { "private to your organisation" } }
                span { "by " (plugin.publisher.name) " (" (plugin.publisher.namespace) ")" }
                span { "latest v" (plugin.latest_version) }
                span { (plugin.installs) " installs" }
                span { (pricing_text(&plugin.pricing)) }
                span { (rating_text(plugin.rating.average)) " (" (plugin.rating.count) " ratings)" }
            }
            p { (plugin.description) }
            p { @for category in &plugin.categories { span.tag { (category) } " " } }
            (action)
            div.grid2 {
                div {
                    section.panel aria-labelledby="readme-title" {
                        h2 #readme-title { "README" }
                        div.readme {
                            @match &readme {
                                Some(text) => (markdown::render(text)),
                                None => p { "This plugin has no README." },
                            }
                        }
                    }
                    section.panel aria-labelledby="versions-title" {
                        h2 #versions-title { "Versions" }
                        @for version in &plugin.versions {
                            article {
                                h3 {
                                    "v" (version.version)
                                    @if version.yanked { " " span.tag { "yanked" } }
                                    @if version.deprecated { " " span.tag { "deprecated" } }
                                }
                                p.meta { "published " (version.published_at) }
                                @if let Some(changelog) = &version.changelog {
                                    div.readme { (markdown::render(changelog)) }
                                }
                            }
                        }
                    }
                }
                div {
                    section.panel aria-labelledby="permissions-title" {
                        h2 #permissions-title { "What it may do" }
                        @if let Some(latest) = latest {
                            @if latest.permissions.is_empty() { p { "Nothing beyond its own code." } }
                            ul.permissions {
                                @for permission in &latest.permissions {
                                    li { (permission_item(permission.risk, &permission.sentence)) }
                                }
                            }
                        }
                    }
                    section.panel aria-labelledby="ratings-title" {
                        h2 #ratings-title { "Ratings" }
                        (bar_chart("rating-histogram", "Ratings by stars", &histogram))
                    }
                }
            }
            section aria-labelledby="reviews-title" {
                h2 #reviews-title { "Reviews" }
                (reviews(&ratings))
            }
        },
    ))
}
