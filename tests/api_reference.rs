//! `docs/api.md` is the OpenAPI document `GET /openapi.json` serves, rendered as Markdown.
//!
//! The test renders the document the server builds and compares it with the committed file;
//! it fails when they differ. `PLINTH_BLESS=1 cargo test --test api_reference` rewrites the
//! file instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A schema in one line: `Name`, `[T]`, `string?`, `integer (int64)`, `"a" | "b"`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let parts: Vec<String> = options.iter().map(type_of).collect();
            return parts.join(" \\| ");
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{v}`"))
            .collect();
        return values.join(" \\| ");
    }
    let (kind, nullable) = match &schema["type"] {
        Value::String(kind) => (kind.clone(), false),
        Value::Array(kinds) => {
            let named: Vec<&str> = kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "null")
                .collect();
            (named.join(" \\| "), named.len() < kinds.len())
        }
        _ => ("any".to_owned(), false),
    };
    let mut text = match kind.as_str() {
        "array" => format!("[{}]", type_of(&schema["items"])),
        _ => match schema["format"].as_str() {
            Some(format) => format!("{kind} ({format})"),
            None => kind,
        },
    };
    if nullable {
        text.push('?');
    }
    text
}

/// A description on one table line.
fn one_line(text: &Value) -> String {
    text.as_str()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// What an HTTP status means here, for answers the document leaves undescribed.
fn status_meaning(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "Done; no body",
        "400" => "Bad request: the body, query or a value is invalid",
        "401" => "No valid credential",
        "403" => "Not allowed for the caller's role",
        "404" => "No such resource (or not visible to the caller)",
        "409" => "Conflicts with the current state",
        "413" => "Too large",
        "429" => "Rate limit or quota reached",
        "500" => "Internal error",
        "502" => "The plugin failed",
        "503" => "Not configured or unavailable",
        _ => "",
    }
}

/// One operation.
fn operation(out: &mut String, method: &str, path: &str, op: &Value, item: &Value) -> Result<()> {
    writeln!(out, "### `{} {path}`\n", method.to_uppercase())?;
    if let Some(summary) = op["summary"].as_str() {
        writeln!(out, "{summary}\n")?;
    }
    if let Some(description) = op["description"].as_str()
        && Some(description) != op["summary"].as_str()
    {
        writeln!(out, "{description}\n")?;
    }
    let auth = if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
        "bearer token or API key"
    } else {
        "none"
    };
    writeln!(out, "Authentication: {auth}.\n")?;
    let parameters: Vec<&Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(item["parameters"].as_array().into_iter().flatten())
        .collect();
    if !parameters.is_empty() {
        writeln!(
            out,
            "| parameter | in | type | required | description |\n|---|---|---|---|---|"
        )?;
        for parameter in parameters {
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                parameter["name"].as_str().unwrap_or(""),
                parameter["in"].as_str().unwrap_or(""),
                type_of(&parameter["schema"]),
                if parameter["required"] == true {
                    "yes"
                } else {
                    "no"
                },
                one_line(&parameter["description"]),
            )?;
        }
        writeln!(out)?;
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        for (media, body) in content {
            writeln!(
                out,
                "Request body ({media}): {}\n",
                type_of(&body["schema"])
            )?;
        }
    }
    writeln!(out, "| status | meaning | body |\n|---|---|---|")?;
    let responses = op["responses"].as_object().context("responses")?;
    for (status, response) in responses {
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media, body)| match body.get("schema") {
                Some(schema) => format!("{} ({media})", type_of(schema)),
                None => media.clone(),
            })
            .collect();
        let mut meaning = one_line(&response["description"]);
        if meaning.is_empty() {
            meaning = status_meaning(status).to_owned();
        }
        writeln!(out, "| {status} | {meaning} | {} |", bodies.join(", "))?;
    }
    writeln!(out)?;
    Ok(())
}

/// The Markdown reference of `document`.
fn render(document: &Value) -> Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "# API reference\n\n\
         Generated from the OpenAPI document `GET /openapi.json` serves, by\n\
         `tests/api_reference.rs`: do not edit; `PLINTH_BLESS=1 cargo test --test api_reference`\n\
         rewrites it after a change of the API.\n"
    )?;
    writeln!(
        out,
        "{}\n",
        document["info"]["description"].as_str().unwrap_or("")
    )?;
    let paths = document["paths"].as_object().context("paths")?;
    let mut by_tag: BTreeMap<String, Vec<(&str, &str, &Value, &Value)>> = BTreeMap::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                by_tag
                    .entry(tag)
                    .or_default()
                    .push((method, path.as_str(), op, item));
            }
        }
    }
    writeln!(out, "## Contents\n")?;
    for (tag, operations) in &by_tag {
        writeln!(out, "- **{tag}**")?;
        for (method, path, op, _) in operations {
            writeln!(
                out,
                "  - `{} {path}` {}",
                method.to_uppercase(),
                one_line(&op["summary"])
            )?;
        }
    }
    writeln!(out, "- [Schemas](#schemas)\n")?;
    for (tag, operations) in &by_tag {
        writeln!(out, "## {tag}\n")?;
        for (method, path, op, item) in operations {
            operation(&mut out, method, path, op, item)?;
        }
    }
    writeln!(out, "## Schemas\n")?;
    let schemas = document["components"]["schemas"]
        .as_object()
        .context("schemas")?;
    for (name, schema) in schemas {
        writeln!(out, "### {name}\n")?;
        if let Some(description) = schema["description"].as_str() {
            writeln!(out, "{description}\n")?;
        }
        match schema["properties"].as_object() {
            Some(properties) => {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                writeln!(
                    out,
                    "| field | type | required | description |\n|---|---|---|---|"
                )?;
                for (field, property) in properties {
                    writeln!(
                        out,
                        "| `{field}` | {} | {} | {} |",
                        type_of(property),
                        if required.contains(&field.as_str()) {
                            "yes"
                        } else {
                            "no"
                        },
                        one_line(&property["description"]),
                    )?;
                }
            }
            None => writeln!(out, "{}", type_of(schema))?,
        }
        writeln!(out)?;
    }
    Ok(out.trim_end().to_owned() + "\n")
}

#[test]
fn docs_api_md_is_the_openapi_document() -> Result<()> {
    let document = serde_json::to_value(plinth_marketplace::server::openapi())?;
    let rendered = render(&document)?;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    if std::env::var("PLINTH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&file, &rendered)?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    ensure!(
        committed == rendered,
        "docs/api.md is stale: run `PLINTH_BLESS=1 cargo test --test api_reference` and commit it"
    );
    // The reference names every route of the document.
    for path in document["paths"].as_object().context("paths")?.keys() {
        ensure!(rendered.contains(&format!(" {path}`")), "{path} missing");
    }
    Ok(())
}
