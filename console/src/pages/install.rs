//! `/plugins/{id}/install`: a tenant admin picks a tenant and version, reads the permissions,
//! ticks consent and fills the configuration form generated from the manifest. Posting calls
//! the same install service as `POST /v1/tenants/{tenant}/installs`, with the digest of the
//! permissions the page showed.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use plinth_marketplace::AppState;
use plinth_marketplace::catalog::{self, VersionInfo, Visibility};
use plinth_marketplace::installs;
use plinth_marketplace::installs::manage::{self, NewInstall};
use plinth_marketplace::tenants::{self, TenantRole};
use plinth_marketplace::versions::updates;
use plinth_package::PermissionDiffView;
use plinth_package::manifest::{ConfigField, ConfigType};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{admin_tenants, permission_item};
use crate::error::ConsoleError;
use crate::form::Posted;
use crate::layout::{csrf_field, form_error, page, see_other};
use crate::session::Viewer;

/// The prefix of configuration fields in the form (`config.<key>`).
const CONFIG_PREFIX: &str = "config.";

/// Update policies with their labels.
const POLICIES: [(&str, &str); 4] = [
    ("manual", "Manual: I update it myself"),
    ("patch", "Patch releases automatically"),
    ("minor", "Minor and patch releases automatically"),
    ("any", "Every release automatically"),
];

/// What the page is asked to show.
#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    tenant: Option<String>,
    version: Option<String>,
}

/// The form the page shows: everything it needs, loaded.
struct InstallForm {
    plugin_id: String,
    plugin_name: String,
    tenants: Vec<String>,
    tenant: String,
    versions: Vec<String>,
    version: VersionInfo,
    config: BTreeMap<String, ConfigField>,
    /// When the tenant has the plugin already: its version, how the permissions change, and
    /// the configuration keys its version marks secret that this one does not.
    installed: Option<(String, PermissionDiffView, Vec<String>)>,
    /// The plugin's deprecation notice when it covers the chosen version.
    deprecation: Option<String>,
}

/// The manifest of `plugin_id` `version` as published, as `visibility` (the tenant's) sees it.
async fn published_package(
    state: &AppState,
    plugin_id: &str,
    version: &str,
    visibility: &Visibility,
) -> Result<plinth_package::Package, ConsoleError> {
    let file = catalog::package_bytes(state.db(), plugin_id, version, visibility).await?;
    plinth_package::Package::from_bytes(&file.bytes).map_err(|e| {
        plinth_marketplace::Error::Internal(format!("stored package does not read: {e}")).into()
    })
}

/// Loads the form for `choice`, checking the viewer administers some tenant.
async fn load(
    state: &AppState,
    viewer: &Viewer,
    plugin_id: &str,
    choice: Choice,
) -> Result<InstallForm, ConsoleError> {
    let principal = viewer.require()?;
    // Only the tenants that may install it are offered (a private plugin's audience).
    let administered = admin_tenants(state, principal).await?;
    if administered.is_empty() {
        return Err(plinth_marketplace::Error::forbidden(
            "forbidden",
            "only a tenant's owners and admins can install plugins",
        )
        .into());
    }
    let mut tenants: Vec<String> = Vec::new();
    for tenant in administered {
        if catalog::shows(state.db(), plugin_id, &Visibility::tenant(&tenant.id)).await? {
            tenants.push(tenant.slug);
        }
    }
    let Some(first) = tenants.first().cloned() else {
        return Err(plinth_marketplace::Error::not_found(format!("plugin {plugin_id:?}")).into());
    };
    let tenant = choice
        .tenant
        .filter(|t| tenants.contains(t))
        .unwrap_or(first);
    let tenant_id = tenants::access(state.db(), principal, &tenant, TenantRole::Admin)
        .await?
        .id;
    let visibility = Visibility::tenant(&tenant_id);
    let detail = catalog::plugin_detail(state.db(), plugin_id, &visibility).await?;
    let manage::VersionChoice {
        installable: versions,
        chosen: version,
        deprecation,
    } = manage::choose_version(state.db(), &tenant_id, plugin_id, choice.version.as_deref())
        .await?;
    let package = published_package(state, plugin_id, &version.version, &visibility).await?;
    let current = installs::list(state.db(), &tenant_id)
        .await?
        .into_iter()
        .find(|install| install.plugin_id == plugin_id);
    let mut config = package.manifest.config.clone();
    let installed = match current {
        Some(install) => {
            let old = published_package(state, plugin_id, &install.version, &visibility).await?;
            let diff = plinth_package::PermissionDiff::between(
                &old.manifest.permissions,
                &package.manifest.permissions,
            );
            // What the install holds sealed stays sealed: shown as a secret field.
            for key in installs::config::sealed_keys(&install.config) {
                if let Some(field) = config.get_mut(&key) {
                    field.secret = true;
                }
            }
            let made_plain = old.manifest.secrets_made_plain(&package.manifest);
            Some((install.version, diff.view(), made_plain))
        }
        None => None,
    };
    Ok(InstallForm {
        plugin_id: plugin_id.to_owned(),
        plugin_name: detail.name,
        tenants,
        tenant,
        versions,
        version,
        config,
        installed,
        deprecation: deprecation.map(|d| d.notice()),
    })
}

/// The input for configuration key `key`.
fn config_input(key: &str, field: &ConfigField, value: Option<&str>, updating: bool) -> Markup {
    let required = field.required && !updating;
    let name = format!("{CONFIG_PREFIX}{key}");
    let id = format!("config-{key}");
    let hint_id = format!("{id}-hint");
    html! {
        label for=(id) { (key) @if required { " (required)" } }
        @if let Some(description) = &field.description { p.hint #(hint_id) { (description) } }
        @if field.secret {
            input #(id) type="password" name=(name) autocomplete="new-password"
                required[required] aria-describedby=(hint_id);
            p.hint { "A secret: it is sealed when stored and never shown again." }
        } @else {
            @match field.r#type {
                ConfigType::Boolean => {
                    select #(id) name=(name) aria-describedby=(hint_id) {
                        option value="" { "Default" }
                        option value="true" selected[value == Some("true")] { "Yes" }
                        option value="false" selected[value == Some("false")] { "No" }
                    }
                }
                ConfigType::Integer => {
                    input #(id) type="number" step="1" name=(name) value=(value.unwrap_or(""))
                        required[required] aria-describedby=(hint_id);
                }
                ConfigType::String => {
                    input #(id) type="text" name=(name) value=(value.unwrap_or(""))
                        required[required] aria-describedby=(hint_id);
                }
            }
        }
    }
}

/// The page for `form`, with `error` and the non-secret `values` given before.
fn render(
    viewer: &Viewer,
    form: &InstallForm,
    error: Option<&str>,
    values: &BTreeMap<String, String>,
) -> Markup {
    let action = format!("/plugins/{}/install", form.plugin_id);
    page(
        viewer,
        &format!("Install {}", form.plugin_name),
        html! {
            h1 { "Install " (form.plugin_name) }
            @if let Some(notice) = &form.deprecation {
                p.warning #deprecation role="status" { strong { "Deprecated. " } (notice) }
            }
            form.panel method="get" action=(action) {
                label for="tenant" { "Tenant" }
                select #tenant name="tenant" data-autosubmit {
                    @for tenant in &form.tenants {
                        option value=(tenant) selected[*tenant == form.tenant] { (tenant) }
                    }
                }
                label for="version" { "Version" }
                select #version name="version" data-autosubmit {
                    @for version in &form.versions {
                        option value=(version) selected[*version == form.version.version] { (version) }
                    }
                }
                noscript { button.secondary type="submit" { "Show this version" } }
            }
            form.panel #consent-form method="post" action=(action) {
                @if let Some(error) = error { (form_error(error)) }
                (csrf_field(viewer))
                input type="hidden" name="tenant" value=(form.tenant);
                input type="hidden" name="version" value=(form.version.version);
                input type="hidden" name="permissions_digest" value=(form.version.permissions_digest);
                @if let Some((old, diff, made_plain)) = &form.installed {
                    input type="hidden" name="mode" value="update";
                    h2 { "Update from v" (old) " to v" (form.version.version) }
                    @if diff.added.is_empty() && diff.removed.is_empty() {
                        p #permission-diff { "The permissions do not change." }
                    } @else {
                        ul.permissions #permission-diff {
                            @for grant in &diff.added { li.added { strong { "New: " } (permission_item(grant.risk, &grant.sentence)) } }
                            @for grant in &diff.removed { li.removed { strong { "Dropped: " } (permission_item(grant.risk, &grant.sentence)) } }
                        }
                    }
                    @if !made_plain.is_empty() {
                        p #secrets-made-plain {
                            strong { "No longer marked secret: " } (made_plain.join(", "))
                            ". Their values stay sealed and hidden."
                        }
                    }
                }
                h2 { "Permissions of v" (form.version.version) }
                @if form.version.permissions.is_empty() { p { "It asks for no permissions." } }
                ul.permissions #permissions {
                    @for permission in &form.version.permissions {
                        li { (permission_item(permission.risk, &permission.sentence)) }
                    }
                }
                label.check for="consent" {
                    input #consent type="checkbox" name="consent" value="yes" required;
                    span { "I grant " (form.plugin_name) " exactly these permissions for tenant " (form.tenant) "." }
                }
                @if !form.config.is_empty() { h2 { "Configuration" } }
                @for (key, field) in &form.config {
                    (config_input(key, field, values.get(key).map(String::as_str), form.installed.is_some()))
                }
                @if form.installed.is_some() {
                    p.hint { "Fields left empty keep their current values." }
                    button type="submit" { "Update" }
                } @else {
                    label for="update_policy" { "Updates" }
                    select #update_policy name="update_policy" {
                        @for (value, text) in POLICIES { option value=(value) { (text) } }
                    }
                    p.hint { "An automatic update never adds permissions: one that asks for more waits for your consent." }
                    button type="submit" { "Install" }
                }
            }
        },
    )
}

/// `GET /plugins/{id}/install`.
pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(choice): Query<Choice>,
) -> Result<Markup, ConsoleError> {
    let form = load(&state, &viewer, &id, choice).await?;
    Ok(render(&viewer, &form, None, &BTreeMap::new()))
}

/// `POST /plugins/{id}/install`: installs, then shows the tenant's dashboard.
pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Posted(fields): Posted<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let principal = viewer.require()?.clone();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let tenant = field("tenant").unwrap_or_default();
    let version = field("version");
    let mut config = Map::new();
    let mut shown = BTreeMap::new();
    for (key, value) in &fields {
        if let Some(key) = key.strip_prefix(CONFIG_PREFIX)
            && !value.is_empty()
        {
            config.insert(key.to_owned(), Value::String(value.clone()));
            shown.insert(key.to_owned(), value.clone());
        }
    }
    let choice = Choice {
        tenant: Some(tenant.clone()),
        version: version.clone(),
    };
    let refused = |status: StatusCode, message: String, form: InstallForm| {
        let shown: BTreeMap<String, String> = shown
            .iter()
            .filter(|(key, _)| form.config.get(*key).is_some_and(|f| !f.secret))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (status, render(&viewer, &form, Some(&message), &shown)).into_response()
    };
    if field("consent").as_deref() != Some("yes") {
        let form = load(&state, &viewer, &id, choice).await?;
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "Tick the consent box: installing grants the plugin the permissions listed.".to_owned(),
            form,
        ));
    }
    let outcome = if field("mode").as_deref() == Some("update") {
        let digest = field("permissions_digest").unwrap_or_default();
        let changes = (!config.is_empty()).then_some(&config);
        let version = version.clone().unwrap_or_default();
        updates::update(&state, &principal, &tenant, &id, &version, &digest, changes)
            .await
            .map(|_| "updated")
    } else {
        let request = NewInstall {
            plugin: id.clone(),
            version,
            permissions_digest: field("permissions_digest").unwrap_or_default(),
            config,
            update_policy: field("update_policy"),
        };
        manage::install(&state, &principal, &tenant, request)
            .await
            .map(|_| "installed")
    };
    match outcome {
        Ok(done) => Ok(see_other(&format!("/tenants/{tenant}?{done}={id}"))),
        // What the admin can correct is shown on the form itself.
        Err(
            error @ (plinth_marketplace::Error::BadRequest { .. }
            | plinth_marketplace::Error::Conflict { .. }),
        ) => {
            let form = load(&state, &viewer, &id, choice).await?;
            let error = ConsoleError::from(error);
            Ok(refused(error.status(), error.message(), form))
        }
        Err(error) => Err(error.into()),
    }
}
