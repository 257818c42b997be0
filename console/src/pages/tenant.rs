//! `/tenants…`: the tenant dashboard (installs with status, version, breaker and update
//! policy; rollback and uninstall; usage against quota as charts; notifications; a suspended
//! tenant's banner) and the plans table the plan comparison (`super::plans`) shows.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::billing::suspension;
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::installs::{self, manage};
use plinth_marketplace::notifications::{self, Inbox};
use plinth_marketplace::tenants::{self, TenantRole, usage};
use plinth_marketplace::versions::rollback::tenant_rollback;
use serde::Deserialize;

use super::billing::monthly;
use super::visible_tenants;
use crate::error::ConsoleError;
use crate::form::Posted;
use crate::format::{bytes, count};
use crate::layout::{csrf_field, notice, page, see_other};
use crate::session::Viewer;
use crate::svg::{Bar, bar_chart};

/// `GET /tenants`: the viewer's tenants.
pub async fn index(State(state): State<AppState>, viewer: Viewer) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let tenants = visible_tenants(&state, principal).await?;
    Ok(page(
        &viewer,
        "Tenants",
        html! {
            h1 { "Your tenants" }
            @if tenants.is_empty() { p { "You are not a member of any tenant yet." } }
            ul.cards {
                @for (tenant, role) in &tenants {
                    li.card {
                        h2 { a href=(format!("/tenants/{}", tenant.slug)) { (tenant.name) } }
                        p.meta {
                            span { (tenant.slug) }
                            span { "plan " (tenant.plan) }
                            span { "you: " (role.map_or("operator", TenantRole::as_str)) }
                        }
                    }
                }
            }
        },
    ))
}

/// A notice the dashboard shows after an action.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    installed: Option<String>,
    uninstalled: Option<String>,
    rolled_back: Option<String>,
    updated: Option<String>,
}

impl Done {
    fn text(&self) -> Option<String> {
        if let Some(plugin) = &self.installed {
            return Some(format!("{plugin} is installed."));
        }
        if let Some(plugin) = &self.updated {
            return Some(format!("{plugin} is updated."));
        }
        if let Some(plugin) = &self.uninstalled {
            return Some(format!("{plugin} is uninstalled; its data was removed."));
        }
        self.rolled_back
            .as_ref()
            .map(|plugin| format!("{plugin} is rolled back to its previous version."))
    }
}

/// `GET /tenants/{slug}`: the dashboard.
pub async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let access = tenants::authorize(state.db(), principal, &slug, TenantRole::Readonly).await?;
    let tenant = access.tenant;
    let admin = access.acting.allows(TenantRole::Admin);
    let installs = installs::list(state.db(), &tenant.id).await?;
    let mut latest = std::collections::HashMap::new();
    for install in &installs {
        if let Ok(detail) = plinth_marketplace::catalog::plugin_detail(
            state.db(),
            &install.plugin_id,
            &plinth_marketplace::catalog::Visibility::tenant(&tenant.id),
        )
        .await
        {
            latest.insert(install.plugin_id.clone(), detail.latest_version);
        }
    }
    let host = state.runtime().ok().map(|runtime| runtime.host.clone());
    let plan = tenants::plan(state.db(), &tenant.plan).await?;
    let (start, _) = usage::month_of(now_ms())?;
    let meter = host.as_deref().map(|host| host.meter());
    let used = usage::counts(state.db(), meter, &tenant, start).await?;
    let inbox = notifications::read_inbox(
        state.db(),
        Inbox {
            kind: "tenant",
            id: &tenant.id,
        },
        false,
    )
    .await?;
    let totals = [
        Bar::new("Installs", used.installs, Some(plan.max_installs)),
        Bar::new(
            "Invocations",
            used.invocations,
            Some(plan.invocations_per_month),
        ),
        Bar::new(
            "KV bytes written",
            used.kv_bytes_written,
            Some(plan.kv_bytes),
        ),
    ];
    let per_plugin: Vec<Bar> = installs
        .iter()
        .map(|install| {
            let calls = used
                .plugins
                .iter()
                .find(|p| p.plugin == install.plugin_id)
                .map_or(0, |p| p.invocations);
            Bar::new(
                install.plugin_id.clone(),
                calls,
                Some(plan.invocations_per_month),
            )
        })
        .collect();
    Ok(page(
        &viewer,
        &tenant.name,
        html! {
            h1 { (tenant.name) }
            @if let Some(text) = done.text() { (notice(&text)) }
            @if let Some(refusal) = suspension::refusal(&tenant) {
                div.error #suspension role="alert" {
                    p { strong { "This tenant is suspended. " } (refusal.to_string()) }
                    p { a href=(format!("/tenants/{}/billing", tenant.slug)) { "Subscription and payment method" } }
                }
            }
            p.meta {
                span { (tenant.slug) }
                span { "plan " (plan.name) " · " a href=(format!("/tenants/{}/plans", tenant.slug)) { "compare plans" } }
                span { "you act as " (access.acting.label()) }
                span { a href=(format!("/tenants/{}/runs", tenant.slug)) { "run log" } }
                span { a #billing-link href=(format!("/tenants/{}/billing", tenant.slug)) { "subscription and invoices" } }
            }
            section.panel aria-labelledby="installs-title" {
                h2 #installs-title { "Installed plugins" }
                @if installs.is_empty() { p { "Nothing installed yet. " a href="/" { "Browse the catalog" } "." } }
                @else {
                    div.table-wrap {
                        table.stack #installs {
                            thead { tr {
                                th scope="col" { "Plugin" } th scope="col" { "Version" }
                                th scope="col" { "Status" } th scope="col" { "Breaker" }
                                th scope="col" { "Updates" }
                                @if admin { th scope="col" { "Actions" } }
                            } }
                            tbody {
                                @for install in &installs {
                                    @let breaker = host.as_ref()
                                        .and_then(|h| h.breaker_status(&tenant.id, &install.plugin_id))
                                        .map_or("not running", |status| status.state.as_str());
                                    tr {
                                        td data-label="Plugin" { a href=(format!("/plugins/{}", install.plugin_id)) { (install.plugin_id) }
                                            br; a.hint href=(format!("/tenants/{}/runs?plugin={}", tenant.slug, install.plugin_id)) { "runs and daily chart" } }
                                        td data-label="Version" { (install.version)
                                            @if let Some(newest) = latest.get(&install.plugin_id).filter(|v| **v != install.version) {
                                                @if admin {
                                                    br; a.update href=(format!("/plugins/{}/install?tenant={}&version={newest}", install.plugin_id, tenant.slug)) { "Update to " (newest) "…" }
                                                } @else { br; span.hint { (newest) " available" } }
                                            }
                                            @if let Some(previous) = &install.previous_version { br; span.hint { "before: " (previous) } } }
                                        td.status data-label="Status" { @if install.enabled { "active" } @else { "disabled" } }
                                        td data-label="Breaker" { (breaker) }
                                        td data-label="Updates" { (install.update_policy) @if install.pinned { " (pinned)" } }
                                        @if admin {
                                            td data-label="Actions" {
                                                @if install.previous_version.is_some() {
                                                    form method="post" action=(format!("/tenants/{}/installs/{}/rollback", tenant.slug, install.plugin_id))
                                                        data-confirm=(format!("Roll {} back to its previous version?", install.plugin_id)) {
                                                        (csrf_field(&viewer))
                                                        button.secondary type="submit" { "Roll back" }
                                                    }
                                                }
                                                form method="post" action=(format!("/tenants/{}/installs/{}/uninstall", tenant.slug, install.plugin_id))
                                                    data-confirm=(format!("Uninstall {}? Its stored data is removed.", install.plugin_id)) {
                                                    (csrf_field(&viewer))
                                                    button.danger type="submit" aria-label=(format!("Uninstall {}", install.plugin_id)) { "Uninstall" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="usage-title" {
                h2 #usage-title { "Usage this month" }
                (bar_chart("usage-totals", "Usage against the plan's quotas", &totals))
                @if !per_plugin.is_empty() {
                    (bar_chart("usage-plugins", "Invocations per plugin against the monthly quota", &per_plugin))
                }
            }
            section.panel aria-labelledby="inbox-title" {
                h2 #inbox-title { "Notifications" }
                @if inbox.is_empty() { p { "No notifications." } }
                ul {
                    @for item in &inbox {
                        li { @if !item.read { strong { "New: " } } (item.message) " " span.hint { (item.created_at) } }
                    }
                }
            }
        },
    ))
}

/// The plans side by side, marking `current`.
pub fn plan_table(plans: &[tenants::Plan], current: Option<&str>) -> Markup {
    html! {
        div.table-wrap {
            table #plans {
                thead { tr { th scope="col" { "" } @for plan in plans {
                    th scope="col" { (plan.name) @if current == Some(plan.name.as_str()) { " (current)" } } } } }
                tbody {
                    tr #plan-prices { th scope="row" { "Price" } @for plan in plans { td { (monthly(plan)) } } }
                    tr { th scope="row" { "Trial" } @for plan in plans { td {
                        @if plan.trial_days > 0 { (plan.trial_days) " days" } @else { "none" } } } }
                    tr { th scope="row" { "Installs" } @for plan in plans { td { (count(plan.max_installs)) } } }
                    tr { th scope="row" { "Invocations a month" } @for plan in plans { td { (count(plan.invocations_per_month)) } } }
                    tr { th scope="row" { "Key-value storage" } @for plan in plans { td { (bytes(u64::try_from(plan.kv_bytes).unwrap_or(0))) } } }
                    tr { th scope="row" { "Memory per plugin (MiB)" } @for plan in plans { td { (count(plan.memory_mb)) } } }
                    tr { th scope="row" { "Timeout per call (ms)" } @for plan in plans { td { (count(plan.timeout_ms)) } } }
                    tr { th scope="row" { "API requests a minute" } @for plan in plans { td { (count(plan.api_requests_per_minute)) } } }
                    tr { th scope="row" { "Plugin calls at once" } @for plan in plans { td { (count(plan.max_concurrent_calls)) } } }
                    tr { th scope="row" { "Calls one event may start" } @for plan in plans { td { (count(plan.max_invocations_per_event)) } } }
                    tr { th scope="row" { "Paid plugins" } @for plan in plans { td { @if plan.paid_plugins { "yes" } @else { "no" } } } }
                }
            }
        }
    }
}

/// `POST /tenants/{slug}/installs/{plugin}/uninstall`.
pub async fn uninstall(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, plugin)): Path<(String, String)>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    manage::uninstall(&state, principal, &slug, &plugin).await?;
    Ok(see_other(&format!("/tenants/{slug}?uninstalled={plugin}")))
}

/// `POST /tenants/{slug}/installs/{plugin}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, plugin)): Path<(String, String)>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    tenant_rollback(&state, principal, &slug, &plugin).await?;
    Ok(see_other(&format!("/tenants/{slug}?rolled_back={plugin}")))
}
