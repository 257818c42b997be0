//! What plugins did. `/tenants/{slug}/runs…`: the tenant's run log (filters, one run with its
//! log lines, sharing a run with the plugin's publisher), and for one install its daily chart
//! and the capture switch. `/developer/plugins/{plugin}/…`: a plugin's failure reports and
//! the runs tenants shared with its publisher. The marketplace's run services decide who may
//! see and do what; these pages only show it.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::installs::{self, change};
use plinth_marketplace::runs::daily::{self, DAYS_KEPT};
use plinth_marketplace::runs::query::{self, RunDetail, RunFilter, RunSummary};
use plinth_marketplace::runs::reports;
use plinth_marketplace::tenants::{self, TenantRole};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::format::{bytes, count};
use crate::layout::{csrf_field, notice, page, see_other};
use crate::session::Viewer;
use crate::svg::{Column, column_chart};

/// Runs one page of the console lists.
const PAGE: i64 = 50;

/// The run log's filters, as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct RunsParams {
    plugin: Option<String>,
    outcome: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    /// A notice after an action.
    done: Option<String>,
}

fn given(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl RunsParams {
    fn filter(&self) -> RunFilter {
        RunFilter {
            plugin: given(self.plugin.as_ref()),
            outcome: given(self.outcome.as_ref()),
            since: given(self.since.as_ref()),
            until: given(self.until.as_ref()),
            text: given(self.q.as_ref()),
            before: given(self.before.as_ref()),
            limit: Some(PAGE),
        }
    }

    /// The query string of these filters with `before` set to `cursor`.
    fn next_page(&self, cursor: &str) -> String {
        let pairs: Vec<(&str, String)> = [
            ("plugin", given(self.plugin.as_ref())),
            ("outcome", given(self.outcome.as_ref())),
            ("q", given(self.q.as_ref())),
            ("since", given(self.since.as_ref())),
            ("until", given(self.until.as_ref())),
            ("before", Some(cursor.to_owned())),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A run's outcome as a tag.
fn outcome_tag(outcome: &str) -> Markup {
    html! {
        @if outcome == "ok" { span.tag.ok { "ok" } }
        @else { span.tag.failed { (outcome) } }
    }
}

/// A duration in microseconds, as people read it.
fn duration(micros: i64) -> String {
    if micros >= 1_000_000 {
        format!("{:.2} s", micros as f64 / 1e6)
    } else if micros >= 1_000 {
        format!("{:.1} ms", micros as f64 / 1e3)
    } else {
        format!("{micros} µs")
    }
}

/// `GET /tenants/{slug}/runs`: the run log, filtered; for one install also its daily chart.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(params): Query<RunsParams>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let access = tenants::authorize(state.db(), principal, &slug, TenantRole::Readonly).await?;
    let tenant = access.tenant;
    let admin = access.acting.allows(TenantRole::Admin);
    let filter = params.filter();
    let runs = query::list(&state, principal, &slug, &filter).await?;
    let installs = installs::list(state.db(), &tenant.id).await?;
    let install = filter
        .plugin
        .as_ref()
        .and_then(|plugin| installs.iter().find(|i| &i.plugin_id == plugin));
    let chart = match &filter.plugin {
        Some(plugin) => {
            Some(daily::for_install(&state, principal, &slug, plugin, DAYS_KEPT).await?)
        }
        None => None,
    };
    let selected = |value: &str, current: Option<&String>| current.is_some_and(|c| c == value);
    Ok(page(
        &viewer,
        &format!("Run log of {}", tenant.name),
        html! {
            h1 { "Run log of " (tenant.name) }
            @if let Some(text) = &params.done { (notice(text)) }
            p.meta { a href=(format!("/tenants/{}", tenant.slug)) { "Back to the dashboard" } }
            form.filters method="get" action=(format!("/tenants/{}/runs", tenant.slug)) role="search" {
                div.field {
                    label for="filter-plugin" { "Install" }
                    select #filter-plugin name="plugin" {
                        option value="" { "All installs" }
                        @for install in &installs {
                            option value=(install.plugin_id) selected[selected(&install.plugin_id, filter.plugin.as_ref())] { (install.plugin_id) }
                        }
                    }
                }
                div.field {
                    label for="filter-outcome" { "Outcome" }
                    select #filter-outcome name="outcome" {
                        option value="" { "Any" }
                        option value="ok" selected[selected("ok", filter.outcome.as_ref())] { "Succeeded" }
                        option value="failed" selected[selected("failed", filter.outcome.as_ref())] { "Failed" }
                    }
                }
                div.field {
                    label for="filter-q" { "Text in the log" }
                    input #filter-q type="search" name="q" value=(filter.text.clone().unwrap_or_default());
                }
                div.field {
                    label for="filter-since" { "From (day, UTC)" }
                    input #filter-since type="date" name="since" value=(filter.since.clone().unwrap_or_default());
                }
                div.field {
                    label for="filter-until" { "Until (day, UTC, included)" }
                    input #filter-until type="date" name="until" value=(filter.until.clone().unwrap_or_default());
                }
                button type="submit" { "Filter" }
            }
            @if let (Some(days), Some(plugin)) = (&chart, &filter.plugin) {
                section.panel aria-labelledby="daily-title" {
                    h2 #daily-title { "Calls per day of " (plugin) }
                    (daily_chart(plugin, days))
                    @if let Some(install) = install {
                        p {
                            "Payloads and outputs are "
                            strong { @if install.capture_runs { "kept" } @else { "not kept" } }
                            " in this install's runs."
                        }
                        @if admin {
                            form.inline method="post" action=(format!("/tenants/{}/installs/{}/capture", tenant.slug, plugin)) {
                                (csrf_field(&viewer))
                                input type="hidden" name="capture" value=(if install.capture_runs { "off" } else { "on" });
                                button.secondary type="submit" {
                                    @if install.capture_runs { "Stop keeping payloads" } @else { "Keep payloads and outputs" }
                                }
                            }
                            p.hint { "Kept payloads are cut to 16 KiB and the install's secret settings are replaced by [redacted]." }
                        }
                    }
                }
            }
            section.panel aria-labelledby="runs-title" {
                h2 #runs-title { "Runs" }
                @if runs.items.is_empty() { p { "No runs match." } }
                @else { (runs_table(&tenant.slug, &runs.items)) }
                @if let Some(cursor) = &runs.next_cursor {
                    p { a href=(format!("/tenants/{}/runs?{}", tenant.slug, params.next_page(cursor))) { "Older runs" } }
                }
            }
        },
    ))
}

/// The runs as a table, each linking to its page.
fn runs_table(slug: &str, runs: &[RunSummary]) -> Markup {
    html! {
        div.table-wrap {
            table.stack #runs {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "Install" } th scope="col" { "Entry" }
                    th scope="col" { "Outcome" } th scope="col" { "Took" }
                } }
                tbody {
                    @for run in runs {
                        tr {
                            td data-label="Started" { a href=(format!("/tenants/{slug}/runs/{}", run.id)) { (run.started_at) } }
                            td data-label="Install" { (run.plugin) " " span.hint { (run.version) } }
                            td data-label="Entry" { (run.entry_kind) ": " (run.entry) }
                            td data-label="Outcome" { (outcome_tag(&run.outcome)) @if run.shared { " " span.tag { "shared" } } }
                            td data-label="Took" { (duration(run.duration_us)) }
                        }
                    }
                }
            }
        }
    }
}

/// The last days of an install as a column chart, with a table of the same numbers.
fn daily_chart(plugin: &str, days: &[daily::DayStats]) -> Markup {
    let columns: Vec<Column> = days
        .iter()
        .map(|day| Column {
            label: day.day.clone(),
            ok: day.invocations - day.failures_total(),
            failed: day.failures_total(),
        })
        .collect();
    let recent: Vec<&daily::DayStats> = days
        .iter()
        .rev()
        .filter(|d| d.invocations > 0)
        .take(7)
        .collect();
    html! {
        (column_chart(&format!("daily-{plugin}"), &format!("Calls per day of {plugin}, last {} days", days.len()), &columns))
        @if !recent.is_empty() {
            div.table-wrap {
                table #daily-table {
                    caption { "Latest days with calls" }
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Calls" } th scope="col" { "Failed" } th scope="col" { "p50" } th scope="col" { "p95" } } }
                    tbody {
                        @for day in &recent {
                            tr {
                                td { (day.day) } td { (count(day.invocations)) }
                                td { (count(day.failures_total()))
                                    @for (code, n) in &day.failures { " " span.hint { (code) " " (n) } } }
                                td { "≤ " (duration(i64::try_from(day.p50_us).unwrap_or(i64::MAX))) }
                                td { "≤ " (duration(i64::try_from(day.p95_us).unwrap_or(i64::MAX))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A run whole: what it was, how it ended, its log lines and what was captured.
fn run_detail(run: &RunDetail) -> Markup {
    let summary = &run.summary;
    html! {
        dl.facts {
            dt { "Install" } dd { (summary.plugin) " " (summary.version) }
            dt { "Entry" } dd { (summary.entry_kind) ": " (summary.entry) }
            @if let Some(event) = &summary.event_id { dt { "Event" } dd { code { (event) } } }
            dt { "Started" } dd { (summary.started_at) }
            dt { "Took" } dd { (duration(summary.duration_us)) }
            dt { "Outcome" } dd #run-outcome { (outcome_tag(&summary.outcome)) }
            dt { "Memory" } dd { (bytes(u64::try_from(run.memory_bytes).unwrap_or(0))) }
            @if let Some(fuel) = run.fuel { dt { "Fuel" } dd { (count(fuel)) } }
            dt { "Outbound requests" } dd { (count(run.outbound_requests)) }
            dt { "KV bytes written" } dd { (count(run.kv_bytes_written)) }
        }
        @if let Some(error) = &summary.error {
            p.error role="alert" #run-error { strong { (error.code) } ": " (error.message) }
        }
        h2 { "Log lines" }
        @if run.logs.is_empty() { p { "The plugin logged nothing." } }
        @else {
            div.table-wrap {
                table #run-logs {
                    thead { tr { th scope="col" { "Level" } th scope="col" { "Message" } th scope="col" { "Fields" } } }
                    tbody {
                        @for line in &run.logs {
                            tr {
                                td { span class=(format!("tag level-{}", line.level)) { (line.level) } }
                                td { (line.message) @if line.truncated { " " span.hint { "(cut)" } } }
                                td { @for (key, value) in &line.fields { code { (key) "=" (value) } " " } }
                            }
                        }
                    }
                }
            }
        }
        @if run.logs_dropped > 0 { p.hint { (count(run.logs_dropped)) " more lines were dropped past the per-call caps." } }
        @if let Some(capture) = &run.capture {
            h2 { "Payload" }
            pre #run-input { (capture.input) }
            h2 { "Output" }
            pre #run-output { (capture.output) }
            @if capture.truncated { p.hint { "Cut to the capture limit." } }
        }
    }
}

/// `GET /tenants/{slug}/runs/{id}`: one run, and (for admins) sharing it.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let access = tenants::authorize(state.db(), principal, &slug, TenantRole::Readonly).await?;
    let admin = access.acting.allows(TenantRole::Admin);
    let run = query::get(&state, principal, &slug, &id).await?;
    Ok(page(
        &viewer,
        "Run",
        html! {
            h1 { "Run of " (run.summary.plugin) }
            p.meta { a href=(format!("/tenants/{slug}/runs?plugin={}", run.summary.plugin)) { "Back to the run log" } }
            (run_detail(&run))
            @if admin {
                form method="post" action=(format!("/tenants/{slug}/runs/{id}/share"))
                    data-confirm=(if run.summary.shared { "Stop sharing this run?" } else { "Share this run, its log lines and any kept payload with the plugin's publisher?" }) {
                    (csrf_field(&viewer))
                    input type="hidden" name="share" value=(if run.summary.shared { "no" } else { "yes" });
                    button.secondary type="submit" {
                        @if run.summary.shared { "Stop sharing with the publisher" } @else { "Share with the publisher" }
                    }
                }
            } @else if run.summary.shared { p { "This run is shared with the plugin's publisher." } }
        },
    ))
}

/// The share form.
#[derive(Debug, Deserialize)]
pub struct ShareForm {
    share: String,
}

/// `POST /tenants/{slug}/runs/{id}/share`.
pub async fn share(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, id)): Path<(String, String)>,
    Posted(form): Posted<ShareForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    reports::set_shared(&state, principal, &slug, &id, form.share == "yes").await?;
    Ok(see_other(&format!("/tenants/{slug}/runs/{id}")))
}

/// The capture form.
#[derive(Debug, Deserialize)]
pub struct CaptureForm {
    capture: String,
}

/// `POST /tenants/{slug}/installs/{plugin}/capture`.
pub async fn capture(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, plugin)): Path<(String, String)>,
    Posted(form): Posted<CaptureForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let on = form.capture == "on";
    let request = change::InstallChange {
        capture_runs: Some(on),
        ..change::InstallChange::default()
    };
    change::change(&state, principal, &slug, &plugin, request).await?;
    let done = if on {
        "Payloads and outputs are kept from now on."
    } else {
        "Payloads and outputs are no longer kept."
    };
    let query = serde_urlencoded::to_string([("plugin", plugin.as_str()), ("done", done)])
        .unwrap_or_default();
    Ok(see_other(&format!("/tenants/{slug}/runs?{query}")))
}

/// `GET /developer/plugins/{plugin}/failures`: the plugin's failures across tenants and the
/// runs tenants shared.
pub async fn failures(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(plugin): Path<String>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let reports = reports::failures(&state, principal, &plugin).await?;
    let shared = reports::shared_runs(&state, principal, &plugin).await?;
    Ok(page(
        &viewer,
        &format!("Failures of {plugin}"),
        html! {
            h1 { "Failures of " (plugin) }
            p.meta { a href="/developer" { "Back to the portal" } }
            p { "Failures in every tenant, grouped by kind. No tenant, payload or log line is shown unless a tenant shares a run." }
            @if reports.is_empty() { p { "No failures recorded." } }
            @else {
                div.table-wrap {
                    table.stack #failures {
                        thead { tr { th scope="col" { "Kind" } th scope="col" { "Message" } th scope="col" { "Failures" } th scope="col" { "Versions" } th scope="col" { "Seen" } } }
                        tbody {
                            @for report in &reports {
                                tr {
                                    td data-label="Kind" { span.tag.failed { (report.code) } }
                                    td data-label="Message" { code { (report.message) } }
                                    td data-label="Failures" { (count(report.failures)) }
                                    td data-label="Versions" { @for v in &report.versions { (v.version) ": " (count(v.failures)) br; } }
                                    td data-label="Seen" { (report.first_seen) " – " (report.last_seen) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Runs tenants shared" }
            @if shared.is_empty() { p { "No tenant has shared a run." } }
            ul {
                @for run in &shared {
                    li {
                        a href=(format!("/developer/plugins/{plugin}/shared-runs/{}", run.run.summary.id)) { (run.run.summary.started_at) }
                        " " (outcome_tag(&run.run.summary.outcome)) " from " (run.tenant) ", shared " (run.shared_at)
                    }
                }
            }
        },
    ))
}

/// `GET /developer/plugins/{plugin}/shared-runs/{run}`.
pub async fn shared_run(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((plugin, id)): Path<(String, String)>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let shared = reports::shared_run(&state, principal, &plugin, &id).await?;
    Ok(page(
        &viewer,
        "Shared run",
        html! {
            h1 { "Run of " (plugin) " shared by " (shared.tenant) }
            p.meta { a href=(format!("/developer/plugins/{plugin}/failures")) { "Back to the failures" } }
            (run_detail(&shared.run))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_read_them() {
        assert_eq!(duration(850), "850 µs");
        assert_eq!(duration(12_340), "12.3 ms");
        assert_eq!(duration(2_500_000), "2.50 s");
    }

    #[test]
    fn the_next_page_keeps_the_filters() {
        let params = RunsParams {
            plugin: Some("labs.hello".into()),
            outcome: Some(String::new()),
            q: Some("a b".into()),
            ..RunsParams::default()
        };
        assert_eq!(
            params.next_page("17.x"),
            "plugin=labs.hello&q=a+b&before=17.x"
        );
        assert_eq!(params.filter().outcome, None);
    }
}
