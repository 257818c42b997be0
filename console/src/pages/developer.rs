//! `/developer…`: the developer portal. Publishers with their keys, drag-and-drop package
//! upload answered with the validation report, and each submission's status timeline.

use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::catalog::Visibility;
use plinth_marketplace::clock::{now_ms, rfc3339};
use plinth_marketplace::ledger::{money, statements};
use plinth_marketplace::month::{self, MonthRange};
use plinth_marketplace::notifications::{self, Inbox};
use plinth_marketplace::publishers;
use plinth_marketplace::ratings::{self, Reveal};
use plinth_marketplace::submissions::{self, Submission, Submitted};
use plinth_marketplace::versions::rollout;
use plinth_package::{Report, Severity};

use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, page, see_other};
use crate::session::{CSRF_FIELD, Viewer, csrf_matches};
use crate::svg::{Bar, bar_chart};

/// How many months the revenue chart shows.
const REVENUE_MONTHS: usize = 6;

/// How many ratings per plugin the portal shows for replying.
const RATINGS_SHOWN: i64 = 10;

/// The last [`REVENUE_MONTHS`] months, oldest first, ending with the current one.
fn recent_months() -> Result<Vec<MonthRange>, ConsoleError> {
    let mut months = vec![month::of(now_ms())?];
    while months.len() < REVENUE_MONTHS {
        let before = months.last().map_or(0, |m| m.start_ms) - 1;
        months.push(month::of(before)?);
    }
    months.reverse();
    Ok(months)
}

/// The publisher's net revenue per month as one chart per currency, with a CSV link per month.
async fn revenue(
    state: &AppState,
    publisher: &publishers::Publisher,
) -> Result<Markup, ConsoleError> {
    let months = recent_months()?;
    let mut by_currency: std::collections::BTreeMap<String, Vec<Bar>> = Default::default();
    for month in &months {
        let statement =
            statements::statement(state.db(), &publisher.id, &publisher.namespace, month).await?;
        for currency in &statement.currencies {
            by_currency
                .entry(currency.currency.clone())
                .or_default()
                .push(Bar {
                    label: month.key.clone(),
                    value: currency.total.net,
                    limit: None,
                    text: Some(money::format(currency.total.net, &currency.currency)),
                });
        }
    }
    Ok(html! {
        h3 { "Revenue" }
        @if by_currency.is_empty() { p { "No revenue in the last " (REVENUE_MONTHS) " months." } }
        @for (currency, bars) in &by_currency {
            (bar_chart(&format!("revenue-{}-{currency}", publisher.namespace), &format!("Net revenue per month, {currency}"), bars))
        }
        p {
            "Statements (CSV): "
            @for month in &months {
                a href=(format!("/developer/{}/statements/{}.csv", publisher.namespace, month.key)) download { (month.key) } " "
            }
        }
    })
}

/// Ratings of the publisher's published plugins, each with a reply form.
async fn ratings_to_answer(
    state: &AppState,
    viewer: &Viewer,
    published: &[String],
) -> Result<Markup, ConsoleError> {
    let mut out = Vec::new();
    for plugin in published {
        let page = ratings::list(
            state.db(),
            plugin,
            &Visibility::ALL,
            Reveal::Public,
            RATINGS_SHOWN,
            None,
        )
        .await?;
        for rating in page.items {
            out.push(html! {
                article.card {
                    p.meta { strong { (plugin) } span { (rating.rater) } span { (rating.stars) " of 5 stars" } }
                    @if let Some(text) = &rating.text { p { (text) } }
                    @if let Some(reply) = &rating.reply { blockquote { strong { "Your reply: " } (reply.text) } }
                    form method="post" action=(format!("/developer/ratings/{plugin}/{}/reply", rating.id)) {
                        (csrf_field(viewer))
                        label for=(format!("reply-{}", rating.id)) { "Reply to " (rating.rater) }
                        textarea #(format!("reply-{}", rating.id)) name="text" required {}
                        button.secondary type="submit" { "Reply" }
                    }
                }
            });
        }
    }
    Ok(html! {
        h3 { "Ratings" }
        @if out.is_empty() { p { "No ratings yet." } }
        @for item in out { (item) }
    })
}

/// A submission's status as a sentence.
fn status_text(status: &str) -> &str {
    match status {
        submissions::IN_REVIEW => "waiting for review",
        submissions::REJECTED_BY_VALIDATION => "refused by validation",
        submissions::APPROVED => "approved and published",
        submissions::REJECTED => "rejected by a reviewer",
        submissions::CHANGES_REQUESTED => "changes requested",
        other => other,
    }
}

/// The validation report as a table (or a line saying it is clean).
pub fn report_table(report: &Report) -> Markup {
    html! {
        @if report.findings.is_empty() {
            p.status-ok { "Validation found nothing to report." }
        } @else {
            div.table-wrap {
                table.findings.stack {
                    thead { tr { th scope="col" { "Severity" } th scope="col" { "Code" } th scope="col" { "Finding" } } }
                    tbody {
                        @for finding in &report.findings {
                            @let severity = if finding.severity == Severity::Error { "sev-error" } else { "sev-warning" };
                            tr {
                                td class=(severity) data-label="Severity" { (finding.severity.to_string()) }
                                td data-label="Code" { code { (finding.code) } }
                                td data-label="Finding" { (finding.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What happened to a submission, in order.
fn timeline(submission: &Submission) -> Markup {
    let validated = if submission.status == submissions::REJECTED_BY_VALIDATION {
        "Validation refused it"
    } else {
        "Validation passed; it entered the review queue"
    };
    html! {
        ol.timeline {
            li { "Submitted " span.hint { (rfc3339(submission.created_at)) } }
            li { (validated) }
            @if let Some(decided_at) = submission.decided_at {
                li {
                    "Reviewer: " (status_text(&submission.status)) " " span.hint { (rfc3339(decided_at)) }
                    @if let Some(reason) = &submission.reason { br; "Reason: " (reason) }
                }
            } @else if submission.status == submissions::IN_REVIEW {
                li { "Waiting for a reviewer" }
            }
        }
    }
}

/// What the portal confirms after an action.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    fn text(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "publisher" => "The publisher is created.",
            "revoked" => "The signing key is revoked: it signs nothing new.",
            "rollout" => "The rollout is changed.",
            _ => return None,
        })
    }
}

/// `GET /developer`: the viewer's publishers, keys, submissions and inbox, and the upload form.
pub async fn portal(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Markup, ConsoleError> {
    let user = viewer.require_user()?;
    let db = state.db();
    let mut sections = Vec::new();
    for (publisher, role) in publishers::of_user(db, &user.id).await? {
        let keys = publishers::keys(db, &publisher.id).await?;
        let mut list = submissions::list_for_publisher(db, &publisher.id).await?;
        list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let inbox = notifications::read_inbox(
            db,
            Inbox {
                kind: "publisher",
                id: &publisher.id,
            },
            false,
        )
        .await?;
        let mut published: Vec<String> = list
            .iter()
            .filter(|s| s.status == submissions::APPROVED)
            .map(|s| s.plugin_id.clone())
            .collect();
        published.sort();
        published.dedup();
        let revenue = revenue(&state, &publisher).await?;
        let rollouts = rollout::of_publisher(db, &publisher.id).await?;
        let ratings = ratings_to_answer(&state, &viewer, &published).await?;
        sections.push(html! {
            section.panel aria-labelledby=(format!("pub-{}", publisher.namespace)) {
                h2 #(format!("pub-{}", publisher.namespace)) { (publisher.name) " (" (publisher.namespace) ")" }
                p.meta { "you are " (role.as_str()) }
                h3 { "Signing keys" }
                @if keys.is_empty() { p { "No key yet." } }
                ul.keys {
                    @for key in &keys {
                        li {
                            code { (key.fingerprint) } " "
                            @if key.proven_at.is_none() { span.tag title="Registered before proofs of possession were asked; it gives way to a publisher that proves it holds the key." { "no proof" } " " }
                            @if key.revoked_at.is_some() { span.tag { "revoked" } } @else {
                                span.tag { "active" } " "
                                form.inline method="post" action=(format!("/developer/{}/keys/{}/revoke", publisher.namespace, key.id))
                                    data-confirm="Revoke this key? Packages it signs are refused from now on." {
                                    (csrf_field(&viewer))
                                    button.secondary type="submit" aria-label=(format!("Revoke key {}", key.fingerprint)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
                p.hint #(format!("register-key-{}", publisher.namespace)) {
                    "A key is registered by proving you hold it: the marketplace issues a challenge and the key signs it. "
                    "Make a key with " code { "plinth keygen --out FILE" } " and register it with "
                    code { "plinth key register --publisher " (publisher.namespace) " --key FILE --server URL --token T" } "."
                }
                h3 { "Submissions" }
                @if list.is_empty() { p { "Nothing submitted yet." } }
                div.table-wrap {
                    table.stack {
                        thead { tr { th scope="col" { "Plugin" } th scope="col" { "Version" } th scope="col" { "Status" } th scope="col" { "Submitted" } } }
                        tbody {
                            @for submission in &list {
                                tr {
                                    td data-label="Plugin" { a href=(format!("/developer/submissions/{}", submission.id)) { (submission.plugin_id) } }
                                    td data-label="Version" { (submission.version) }
                                    td data-label="Status" { (status_text(&submission.status)) }
                                    td data-label="Submitted" { (rfc3339(submission.created_at)) }
                                }
                            }
                        }
                    }
                }
                (revenue)
                (super::rollouts::panel(&viewer, &rollouts, super::rollouts::Back::Developer, &published))
                @if !published.is_empty() {
                    h3 { "Failures in the field" }
                    ul.failure-links {
                        @for plugin in &published {
                            li { a href=(format!("/developer/plugins/{plugin}/failures")) { "Failures and shared runs of " (plugin) } }
                        }
                    }
                }
                (ratings)
                h3 { "Notifications" }
                @if inbox.is_empty() { p { "No notifications." } }
                ul { @for item in &inbox { li { (item.message) " " span.hint { (item.created_at) } } } }
            }
        });
    }
    Ok(page(
        &viewer,
        "Developer portal",
        html! {
            h1 { "Developer portal" }
            @if let Some(text) = done.text() { (crate::layout::notice(text)) }
            form.panel method="post" action="/developer/submissions" enctype="multipart/form-data" {
                (csrf_field(&viewer))
                h2 { "Submit a package" }
                div.dropzone {
                    label for="package" { "Package (.plinth)" }
                    input #package type="file" name="package" accept=".plinth" required;
                    p.hint.chosen { "Choose a file or drop it here. It is validated at once; a passing package enters review." }
                }
                button type="submit" { "Upload and validate" }
            }
            @if sections.is_empty() {
                p { "You are not a member of any publisher yet: create one to publish plugins." }
            }
            @for section in sections { (section) }
            form.panel #new-publisher method="post" action="/developer/publishers" {
                (csrf_field(&viewer))
                h2 { "Create a publisher" }
                label for="namespace" { "Namespace (the first part of your plugin ids)" }
                input #namespace type="text" name="namespace" required pattern="[a-z][a-z0-9-]{1,39}";
                label for="publisher-name" { "Display name" }
                input #publisher-name type="text" name="name" required;
                button type="submit" { "Create publisher" }
            }
        },
    ))
}

/// `POST /developer/submissions`: the package is submitted as the viewer, then its report
/// shown.
pub async fn upload(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let mut csrf = None;
    let mut package = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ConsoleError::BadForm(format!("the upload could not be read: {e}")))?
    {
        match field.name() {
            Some(CSRF_FIELD) => {
                csrf = Some(field.text().await.map_err(|e| {
                    ConsoleError::BadForm(format!("the upload could not be read: {e}"))
                })?);
            }
            // The CSRF field comes first in the form; a package before it is not read.
            Some("package") if csrf_matches(&headers, csrf.as_deref()) => {
                package = Some(field.bytes().await.map_err(|e| {
                    ConsoleError::BadForm(format!("the upload could not be read: {e}"))
                })?);
            }
            _ => {}
        }
    }
    if !csrf_matches(&headers, csrf.as_deref()) {
        return Err(ConsoleError::Csrf);
    }
    let principal = viewer.require()?;
    let bytes = package
        .filter(|bytes| !bytes.is_empty())
        .ok_or_else(|| ConsoleError::BadForm("choose a .plinth package to upload".to_owned()))?;
    let submission = match submissions::submit_package(&state, principal, bytes.to_vec()).await? {
        Submitted::Created(submission) | Submitted::Existing(submission) => submission,
    };
    Ok(see_other(&format!(
        "/developer/submissions/{}",
        submission.id
    )))
}

/// `GET /developer/submissions/{id}`: status timeline, validation report, manifest.
pub async fn submission(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let principal = viewer.require()?;
    let submission = submissions::visible(state.db(), principal, &id).await?;
    Ok(page(
        &viewer,
        &format!("{} {}", submission.plugin_id, submission.version),
        html! {
            h1 { (submission.plugin_id) " " (submission.version) }
            p #submission-status.status { "Status: " (status_text(&submission.status)) }
            section.panel aria-labelledby="timeline-title" {
                h2 #timeline-title { "Timeline" }
                (timeline(&submission))
            }
            section.panel #report aria-labelledby="report-title" {
                h2 #report-title { "Validation report" }
                (report_table(&submission.report))
            }
            section.panel aria-labelledby="manifest-title" {
                h2 #manifest-title { "Manifest" }
                pre { code { (submission.manifest) } }
            }
            p { a href="/developer" { "Back to the portal" } }
        },
    ))
}

/// `GET /developer/{namespace}/statements/{month}.csv`: the month's statement as CSV, for
/// members of the publisher (as `GET /v1/publishers/{ns}/statements?format=csv`).
pub async fn statement_csv(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((namespace, file)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let publisher = publishers::access(state.db(), principal, &namespace).await?;
    let key = file.strip_suffix(".csv").unwrap_or(&file);
    let month = month::parse("month", key)?;
    let statement =
        statements::statement(state.db(), &publisher.id, &publisher.namespace, &month).await?;
    let disposition = format!(
        "attachment; filename=\"{}-{}.csv\"",
        publisher.namespace, month.key
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        statements::to_csv(&statement),
    )
        .into_response())
}

/// What the reply form posts.
#[derive(Debug, serde::Deserialize)]
pub struct ReplyForm {
    text: String,
}

/// `POST /developer/ratings/{plugin}/{rating}/reply`: the publisher's reply, through the same
/// service as `POST /v1/plugins/{id}/ratings/{rating}/reply`.
pub async fn reply(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((plugin, rating)): Path<(String, String)>,
    Posted(form): Posted<ReplyForm>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    ratings::reply(state.db(), principal, &plugin, &rating, &form.text).await?;
    Ok(see_other("/developer"))
}

/// A redirect to the portal confirming `done`.
fn portal_with(done: &str) -> Response {
    see_other(&format!("/developer?done={done}"))
}

/// What the new-publisher form posts.
#[derive(Debug, serde::Deserialize)]
pub struct NewPublisher {
    namespace: String,
    name: String,
}

/// `POST /developer/publishers`: the viewer becomes the new publisher's owner.
pub async fn create_publisher(
    State(state): State<AppState>,
    viewer: Viewer,
    Posted(form): Posted<NewPublisher>,
) -> Result<Response, ConsoleError> {
    let user = viewer.require_user()?;
    publishers::create(
        state.db(),
        &user.id,
        form.namespace.trim(),
        &form.name,
        &state.settings().reserved_namespaces,
    )
    .await?;
    Ok(portal_with("publisher"))
}

/// `POST /developer/{namespace}/keys/{key}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((namespace, key)): Path<(String, String)>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?;
    let publisher = publishers::access(state.db(), principal, &namespace).await?;
    publishers::revoke_key(
        state.db(),
        &plinth_marketplace::audit::Actor::from(principal),
        &publisher.id,
        &key,
    )
    .await?;
    Ok(portal_with("revoked"))
}
