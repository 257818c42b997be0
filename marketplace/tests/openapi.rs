//! `GET /openapi.json` describes every route the server answers, and only those, each with its
//! answers and error codes.
//!
//! axum cannot list a router's routes, so "every route" is proved in two halves:
//!
//! - **router ⊆ document.** Handlers are added with utoipa-axum's `routes!`, which takes the
//!   method and path axum routes from the same `#[utoipa::path]` attribute that documents it:
//!   those cannot differ. Any other way to add a route (`.route(`, `.route_service(`, `.nest(`,
//!   `.nest_service(`, or a plain axum `Router::new()` to merge) bypasses the document, so
//!   [`every_route_added_by_hand_is_documented`] reads the marketplace's and the CLI's sources
//!   for those calls and requires each path (a string literal, or the test fails) in the
//!   document.
//! - **document ⊆ router.** [`every_documented_operation_is_routed`] sends every documented
//!   method and path (parameters filled in) to a running server and requires an answer that
//!   is not the fallback's `404 route not found` nor axum's `405`.

mod common;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use reqwest::Method;
use serde_json::Value;

use common::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document a fresh server serves.
async fn document() -> Result<(TestApp, Value)> {
    let app = TestApp::start_sqlite().await?;
    let reply = app.get("/openapi.json", None).await?;
    ensure!(reply.status == 200, "{}", reply.status);
    Ok((app, reply.body))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The code of `text` without `//` comments (a string holding `//` never precedes a route
/// call on the same line in this code base; the test would fail loudly if it did).
fn code_lines(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_route_added_by_hand_is_documented() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (_app, document) = runtime.block_on(document())?;
    let paths = document["paths"].as_object().context("paths")?;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&crate_dir.join("src"), &mut files)?;
    sources(&crate_dir.join("../src"), &mut files)?;
    ensure!(files.len() > 20, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let code = code_lines(&std::fs::read_to_string(file)?);
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            for (at, _) in code.match_indices(call) {
                let argument = code[at + call.len()..].trim_start();
                let path = argument
                    .strip_prefix('"')
                    .and_then(|rest| rest.split('"').next())
                    .with_context(|| {
                        format!(
                            "{}: a route whose path is not a string literal: {call}{}",
                            file.display(),
                            argument.lines().next().unwrap_or("")
                        )
                    })?;
                found.push(path.to_owned());
                let spelled = path.replace("{*", "{");
                ensure!(
                    paths.contains_key(&spelled),
                    "{}: route {path} is not in /openapi.json",
                    file.display()
                );
            }
        }
        for (at, _) in code.match_indices("Router::new()") {
            ensure!(
                code[..at].ends_with("OpenApi"),
                "{}: a plain axum Router can add routes this test does not see",
                file.display()
            );
        }
    }
    // The scan sees the routes it must: the document and the plugins' HTTP handlers.
    for expected in [
        "/openapi.json",
        "/p/{tenant}/{plugin}",
        "/p/{tenant}/{plugin}/{*path}",
    ] {
        ensure!(
            found.iter().any(|p| p == expected),
            "{expected} not found: {found:?}"
        );
    }
    Ok(())
}

/// `path` with every `{parameter}` replaced by a plausible value.
fn filled(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_is_routed() -> Result<()> {
    let (app, document) = document().await?;
    let paths = document["paths"].as_object().context("paths")?;
    ensure!(paths.len() > 60, "only {} paths", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let reply = app.call(method.clone(), &filled(path), None, None).await?;
            ensure!(
                reply.status != 405,
                "{method} {path}: 405, the router has no such method"
            );
            ensure!(
                !(reply.status == 404 && reply.body["error"]["message"] == "route not found"),
                "{method} {path}: the router has no such route"
            );
            checked += 1;
        }
    }
    ensure!(checked > 80, "only {checked} operations");
    // And the fallback is what the check above relies on.
    let reply = app.get("/v1/no-such-route", None).await?;
    ensure!(
        reply.status == 404 && reply.body["error"]["message"] == "route not found",
        "{}",
        reply.body
    );
    Ok(())
}

/// Whether `response` answers with an `ApiError` body.
fn is_api_error(response: &Value) -> bool {
    response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ApiError"
}

#[tokio::test]
async fn every_operation_documents_its_answers_and_errors() -> Result<()> {
    let (_app, document) = document().await?;
    let paths = document["paths"].as_object().context("paths")?;
    let schemas = document["components"]["schemas"]
        .as_object()
        .context("schemas")?;
    ensure!(schemas.contains_key("ApiError"), "no ApiError schema");
    // Every problem, not only the first.
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let Some(responses) = operation["responses"].as_object() else {
                check(false, format!("{method} {path}: no responses"));
                continue;
            };
            check(
                responses.keys().any(|status| status.starts_with('2')),
                format!("{method} {path}: no success answer"),
            );
            for (status, response) in responses {
                check(
                    response["description"].is_string(),
                    format!("{method} {path} {status}: no description"),
                );
                if status.starts_with('4') || status.starts_with('5') {
                    check(
                        is_api_error(response),
                        format!("{method} {path} {status}: not the error envelope"),
                    );
                }
                // A JSON success names its schema (the document itself is free-form).
                if let Some(json) = response["content"].get("application/json")
                    && status.starts_with('2')
                    && path != "/openapi.json"
                {
                    check(
                        json.get("schema").is_some(),
                        format!("{method} {path} {status}: JSON without a schema"),
                    );
                }
            }
            // Everything but the document itself can fail, and says how.
            if path != "/openapi.json" {
                check(
                    responses
                        .keys()
                        .any(|s| s.starts_with('4') || s.starts_with('5')),
                    format!("{method} {path}: no error answers"),
                );
            }
            if let Some(body) = operation.get("requestBody") {
                check(
                    body["content"]
                        .as_object()
                        .is_some_and(|content| content.values().all(|c| c.get("schema").is_some())),
                    format!("{method} {path}: a request body without a schema"),
                );
            }
            // Path parameters are declared.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(item["parameters"].as_array().into_iter().flatten())
                    .any(|p| p["name"] == name && p["in"] == "path");
                check(
                    declared,
                    format!("{method} {path}: parameter {name} not declared"),
                );
            }
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
