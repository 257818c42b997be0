//! `/`: the catalog. A search form with filters and sorts over the marketplace's own search;
//! `/catalog/results` answers just the result cards, for live search.

use axum::extract::{Query, State};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::catalog::PluginSummary;
use plinth_marketplace::catalog::Visibility;
use plinth_marketplace::catalog::search::{SearchParams, SearchQuery, search};

use super::{pricing_text, rating_text};
use crate::error::ConsoleError;
use crate::layout::{self, form_error};
use crate::session::Viewer;

/// Capabilities a search may filter by, with their labels.
const PERMISSIONS: [(&str, &str); 6] = [
    ("kv", "Stores data"),
    ("http", "Calls the internet"),
    ("events", "Uses events"),
    ("events.subscribe", "Receives events"),
    ("events.emit", "Sends events"),
    ("config", "Reads settings"),
];

/// Pricing models, with their labels.
const PRICING: [&str; 3] = ["free", "monthly", "per-1000-invocations"];

/// Sort orders, with their labels.
const SORTS: [(&str, &str); 4] = [
    ("relevance", "Best match"),
    ("installs", "Most installed"),
    ("rating", "Best rated"),
    ("recent", "Recently updated"),
];

/// The search form's parameters with empty fields taken as absent.
fn cleaned(mut params: SearchParams) -> SearchParams {
    let clean = |field: &mut Option<String>| {
        if field.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *field = None;
        }
    };
    for field in [
        &mut params.q,
        &mut params.category,
        &mut params.permission,
        &mut params.pricing,
        &mut params.sort,
        &mut params.limit,
        &mut params.cursor,
    ] {
        clean(field);
    }
    params
}

/// The query string of `params` with the cursor replaced by `cursor`.
fn next_page_link(params: &SearchParams, cursor: &str) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("q", params.q.as_deref()),
        ("category", params.category.as_deref()),
        ("permission", params.permission.as_deref()),
        ("pricing", params.pricing.as_deref()),
        ("sort", params.sort.as_deref()),
        ("cursor", Some(cursor)),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| (key, v)))
    .collect();
    format!(
        "/?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// One plugin's card.
fn card(plugin: &PluginSummary) -> Markup {
    html! {
        li.card {
            h2 { a href=(format!("/plugins/{}", plugin.id)) { (plugin.name) } }
            p.meta {
                span { (plugin.id) } span { "v" (plugin.latest_version) }
                @if plugin.deprecated { span.tag { "deprecated" } }
            }
            p { (plugin.description) }
            p.meta {
                span { (rating_text(plugin.rating)) }
                span { (plugin.installs) " installs" }
                span { (pricing_text(&plugin.pricing)) }
            }
            p { @for category in &plugin.categories { span.tag { (category) } " " } }
        }
    }
}

/// The result cards of `params` (or the reason the search is not valid).
async fn result_list(state: &AppState, viewer: &Viewer, params: &SearchParams) -> Markup {
    let visibility = Visibility::of(viewer.principal.as_ref());
    let found = match SearchQuery::from_params(params) {
        Ok(query) => search(state.db(), &query, &visibility).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(page) => html! {
            p.hint { (page.items.len()) @if page.items.len() == 1 { " plugin shown" } @else { " plugins shown" } }
            @if page.items.is_empty() {
                p { "No plugin matches. Try fewer words or filters." }
            }
            ul.cards { @for plugin in &page.items { (card(plugin)) } }
            @if let Some(cursor) = &page.next_cursor {
                p { a href=(next_page_link(params, cursor)) { "More results" } }
            }
        },
        Err(e) => {
            let error = ConsoleError::from(e);
            form_error(&error.message())
        }
    }
}

/// A `<select>` named `name` with an "any" first choice.
fn select(name: &str, label: &str, options: &[(&str, &str)], chosen: Option<&str>) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            select #(name) name=(name) {
                option value="" { "Any" }
                @for (value, text) in options {
                    option value=(value) selected[chosen == Some(*value)] { (text) }
                }
            }
        }
    }
}

/// The catalog page for `params`.
async fn page_handler(state: &AppState, viewer: &Viewer, params: SearchParams) -> Markup {
    let params = cleaned(params);
    let pricing: Vec<(&str, &str)> = PRICING.iter().map(|p| (*p, pricing_text(p))).collect();
    let results = result_list(state, viewer, &params).await;
    layout::page(
        viewer,
        "Catalog",
        html! {
            h1 { "Plugin catalog" }
            form.panel.search method="get" action="/" role="search" data-live-search {
                div.wide {
                    label for="q" { "Search plugins" }
                    input #q type="search" name="q" value=(params.q.as_deref().unwrap_or(""))
                        placeholder="e.g. slack notify" autocomplete="off";
                }
                div {
                    label for="category" { "Category" }
                    input #category type="text" name="category"
                        value=(params.category.as_deref().unwrap_or(""));
                }
                (select("permission", "Permission", &PERMISSIONS, params.permission.as_deref()))
                (select("pricing", "Price", &pricing, params.pricing.as_deref()))
                (select("sort", "Sort by", &SORTS, params.sort.as_deref()))
                div { button type="submit" { "Search" } }
            }
            section #results aria-live="polite" aria-label="Search results" { (results) }
        },
    )
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<SearchParams>,
) -> Markup {
    page_handler(&state, &viewer, params).await
}

/// `GET /catalog/results`: only the result cards (live search replaces them in place).
pub async fn results(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<SearchParams>,
) -> Markup {
    result_list(&state, &viewer, &cleaned(params)).await
}
